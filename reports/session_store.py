"""Conversation turns (the record, the store protocol) and the SQLite store; DynamoDB is in
reports/sessions_dynamo.py, and reports/sessions.py picks one from a settings string.

Conversation turns for `researchdesk ask --session ID`, so a follow-up question sees the history.

Each `ask` is a separate process, so the history has to live outside it. Two backends behind one
small protocol: SQLite (the default, a file under the var dir, nothing to run) and DynamoDB (the
production store the OpenChatKit seed kept its turns in, shared by every analyst's machine).

Why turn numbers instead of timestamps: order must survive clock skew between machines and two
processes answering in the same session. Each append reads the highest turn number and writes
max+1... inside one transaction (SQLite: `BEGIN IMMEDIATE`; DynamoDB: a conditional
TransactWriteItems that is retried when another writer took the numbers first), so a question and
its answer stay adjacent and nothing is overwritten.

Every backend failure becomes a one-line `ConfigError` naming the store and the remedy: these are
the user's files, endpoints and credentials, not bugs. Session ids come from the command line and
are validated before they reach a query.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rag.errors import ConfigError

ROLES = ("user", "assistant")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SQLITE_SCHEMA_VERSION = 1
_SQLITE_BUSY_S = 10.0  # another `ask` holds the write lock for milliseconds; 10 s means something is stuck


@dataclass(frozen=True)
class Turn:
    """One message of a conversation; `sources` are the labels listed under an answer, in [n] order."""

    role: str  # "user" | "assistant"
    text: str
    ticker: str = ""
    sources: tuple[str, ...] = ()
    created: str = ""  # ISO-8601 UTC; the store stamps it when empty


@runtime_checkable
class SessionStore(Protocol):
    """What the `ask` command needs from a backend; both stores are interchangeable behind it."""

    def create(self) -> str: ...

    def exists(self, session: str) -> bool: ...

    def turns(self, session: str) -> list[Turn]: ...

    def append(self, session: str, turns: Sequence[Turn]) -> None: ...

    def close(self) -> None: ...


def check_session_id(session: str) -> str:
    """Reject ids that could not have come from `create()`: they are typed by users on a command line."""
    if not isinstance(session, str) or not _SESSION_ID.fullmatch(session):
        raise ConfigError(
            f"bad session id {str(session)[:40]!r}: use 1-128 letters, digits, '_' or '-' "
            "(as printed by the first `researchdesk ask`)"
        )
    return session


def history_within(turns: Sequence[Turn], budget_chars: int) -> list[Turn]:
    """The newest contiguous turns whose texts fit in `budget_chars`, oldest first.

    The production model sees 2,048 tokens, so a long conversation cannot ride along whole; the
    latest exchanges matter most to a follow-up. A turn is kept whole or dropped (half a question
    misleads more than none), and the walk stops at the first turn that does not fit so the kept
    history has no gaps.
    """
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        used += len(turn.text)
        if used > budget_chars:
            break
        kept.append(turn)
    kept.reverse()
    return kept


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _checked(turns: Sequence[Turn]) -> list[Turn]:
    """Stamp `created` once per append; a wrong role is a caller bug, so it is not a ConfigError."""
    now = _now()
    out = []
    for t in turns:
        if t.role not in ROLES:
            raise ValueError(f"turn role must be one of {ROLES}, got {t.role!r}")
        out.append(replace(t, sources=tuple(t.sources), created=t.created or now))
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


# --- SQLite -------------------------------------------------------------------------------------

_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY,
    created TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS turns (
    session TEXT NOT NULL REFERENCES sessions(session),
    turn    INTEGER NOT NULL,  -- 1, 2, ... per session: the order of the conversation
    role    TEXT NOT NULL,
    text    TEXT NOT NULL,
    ticker  TEXT NOT NULL,
    sources TEXT NOT NULL,     -- JSON array of source labels
    created TEXT NOT NULL,
    PRIMARY KEY (session, turn)
) WITHOUT ROWID;
"""


class SqliteSessions:
    """Sessions in one local SQLite file, in WAL mode so readers never block the writer.

    Two `ask` processes may append to one session at once: `BEGIN IMMEDIATE` takes the write lock
    before the max turn is read, so the second waits (up to 10 s) and numbers after the first.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection; callers on other threads take turns
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"sessions store {self.path}: cannot create its folder: {_one_line(exc)}"
            ) from exc
        try:
            with self._tx(create=True) as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > _SQLITE_SCHEMA_VERSION:
                    raise ConfigError(
                        f"sessions store {self.path} has schema v{version}, newer than this researchdesk "
                        f"(v{_SQLITE_SCHEMA_VERSION}); upgrade researchdesk or use another sessions file"
                    )
                self._create_schema(db)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_SQLITE_BUSY_S, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        # executescript() would COMMIT the open transaction first; statement by statement it stays atomic.
        # (So no ';' inside the DDL's comments.)
        for stmt in _SQLITE_DDL.split(";"):
            if stmt.strip():
                db.execute(stmt)
        db.execute(f"PRAGMA user_version = {_SQLITE_SCHEMA_VERSION}")

    @contextmanager
    def _tx(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite failure leaves as a ConfigError naming the file."""
        with self._lock:
            try:
                if self._db is None:
                    if not create:
                        raise ConfigError(f"sessions store {self.path} is closed")
                    self._db = self._connect()
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:  # some errors (disk full) have rolled it back already
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._db is None:
                raise ConfigError(f"sessions store {self.path} is closed")
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from exc

    def _error(self, exc: sqlite3.DatabaseError) -> ConfigError:
        msg = _one_line(exc)
        if "locked" in msg or "busy" in msg:
            fix = f"another process kept it locked for {_SQLITE_BUSY_S:.0f} s; retry, or stop the stuck `ask`"
        elif isinstance(exc, sqlite3.OperationalError) and "unable to open" in msg:
            fix = "check the path and its permissions"
        else:
            fix = "not a usable sessions database; move it aside (a new one is created) or use another file"
        return ConfigError(f"sessions store {self.path}: {msg}; {fix}")

    def create(self) -> str:
        session = uuid.uuid4().hex
        with self._tx() as db:
            db.execute("INSERT INTO sessions (session, created) VALUES (?, ?)", (session, _now()))
        return session

    def exists(self, session: str) -> bool:
        check_session_id(session)
        return bool(self._read("SELECT 1 FROM sessions WHERE session = ?", (session,)))

    def turns(self, session: str) -> list[Turn]:
        check_session_id(session)
        rows = self._read(
            "SELECT role, text, ticker, sources, created FROM turns WHERE session = ? ORDER BY turn",
            (session,),
        )
        return [Turn(r, t, k, tuple(json.loads(s)), c) for r, t, k, s, c in rows]

    def append(self, session: str, turns: Sequence[Turn]) -> None:
        check_session_id(session)
        rows = _checked(turns)
        if not rows:
            return
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO sessions (session, created) VALUES (?, ?)", (session, rows[0].created)
            )
            last = db.execute(
                "SELECT COALESCE(MAX(turn), 0) FROM turns WHERE session = ?", (session,)
            ).fetchone()[0]
            db.executemany(
                "INSERT INTO turns (session, turn, role, text, ticker, sources, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (session, last + i, t.role, t.text, t.ticker, json.dumps(list(t.sources)), t.created)
                    for i, t in enumerate(rows, start=1)
                ],
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
