"""`researchdesk audit`: two real nightlies with the fakes chain; every kind of tampering is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from flows.cli import main
from flows.reports import nightly_reports
from rag.atomic import sha256_hex
from reports.audit_trail import rerender, verify_run
from tests.fakes import HashEmbedder


def _tampered(reports: Path, tmp: Path, name: str) -> Path:
    copy = tmp / name
    shutil.copytree(reports, copy, symlinks=True)
    return copy


def test_runs_chain_verify_rerender_and_tampering_is_named(fakes, tmp_path: Path, capsys):
    first = Path(nightly_reports(tickers=["AAPL"], as_of="2025-06-01")["run_dir"])
    second = Path(nightly_reports(tickers=["AAPL"], as_of="2025-06-01", resume=False)["run_dir"])
    assert first != second
    m1, m2 = (json.loads((d / "manifest.json").read_text()) for d in (first, second))
    assert m2["schema_version"] == 2 and m1["previous"] is None
    assert m2["previous"]["run_id"] == first.name
    assert m2["previous"]["manifest_sha256"] == sha256_hex((first / "manifest.json").read_bytes())
    for name in ("AAPL.html", "AAPL.md", "index.html", "audit/completions.jsonl", "audit/context-AAPL.json"):
        assert m2["files"][name]["sha256"] == sha256_hex((second / name).read_bytes()), name
    rec = m2["tickers"]["AAPL"]
    assert rec["inputs"]["completions"] and rec["generation"] and rec["generated_at"]
    assert verify_run(second).ok and verify_run(first).ok

    files = rerender(second, "AAPL", HashEmbedder().encode)  # byte for byte
    assert files["AAPL.html"] == (second / "AAPL.html").read_bytes()
    assert files["AAPL.md"] == (second / "AAPL.md").read_bytes()
    assert main(["audit", str(second)]) == 0
    assert f"audit {second.name}: verified" in capsys.readouterr().out

    reports = second.parent
    copy = _tampered(reports, tmp_path, "html")
    html = copy / second.name / "AAPL.html"
    data = bytearray(html.read_bytes())
    data[100] = ord("X") if data[100] != ord("X") else ord("Y")
    html.write_bytes(bytes(data))
    chart = next((copy / second.name).glob("AAPL-*.svg"))
    chart.unlink()
    assert main(["audit", str(copy / second.name)]) == 1
    out = capsys.readouterr().out
    assert "BAD file AAPL.html: digest differs" in out and f"BAD file {chart.name}: missing" in out

    copy = _tampered(reports, tmp_path, "record")
    path = copy / second.name / "manifest.json"
    m = json.loads(path.read_text())
    m["tickers"]["AAPL"]["status"] = "caution"
    path.write_text(json.dumps(m, indent=1))
    (copy / first.name / "manifest.json").write_text((copy / first.name / "manifest.json").read_text() + " ")
    assert main(["audit", str(copy / second.name), "--json"]) == 1
    out = capsys.readouterr().out
    assert "BAD record AAPL: manifest record was edited" in out
    assert "BAD manifest chain_sha256" in out and f"BAD previous run {first.name}" in out

    copy = _tampered(reports, tmp_path, "completion")
    path = copy / second.name / "audit" / "completions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["text"] = "Apple sold nothing at all [1]."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["audit", str(copy / second.name)]) == 1
    out = capsys.readouterr().out
    assert "BAD file audit/completions.jsonl" in out and f"completion {rows[0]['request_id']}" in out
    assert "BAD re-render AAPL.html: differs from the recorded file" in out
