"""Conversation turns in DynamoDB: the production store the OpenChatKit seed kept its turns in,
shared by every analyst's machine (see reports/session_store.py for the record and the protocol).
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rag.errors import ConfigError
from reports.session_store import Turn, _checked, _now, _one_line, check_session_id

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")  # DynamoDB's own rule for table names
_DYNAMO_BATCH = 100  # TransactWriteItems' item limit; appends larger than this are atomic per batch
_DYNAMO_RETRIES = 8  # conditional-write conflicts before giving up; each needs a concurrent writer


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
