"""The run manifest (`manifest.json`): one typed record of a report run, written next to its reports.

Built once, by flows/run_record.py `finish_run`, and written with `model_dump()`; read back by
`researchdesk eval faithfulness` (reports/audit.py), bench/grounding.py and anyone auditing a run.
`schema_version` says which layout a file has: manifests written before it existed have the same
layout as version 1 and load as such; a file from a newer researchdesk is refused with a message.

Per-ticker records (`tickers`) stay plain dicts: their layout is reports/audit.py
`section_records` plus the publish task's fields, and they travel through Prefect's JSON result
store on resume, so they are kept exactly as that store returns them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

SCHEMA_VERSION = 2  # 2: per-file digests + sizes, inputs pinned per ticker, hash chain across runs


class ResumeInfo(BaseModel):
    """What a resumed run kept from an earlier attempt of the same run folder."""

    resumed_tickers: list[str] = []
    sections_cached: int = 0  # completions reused from the result store
    sections_generated: int = 0  # completions the model produced in this attempt
    model_key: str = ""  # preset@revision the resume keys were made with


class ModelInfo(BaseModel):
    """Models and policy of the run; `chat` and `moderation` are the jobs' own accounting."""

    chat: dict = {}
    moderation: dict = {}
    embedder: str = ""
    policy: dict[str, str] = {}


class RunManifest(BaseModel):
    # extra="allow": a reader keeps fields it does not know (added later) instead of dropping them
    model_config = ConfigDict(extra="allow")

    # a file without the field predates versioning (layout 1); finish_run writes SCHEMA_VERSION
    schema_version: int = 1
    run_id: str
    as_of: str
    started_at: str  # ISO timestamps, UTC
    finished_at: str
    status: Literal["completed", "partial", "failed"]
    tickers: dict[str, dict]  # ticker -> publish record, or {"status": "failed", "error": ...}
    failed: dict[str, str] = {}  # ticker -> one-line reason
    resume: ResumeInfo = ResumeInfo()
    model: ModelInfo = ModelInfo()
    ingest: dict | None = None  # ingest summary of this run; None when ingest was skipped
    timings_s: dict[str, float] = {}  # stage -> seconds
    settings: dict = {}
    # schema 2 (reports/audit_trail.py verifies them): every file of the run folder but manifest.json,
    # {relative path: {"sha256", "bytes"}}; the previous run's {run_id, manifest_sha256, chain_sha256};
    # each ticker record's digest; sha256(previous chain_sha256 + canonical content of this manifest)
    files: dict[str, dict] = {}
    previous: dict | None = None
    records_sha256: dict[str, str] = {}
    chain_sha256: str = ""

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v > SCHEMA_VERSION:
            raise ValueError(
                f"manifest schema_version {v} is newer than this researchdesk reads ({SCHEMA_VERSION}); "
                "upgrade researchdesk to read it"
            )
        return v


def load_manifest(path: Path) -> RunManifest:
    """Read a run's manifest.json (any schema_version up to SCHEMA_VERSION; raises ValueError if not one)."""
    return RunManifest.model_validate_json(path.read_text())
