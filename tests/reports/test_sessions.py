"""Conversation stores for `researchdesk ask --session`: SQLite files and DynamoDB over real HTTP.

DynamoDB runs as moto's server on a local port, reached through AWS_ENDPOINT_URL_DYNAMODB exactly
as DynamoDB Local or AWS would be; nothing in-process is patched. The shared behaviour is one set
of tests parametrized over both backends.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from rag.errors import ConfigError
from reports.sessions import (
    DynamoSessions,
    SessionStore,
    SqliteSessions,
    Turn,
    history_within,
    open_sessions,
)

REPO = Path(__file__).resolve().parents[2]
QUESTION = Turn("user", "What drove Q3 gross margin?", ticker="AAPL")
ANSWER = Turn(
    "assistant",
    "Services mix [1] and lower component costs [2]; € and — survive.\nSecond line.",
    ticker="AAPL",
    sources=("10-Q 2024-08-02 p.14", "news: Reuters 2024-08-01"),
)


def _table() -> str:
    return f"sessions-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "dynamodb"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SessionStore]]:
    """A factory of fresh store objects over ONE backing file/table, so tests can reopen it."""
    if request.param == "sqlite":
        path = tmp_path / "var" / "sessions.sqlite"

        def make() -> SessionStore:
            return SqliteSessions(path)
    else:
        request.getfixturevalue("dynamo")
        table = _table()

        def make() -> SessionStore:
            return DynamoSessions(table)

    opened: list[SessionStore] = []

    def tracked() -> SessionStore:
        opened.append(make())
        return opened[-1]

    yield tracked
    for store in opened:
        store.close()


def _stamped(turn: Turn, created: str) -> Turn:
    return Turn(turn.role, turn.text, turn.ticker, turn.sources, created)


# --- both backends ------------------------------------------------------------------------------


def test_round_trip_across_store_objects(open_store: Callable[[], SessionStore]) -> None:
    first = open_store()
    session = first.create()
    assert len(session) == 32 and int(session, 16) >= 0
    assert first.exists(session) and first.turns(session) == []
    first.append(session, [QUESTION, ANSWER])
    first.close()

    got = open_store().turns(session)
    created = got[0].created
    assert got == [_stamped(QUESTION, created), _stamped(ANSWER, created)]
    assert isinstance(got[1].sources, tuple)
    assert datetime.fromisoformat(created).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_unknown_session_is_empty(open_store: Callable[[], SessionStore]) -> None:
    store = open_store()
    store.append(store.create(), [QUESTION])  # another session's turns must not leak
    unknown = uuid.uuid4().hex
    assert not store.exists(unknown)
    assert store.turns(unknown) == []


def test_appends_keep_order_and_create_the_session(open_store: Callable[[], SessionStore]) -> None:
    session = "analyst-7_follow_up"
    a, b = open_store(), open_store()
    assert not a.exists(session)
    a.append(session, [Turn("user", "q1"), Turn("assistant", "a1")])
    b.append(session, [Turn("user", "q2"), Turn("assistant", "a2", sources=("s",))])
    a.append(session, [])
    assert a.exists(session) and b.exists(session)
    assert [t.text for t in a.turns(session)] == ["q1", "a1", "q2", "a2"]
    assert [t.role for t in b.turns(session)] == ["user", "assistant"] * 2


def test_given_created_and_empty_fields_survive(open_store: Callable[[], SessionStore]) -> None:
    store = open_store()
    session = store.create()
    turns = [Turn("user", "", created="2024-01-02T03:04:05.000+00:00"), Turn("assistant", "x", sources=())]
    store.append(session, turns)
    got = store.turns(session)
    assert got[0] == turns[0]
    assert got[1].ticker == "" and got[1].sources == () and got[1].created


def test_create_gives_distinct_ids(open_store: Callable[[], SessionStore]) -> None:
    store = open_store()
    ids = {store.create() for _ in range(5)}
    assert len(ids) == 5 and all(store.exists(i) for i in ids)


BAD_IDS = ["", "a b", "x" * 129, "../etc/passwd", "id;DROP TABLE turns", "café", "a\nb", "a/b"]


def test_bad_session_ids_are_config_errors(open_store: Callable[[], SessionStore]) -> None:
    store = open_store()
    for bad in BAD_IDS:
        for call in (store.exists, store.turns, lambda s: store.append(s, [QUESTION])):
            with pytest.raises(ConfigError, match="bad session id") as err:
                call(bad)
            assert "\n" not in str(err.value)
    assert store.turns("x" * 128) == []  # the limit itself is fine


def test_bad_role_is_a_bug_not_a_config_error(open_store: Callable[[], SessionStore]) -> None:
    store = open_store()
    session = store.create()
    with pytest.raises(ValueError, match="role"):
        store.append(session, [QUESTION, Turn("system", "x")])
    assert store.turns(session) == []  # validated before anything was written


# --- SQLite -------------------------------------------------------------------------------------


def test_sqlite_makes_folders_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.db"
    SqliteSessions(path).close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_corrupt_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite"
    path.write_bytes(b"this is not a database file at all " * 200)
    with pytest.raises(ConfigError, match="not a database") as err:
        SqliteSessions(path)
    assert str(path) in str(err.value) and "move it aside" in str(err.value) and "\n" not in str(err.value)


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="newer than this researchdesk"):
        SqliteSessions(path)


def test_sqlite_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteSessions(tmp_path / "s.db")
    store.close()
    store.close()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        store.turns("abc")


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reports.sessions import SqliteSessions, Turn
    path, session, name, n, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
    store = SqliteSessions(Path(path))
    (go.parent / f"ready-{name}").touch()
    while not go.exists():
        time.sleep(0.005)
    for i in range(n):
        store.append(session, [Turn("user", f"{name} q{i}"), Turn("assistant", f"{name} a{i}")])
        time.sleep(0.002)  # a gap between appends so the other writer gets the lock: real interleaving
    store.close()
    """
)


def test_sqlite_two_processes_appending_to_one_session(tmp_path: Path) -> None:
    path, go, n = tmp_path / "s.db", tmp_path / "go", 40
    session = SqliteSessions(path).create()
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), session, name, str(n), str(go)], cwd=REPO)
        for name in ("p1", "p2")
    ]
    deadline = time.monotonic() + 20
    while not all((tmp_path / f"ready-{n}").exists() for n in ("p1", "p2")) and time.monotonic() < deadline:
        time.sleep(0.01)  # both have opened the store; the go file releases them together
    go.touch()
    assert [p.wait(timeout=30) for p in procs] == [0, 0]

    texts = [t.text for t in SqliteSessions(path).turns(session)]
    assert len(texts) == 4 * n
    for q, a in zip(texts[::2], texts[1::2], strict=True):  # each question is followed by its answer
        assert a == q.replace(" q", " a")
    for name in ("p1", "p2"):
        assert [t for t in texts if t.startswith(name)][::2] == [f"{name} q{i}" for i in range(n)]


# --- DynamoDB -----------------------------------------------------------------------------------


def test_dynamo_creates_the_table_with_the_expected_items(dynamo: str) -> None:
    import boto3

    table = _table()
    store = DynamoSessions(table)
    client = boto3.client("dynamodb")
    desc = client.describe_table(TableName=table)["Table"]
    keys = {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]}
    assert keys == {"session": "HASH", "turn": "RANGE"}
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert desc["TableStatus"] == "ACTIVE"

    store.append("s1", [QUESTION, ANSWER])
    item = client.get_item(TableName=table, Key={"session": {"S": "s1"}, "turn": {"N": "2"}})["Item"]
    assert item["role"] == {"S": "assistant"} and item["ticker"] == {"S": "AAPL"}
    assert item["sources"] == {"L": [{"S": s} for s in ANSWER.sources]}
    assert item["text"]["S"] == ANSWER.text and item["created"]["S"]
    DynamoSessions(table).close()  # an existing table is reused, not recreated
    store.close()


def test_dynamo_generic_endpoint_variable_is_honoured(dynamo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    monkeypatch.setenv("AWS_ENDPOINT_URL", dynamo)
    store = DynamoSessions(_table())
    store.append("s", [QUESTION])
    assert store.turns("s")[0].text == QUESTION.text


def test_dynamo_table_with_other_keys_is_refused(dynamo: str) -> None:
    import boto3

    table = _table()
    boto3.client("dynamodb").create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    with pytest.raises(ConfigError, match="use another table name"):
        DynamoSessions(table)


def test_dynamo_append_retries_when_another_writer_took_the_turn_numbers(
    dynamo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DynamoSessions(_table())
    store.append("s", [Turn("user", "q1"), Turn("assistant", "a1")])
    real, reads = store._last_turn, []

    def stale_once(session: str) -> int:
        reads.append(session)  # the first read sees the session as it was before the other writer's turns
        return 0 if len(reads) == 1 else real(session)

    monkeypatch.setattr(store, "_last_turn", stale_once)
    store.append("s", [Turn("user", "q2"), Turn("assistant", "a2")])
    assert len(reads) == 2  # the conditional write failed once, then the re-read numbered after a1
    assert [t.text for t in store.turns("s")] == ["q1", "a1", "q2", "a2"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dynamo_unreachable_endpoint_is_a_quick_config_error(
    dynamo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.config import Config

    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
    quick = Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        DynamoSessions("reports-sessions", client=boto3.client("dynamodb", config=quick))
    assert time.monotonic() - started < 5
    msg = str(err.value)
    assert msg.startswith(f"dynamodb://reports-sessions: cannot reach DynamoDB at {url}")
    assert "AWS_ENDPOINT_URL_DYNAMODB" in msg and "\n" not in msg


def test_dynamo_without_credentials_is_a_config_error(
    dynamo: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import boto3

    for var in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(f"AWS_{var}", raising=False)
    for var in ("RELATIVE_URI", "FULL_URI"):
        monkeypatch.delenv(f"AWS_CONTAINER_CREDENTIALS_{var}", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials the other tests found
    with pytest.raises(ConfigError, match="no usable AWS credentials.*AWS_ACCESS_KEY_ID"):
        DynamoSessions(_table())


def test_dynamo_without_region_is_a_config_error(
    dynamo: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import boto3

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(ConfigError, match="no AWS region configured; set AWS_DEFAULT_REGION"):
        DynamoSessions(_table())


def test_dynamo_closed_store_says_so(dynamo: str) -> None:
    store = DynamoSessions(_table())
    store.close()
    store.close()
    with pytest.raises(ConfigError, match="closed"):
        store.append("s", [QUESTION])


# --- open_sessions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "var/sessions.sqlite"),
        ("sqlite", "var/sessions.sqlite"),
        (" sqlite ", "var/sessions.sqlite"),
        ("sqlite:chat.db", "var/chat.db"),
        ("sqlite:sub/chat.db", "var/sub/chat.db"),
        ("sqlite://{tmp}/abs/chat.db", "abs/chat.db"),
    ],
)
def test_open_sessions_sqlite_forms(tmp_path: Path, spec: str, expected: str) -> None:
    store = open_sessions(spec.format(tmp=tmp_path), tmp_path / "var")
    assert isinstance(store, SqliteSessions) and store.path == tmp_path / expected
    assert store.path.exists()
    store.close()


def test_open_sessions_dynamodb(dynamo: str, tmp_path: Path) -> None:
    table = _table()
    store = open_sessions(f"dynamodb://{table}", tmp_path)
    assert isinstance(store, DynamoSessions) and store.table == table
    store.close()


@pytest.mark.parametrize(
    "spec",
    ["postgres://db/x", "sqlite:", "sqlite://", "sqlite://host/x.db", "sqlite:/abs.db", "dynamodb://",
     "dynamodb://ab", "dynamodb://bad name", "dynamo://t", "SQLITE"],
)  # fmt: skip
def test_open_sessions_rejects_other_specs(tmp_path: Path, spec: str) -> None:
    with pytest.raises(ConfigError, match="bad sessions store") as err:
        open_sessions(spec, tmp_path)
    assert "\n" not in str(err.value)
    if not spec.startswith("dynamodb://"):
        assert "sqlite:///abs/path.db" in str(err.value) and "dynamodb://TABLE" in str(err.value)


# --- history_within -----------------------------------------------------------------------------


def _texts(*lengths: int) -> list[Turn]:
    return [Turn("user" if i % 2 == 0 else "assistant", str(i) * n) for i, n in enumerate(lengths)]


@pytest.mark.parametrize(
    ("lengths", "budget", "kept"),
    [
        ((10, 20, 30), 60, [0, 1, 2]),  # all fit exactly
        ((10, 20, 30), 1000, [0, 1, 2]),
        ((10, 20, 30), 59, [1, 2]),  # newest first: the oldest goes
        ((10, 20, 30), 50, [1, 2]),
        ((10, 20, 30), 49, [2]),  # a turn is never cut to fill the budget
        ((10, 20, 30), 29, []),  # the newest alone is too long: nothing, not a fragment
        ((5, 100, 5), 50, [2]),  # stops at the first misfit: no gap in the history
        ((10, 0), 0, [1]),
        ((), 100, []),
        ((10,), -1, []),
    ],
)
def test_history_within(lengths: tuple[int, ...], budget: int, kept: list[int]) -> None:
    turns = _texts(*lengths)
    got = history_within(turns, budget)
    assert got == [turns[i] for i in kept]
    assert sum(len(t.text) for t in got) <= max(budget, 0)
