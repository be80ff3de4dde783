"""End to end with the real offline models: SmolLM2-135M (GGUF in a package) and MiniLM.

Slow (about a minute): one ticker, real ingest, real batched generation and moderation. The
converted-model cache is shared with `make demo` (var/models) so only the first run pays the
GGUF conversion.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from models.moderation import LABELS
from tests.flows.conftest import aapl_data_dir

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


@pytest.fixture
def real_env(monkeypatch, tmp_path: Path) -> Path:
    data = aapl_data_dir(tmp_path)
    with (
        gzip.open(DATA / "wikipedia" / "companies.jsonl.gz", "rt") as src,
        gzip.open(data / "wikipedia" / "companies.jsonl.gz", "wt") as dst,
    ):  # Apple's page and the background pages only: less to embed
        dst.writelines(line for line in src if json.loads(line)["ticker"] in ("AAPL", ""))
    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(data))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RESEARCHDESK_MODELS_DIR", str(ROOT / "var" / "models"))
    return tmp_path


@pytest.mark.slow
def test_real_models_write_a_cited_moderated_report(real_env: Path):
    from flows.reports import ticker_report

    result = ticker_report("AAPL", as_of="2025-06-01")
    run_dir = Path(result["run_dir"])
    assert result["status"] == "completed", result["failed"]
    for name in ("AAPL.md", "AAPL.html", "index.html", "manifest.json"):
        assert (run_dir / name).stat().st_size > 0, name

    manifest = json.loads((run_dir / "manifest.json").read_text())
    ctx = json.loads((run_dir / "audit" / "context-AAPL.json").read_text())
    units = [u for sec in ctx["sections"] for u in sec["units"]]
    chat = manifest["model"]["chat"]
    assert chat["preset"] == "smollm2-135m" and chat["revision"].startswith("sha256:")
    assert chat["requests"] == len(units) > 0 and chat["tokens_out"] > 0
    record = manifest["tickers"]["AAPL"]
    assert [s["key"] for s in record["sections"]] == ["overview", "financials", "developments", "risks"]
    for section in record["sections"]:
        mod = section["moderation"]
        if section["units"]:  # sections the model wrote for are moderated, every label scored
            assert mod["label"] in LABELS and set(mod["scores"]) == set(LABELS)
            assert all(u["prompt_digest"] and u["tokens_out"] > 0 for u in section["units"])
        # no banner on ordinary text: the small model's own labels are advisory only
        assert section["status"] == "published", (section["key"], mod)

    # every citation link in the HTML resolves to a listed source; published text is cited somewhere
    html = (run_dir / "AAPL.html").read_text()
    links = set(re.findall(r'href="#src-(\d+)"', html))
    assert links and all(f'id="src-{n}"' in html for n in links)
    assert "391,035" in html  # exact XBRL revenue, whatever the model wrote
    assert "<script" not in html.lower()
    # decoding cannot invent: every digit string in model-written prose is in its section's sources
    md = (run_dir / "AAPL.md").read_text()
    allowed = {n.replace(",", "") for u in units for n in u["allowed_numbers"]}
    for line in md.splitlines():
        if "_(model-written)_" in line:
            prose = re.sub(r"\[\d+(?:, \d+)*\]", "", line)
            assert {d.replace(",", "") for d in re.findall(r"\d(?:[\d,.]*\d)?", prose)} <= allowed, line
    assert all(s["numbers_unverified"] == [] for s in record["sections"])
