"""bench/load.py end to end on a few synthetic tickers cloned from Apple's shipped files (< 60 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.flows.conftest import aapl_data_dir

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "load.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_small_load_run_writes_every_report_and_prints_the_json(tmp_path: Path):
    data = aapl_data_dir(tmp_path)  # Apple's 10-K, facts, news + Wikipedia: fast
    out = _bench("--tickers", "4", "--every", "2", "--data", str(data), "--work", str(tmp_path / "work"))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert {"name", "ours", "baseline", "unit", "ratio"} <= result.keys()
    assert result["name"] == "load-nightly" and result["unit"] == "reports/min"
    assert result["ours"] > 0 and result["baseline"] > 0
    assert result["ratio"] == round(result["ours"] / result["baseline"], 3)
    assert result["tickers"] == result["published"] == result["reports_written"] == 4
    assert result["failed"] == {} and result["missing_reports"] == []
    assert 0 < result["per_ticker_s"]["p50"] <= result["per_ticker_s"]["p95"]
    assert result["peak_rss_mb"] > 0
    # RSS every 2 tickers, for the context stage and the publish stage, also as progress lines
    series = [(p["stage"], p["tickers"]) for p in result["rss_series"]]
    assert series == [("context", 2), ("context", 4), ("publish", 2), ("publish", 4)]
    progress = [json.loads(line)["progress"] for line in lines[:-1] if line.startswith('{"progress"')]
    assert [p for p in progress if p["stage"] != "synthesized"] == result["rss_series"]

    # every synthetic ticker is a clone of Apple: its own report, from its own cloned passages
    run_dir = Path(result["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert sorted(manifest["tickers"]) == ["ZL0001", "ZL0002", "ZL0003", "ZL0004"]
    for ticker, record in manifest["tickers"].items():
        assert record["status"] == "published", ticker
        assert (run_dir / f"{ticker}.md").is_file() and (run_dir / f"{ticker}.html").is_file()
        docs = {d["doc_id"] for d in record["documents"]}
        assert f"filings:{ticker.lower()}-10-k-2024-11-01.html.gz" in docs, docs
        assert "Apple" in (run_dir / f"{ticker}.md").read_text()
    assert result["setup"]["templates"] == ["AAPL"]
    assert result["setup"]["passages"]["filings"] == 4 * (result["setup"]["passages"]["filings"] // 4) > 0


def test_bad_arguments_are_one_line_errors(tmp_path: Path):
    out = _bench("--tickers", "0", "--work", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error:") and len(out.stderr.strip().splitlines()) == 1
    out = _bench("--tickers", "2", "--data", str(tmp_path / "nowhere"), "--work", str(tmp_path))
    assert out.returncode == 2
    assert "not a data folder" in out.stderr and len(out.stderr.strip().splitlines()) == 1
