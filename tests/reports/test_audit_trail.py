"""reports/audit_trail.py on a small run folder: file table, chain hash, previous link, problems listed."""

from __future__ import annotations

import json
from pathlib import Path

from rag.atomic import sha256_hex
from reports.audit_trail import canonical, chain_hash, file_table, previous_link, verify_run


def _run(reports: Path, run_id: str, previous: dict | None) -> Path:
    d = reports / run_id
    (d / "audit").mkdir(parents=True)
    (d / "AAPL.html").write_text("<p>report</p>")
    (d / "audit" / "context-AAPL.json").write_text("{}")
    record = {"status": "published"}
    m = {
        "schema_version": 2,
        "run_id": run_id,
        "tickers": {"AAPL": record},
        "files": file_table(d),
        "previous": previous,
        "records_sha256": {"AAPL": sha256_hex(canonical(record))},
    }
    m["chain_sha256"] = chain_hash(m, (previous or {}).get("chain_sha256", ""))
    (d / "manifest.json").write_text(json.dumps(m, indent=1))
    return d


def test_chain_links_and_every_problem_is_listed(tmp_path: Path):
    first = _run(tmp_path, "r1", None)
    (tmp_path / "latest").symlink_to("r1")
    prev = previous_link(tmp_path, "r2")
    assert prev["run_id"] == "r1" and prev["manifest_sha256"] == sha256_hex(
        (first / "manifest.json").read_bytes()
    )
    assert previous_link(tmp_path, "r1") is None  # a run never chains to itself
    second = _run(tmp_path, "r2", prev)
    assert set(json.loads((second / "manifest.json").read_text())["files"]) == {
        "AAPL.html",
        "audit/context-AAPL.json",
    }
    assert verify_run(second).ok

    (second / "AAPL.html").write_text("<p>rep0rt</p>")
    (second / "audit" / "context-AAPL.json").unlink()
    (first / "manifest.json").write_text((first / "manifest.json").read_text().replace("r1", "r1", 1) + "\n")
    problems = verify_run(second).problems
    assert problems == [
        "file AAPL.html: digest differs",
        "file audit/context-AAPL.json: missing",
        "previous run r1: its manifest.json differs from the one chained",
    ]


def test_schema_1_manifest_cannot_be_audited(tmp_path: Path):
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "old", "tickers": {}}))
    assert verify_run(tmp_path).problems[0].startswith("manifest schema")
