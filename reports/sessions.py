"""Conversation turns for `researchdesk ask --session ID`, so a follow-up question sees the history.

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
import random
import re
import sqlite3
import threading
import time
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
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")  # DynamoDB's own rule for table names
_SPEC_FORMS = (
    "'sqlite', 'sqlite:///abs/path.db', 'sqlite:relative.db' (under the var dir) or 'dynamodb://TABLE'"
)
_SQLITE_SCHEMA_VERSION = 1
_SQLITE_BUSY_S = 10.0  # another `ask` holds the write lock for milliseconds; 10 s means something is stuck
_DYNAMO_BATCH = 100  # TransactWriteItems' item limit; appends larger than this are atomic per batch
_DYNAMO_RETRIES = 8  # conditional-write conflicts before giving up; each needs a concurrent writer


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


# --- DynamoDB -----------------------------------------------------------------------------------

# Item layout: partition key "session" (S), sort key "turn" (N). Turn 0 is a marker written by
# create() so a fresh, still empty session exists; turns 1, 2, ... are the conversation.
_NAMES = {"#s": "session", "#t": "turn"}  # SESSION is a DynamoDB reserved word


class DynamoSessions:
    """Sessions in a DynamoDB table, created (on-demand billing) on first use if missing.

    boto3 finds the endpoint, region and credentials itself (AWS_ENDPOINT_URL_DYNAMODB or
    AWS_ENDPOINT_URL for DynamoDB Local / moto, profiles, instance roles); pass `client=` to tune
    retries and timeouts.
    """

    def __init__(self, table: str, client: Any = None) -> None:
        if not _TABLE_NAME.fullmatch(table or ""):
            raise ConfigError(f"bad DynamoDB table name {table!r}: use 3-255 of [A-Za-z0-9_.-]")
        self.table = table
        self.label = f"dynamodb://{table}"
        self._owns_client = client is None
        self._client: Any = client
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors = (BotoCoreError, ClientError)  # the failures of the service, not of our code
        if client is None:
            try:
                import boto3

                client = boto3.client("dynamodb")
            except (*self._errors, ValueError) as exc:  # NoRegionError; ValueError: a bad endpoint URL
                raise self._error("create a client", exc) from exc
        self._client = client
        self._ensure_table()

    # errors ----------------------------------------------------------------------------------

    def _endpoint(self) -> str:
        return str(
            getattr(getattr(self._client, "meta", None), "endpoint_url", "") or "the default AWS endpoint"
        )

    def _error(self, what: str, exc: Exception) -> ConfigError:
        """One line: which store, what failed, how to fix it."""
        name = exc.__class__.__name__
        code = _code(exc)
        msg = _one_line(exc)
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            fix = "set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            return ConfigError(f"{self.label}: no usable AWS credentials ({msg}); {fix}")
        if name == "NoRegionError":
            return ConfigError(
                f"{self.label}: no AWS region configured; set AWS_DEFAULT_REGION (e.g. us-east-1)"
            )
        if name in (
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "ConnectionClosedError",
        ):
            return ConfigError(
                f"{self.label}: cannot reach DynamoDB at {self._endpoint()}: {msg}; "
                "check AWS_ENDPOINT_URL_DYNAMODB / network / credentials"
            )
        if code in ("UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"):
            return ConfigError(f"{self.label}: AWS rejected the credentials ({msg}); refresh or fix them")
        if code in ("AccessDeniedException",):
            return ConfigError(
                f"{self.label}: access denied ({msg}); the role needs dynamodb:* on this table"
            )
        if code == "ResourceNotFoundException":
            return ConfigError(
                f"{self.label}: table not found at {self._endpoint()} ({msg}); check the name/region"
            )
        return ConfigError(
            f"{self.label}: cannot {what} at {self._endpoint()}: {msg}; "
            "check AWS_ENDPOINT_URL_DYNAMODB / credentials / region"
        )

    def _live(self) -> Any:
        if self._client is None:
            raise ConfigError(f"{self.label}: the session store is closed")
        return self._client

    def _call(self, what: str, op: str, **kwargs: Any) -> dict[str, Any]:
        client = self._live()
        try:
            return getattr(client, op)(**kwargs)
        except self._errors as exc:
            raise self._error(what, exc) from exc

    # table -----------------------------------------------------------------------------------

    def _ensure_table(self) -> None:
        try:
            desc = self._client.describe_table(TableName=self.table)["Table"]
        except self._errors as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise self._error("describe the table", exc) from exc
            desc = self._create_table()
        keys = {k["AttributeName"]: k["KeyType"] for k in desc.get("KeySchema", [])}
        if keys != {"session": "HASH", "turn": "RANGE"}:
            raise ConfigError(
                f"{self.label}: the table exists with keys {keys}, not session (HASH) + turn (RANGE); "
                "use another table name"
            )

    def _create_table(self) -> dict[str, Any]:
        try:
            self._client.create_table(
                TableName=self.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "session", "AttributeType": "S"},
                    {"AttributeName": "turn", "AttributeType": "N"},
                ],
                KeySchema=[
                    {"AttributeName": "session", "KeyType": "HASH"},
                    {"AttributeName": "turn", "KeyType": "RANGE"},
                ],
            )
        except self._errors as exc:
            # ResourceInUseException: another process created it between our describe and create.
            if _code(exc) != "ResourceInUseException":
                raise self._error("create the table", exc) from exc
        try:
            # AWS takes seconds to make a table ACTIVE; the waiter's default 20 s poll is too slow for a CLI.
            self._client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
            return self._client.describe_table(TableName=self.table)["Table"]
        except self._errors as exc:
            raise self._error("wait for the new table", exc) from exc

    # store -----------------------------------------------------------------------------------

    def create(self) -> str:
        session = uuid.uuid4().hex
        self._call(
            "create a session",
            "put_item",
            TableName=self.table,
            Item={"session": {"S": session}, "turn": {"N": "0"}, "created": {"S": _now()}},
            ConditionExpression="attribute_not_exists(#t)",
            ExpressionAttributeNames={"#t": "turn"},
        )
        return session

    def exists(self, session: str) -> bool:
        check_session_id(session)
        out = self._call(
            "look up a session",
            "query",
            TableName=self.table,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "session"},
            ExpressionAttributeValues={":s": {"S": session}},
            ProjectionExpression="#s",
            Limit=1,
            ConsistentRead=True,
        )
        return bool(out.get("Items"))

    def turns(self, session: str) -> list[Turn]:
        check_session_id(session)
        query: dict[str, Any] = dict(
            TableName=self.table,
            KeyConditionExpression="#s = :s AND #t > :z",
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={":s": {"S": session}, ":z": {"N": "0"}},
            ConsistentRead=True,
        )
        out: list[Turn] = []
        while True:
            page = self._call("read a session", "query", **query)
            out.extend(_turn_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:  # 1 MB pages: a long conversation spans several
                return out
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _last_turn(self, session: str) -> int:
        page = self._call(
            "read a session",
            "query",
            TableName=self.table,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "session"},
            ExpressionAttributeValues={":s": {"S": session}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return int(items[0]["turn"]["N"]) if items else 0

    def append(self, session: str, turns: Sequence[Turn]) -> None:
        check_session_id(session)
        rows = _checked(turns)
        for start in range(0, len(rows), _DYNAMO_BATCH):
            self._append_batch(session, rows[start : start + _DYNAMO_BATCH])

    def _append_batch(self, session: str, rows: list[Turn]) -> None:
        """Write the turns as max+1.. only if those numbers are still free; else re-read and retry."""
        for attempt in range(_DYNAMO_RETRIES):
            last = self._last_turn(session)
            items = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _item(session, last + i, t),
                        "ConditionExpression": "attribute_not_exists(#t)",
                        "ExpressionAttributeNames": {"#t": "turn"},
                    }
                }
                for i, t in enumerate(rows, start=1)
            ]
            try:
                self._live().transact_write_items(TransactItems=items)
                return
            except self._errors as exc:
                if not _lost_race(exc):
                    raise self._error("append to a session", exc) from exc
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # let the other writer finish
        raise ConfigError(
            f"{self.label}: session {session} kept changing under {_DYNAMO_RETRIES} append attempts; "
            "retry the question"
        )

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            close = getattr(self._client, "close", None)
            if close is not None:
                close()
        self._client = None


def _item(session: str, turn: int, t: Turn) -> dict[str, Any]:
    return {
        "session": {"S": session},
        "turn": {"N": str(turn)},
        "role": {"S": t.role},
        "text": {"S": t.text},
        "ticker": {"S": t.ticker},
        "sources": {"L": [{"S": s} for s in t.sources]},
        "created": {"S": t.created},
    }


def _turn_from_item(item: dict[str, Any]) -> Turn:
    return Turn(
        role=item["role"]["S"],
        text=item.get("text", {}).get("S", ""),
        ticker=item.get("ticker", {}).get("S", ""),
        sources=tuple(s["S"] for s in item.get("sources", {}).get("L", [])),
        created=item.get("created", {}).get("S", ""),
    )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""


def _lost_race(exc: Exception) -> bool:
    """A transaction cancelled only because another writer already took one of our turn numbers."""
    if _code(exc) != "TransactionCanceledException":
        return False
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    codes = {r.get("Code") for r in reasons} - {"None", None}
    # No reasons listed: treat as a conflict and re-read; the retry limit bounds it.
    return not codes or codes <= {"ConditionalCheckFailed", "TransactionConflict"}
