"""Conversation turns for `researchdesk ask --session ID`: the store a settings string names.

The record (`Turn`), the protocol (`SessionStore`) and the SQLite store live in
reports/session_store.py, DynamoDB in reports/sessions_dynamo.py; callers import all of it from here.
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import ConfigError
from reports.session_store import (
    ROLES,
    SessionStore,
    SqliteSessions,
    Turn,
    check_session_id,
    history_within,
)
from reports.sessions_dynamo import _TABLE_NAME, DynamoSessions

__all__ = [
    "ROLES",
    "DynamoSessions",
    "SessionStore",
    "SqliteSessions",
    "Turn",
    "check_session_id",
    "history_within",
    "open_sessions",
]
_SPEC_FORMS = (
    "'sqlite', 'sqlite:///abs/path.db', 'sqlite:relative.db' (under the var dir) or 'dynamodb://TABLE'"
)


def open_sessions(spec: str, var_dir: Path) -> SessionStore:
    """The store a settings string names.

    '' or 'sqlite' -> `var_dir/sessions.sqlite`; 'sqlite:///abs/path.db' -> that file;
    'sqlite:relative.db' -> relative to `var_dir` (not the cwd, so every `ask` finds the same file
    wherever it runs); 'dynamodb://TABLE' -> that table.
    """
    spec = (spec or "").strip()
    if spec in ("", "sqlite"):
        return SqliteSessions(Path(var_dir) / "sessions.sqlite")
    if spec.startswith("sqlite://"):
        rest = spec[len("sqlite://") :]
        if rest.startswith("/") and len(rest) > 1:
            return SqliteSessions(Path(rest))
    elif spec.startswith("sqlite:"):
        rest = spec[len("sqlite:") :]
        if rest and not rest.startswith("/"):
            path = Path(rest).expanduser()
            return SqliteSessions(path if path.is_absolute() else Path(var_dir) / path)
    elif spec.startswith("dynamodb://"):
        table = spec[len("dynamodb://") :]
        if _TABLE_NAME.fullmatch(table):
            return DynamoSessions(table)
        raise ConfigError(f"bad sessions store {spec!r}: a DynamoDB table name is 3-255 of [A-Za-z0-9_.-]")
    raise ConfigError(f"bad sessions store {spec!r}; use {_SPEC_FORMS}")
