"""The run manifest model: versioned, and manifests written before schema_version still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.audit import faithfulness
from reports.manifest import SCHEMA_VERSION, RunManifest, load_manifest

OLD = {  # a manifest as written before schema_version existed (same keys otherwise)
    "run_id": "2025-06-01-abcd1234",
    "as_of": "2025-06-01",
    "started_at": "2025-06-02T01:00:00Z",
    "finished_at": "2025-06-02T01:05:00Z",
    "status": "partial",
    "tickers": {"ZZZZ": {"status": "failed", "error": "ZZZZ: unknown ticker"}},
    "failed": {"ZZZZ": "ZZZZ: unknown ticker"},
    "resume": {"resumed_tickers": [], "sections_cached": 0, "sections_generated": 3, "model_key": "p@r"},
    "model": {"chat": {"preset": "p"}, "moderation": {}, "embedder": "e", "policy": {"casual": "publish"}},
    "ingest": None,
    "timings_s": {"ingest": 0.5, "total": 9.0},
    "settings": {"seed": 0},
}


def test_old_manifest_loads_as_version_1_and_round_trips(tmp_path: Path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(OLD))
    manifest = load_manifest(path)
    assert manifest.schema_version == 1 and SCHEMA_VERSION == 2  # no field: the pre-versioning layout
    schema_2_defaults = {"files": {}, "previous": None, "records_sha256": {}, "chain_sha256": ""}
    assert manifest.model_dump() == {"schema_version": 1, **OLD, **schema_2_defaults}
    assert faithfulness(manifest) == faithfulness(OLD)
    assert faithfulness(manifest)["reports"] == {}


def test_newer_manifest_is_refused_with_a_message():
    with pytest.raises(ValueError, match="newer"):
        RunManifest.model_validate({**OLD, "schema_version": SCHEMA_VERSION + 1})


def test_schema_2_fields_round_trip():
    new = {**OLD, "schema_version": 2, "files": {"AAPL.html": {"sha256": "ab", "bytes": 3}},
           "previous": {"run_id": "r0", "manifest_sha256": "cd", "chain_sha256": "ef"},
           "records_sha256": {"ZZZZ": "01"}, "chain_sha256": "23"}
    manifest = RunManifest.model_validate(new)
    assert manifest.model_dump() == new and manifest.previous["run_id"] == "r0"
