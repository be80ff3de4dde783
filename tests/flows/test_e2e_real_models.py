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
    chat = manifest["model"]["chat"]
    assert chat["preset"] == "smollm2-135m" and chat["revision"].startswith("sha256:")
    assert chat["requests"] == 4 and chat["tokens_out"] > 0
    record = manifest["tickers"]["AAPL"]
    assert [s["key"] for s in record["sections"]] == ["overview", "financials", "developments", "risks"]
    for section in record["sections"]:
        mod = section["moderation"]
        assert mod["label"] in LABELS and set(mod["scores"]) == set(LABELS)
        assert (
            section["status"]
            == {"publish": "published", "caution": "caution", "withhold": "withheld"}[mod["action"]]
        )
        assert section["tokens_out"] > 0 and section["prompt_digest"]

    # every citation link in the HTML resolves to a listed source; published text is cited somewhere
    html = (run_dir / "AAPL.html").read_text()
    links = set(re.findall(r'href="#src-(\d+)"', html))
    assert all(f'id="src-{n}"' in html for n in links)
    shown = [s for s in record["sections"] if s["status"] in ("published", "caution")]
    if any(s["paragraphs"] for s in shown):
        assert links, "no citation in any shown section"
    assert "391,035" in html  # exact XBRL revenue, whatever the model wrote
    assert "<script" not in html.lower()
