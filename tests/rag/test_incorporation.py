"""A 10-K whose Item 8 only points to the annual report (Exhibit 13) is flagged at parse time.

Real text only: Wells Fargo's FY2024 10-K (tests/fixtures/incorporation/README.md), whose Item 8
incorporates the 2024 Annual Report to Shareholders by reference; the shipped AAPL and NVDA 10-Ks
(NVDA's Item 8 is a one-sentence pointer too, but to statements inside the same document); and
JPMorgan's FY2024 10-K items as cut by a third party (shared data), which hold a website
disclaimer "... is not incorporated by reference ..." and an in-document page reference.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag.facts import facts_from_inline_xbrl
from rag.sources import collect_skips
from rag.sources.filings import parse_filing
from rag.sources.incorporation import NO_STATEMENTS, incorporated_by_reference
from rag.types import Document, Section

ROOT = Path(__file__).resolve().parents[2]
WFC = ROOT / "tests" / "fixtures" / "incorporation" / "wfc-10-k-2025-02-25.html.gz"
FILINGS = ROOT / "data" / "sec" / "filings"
JPM_ITEMS = Path("/work/shared/data/sec/10-K_item_text/JPM.business_items.json.gz")


@pytest.fixture(scope="module")
def parsed() -> dict[str, tuple[Document, list[str]]]:
    """Each 10-K parsed once for the module, with the skip notes its parse recorded."""
    out = {}
    for path in (WFC, FILINGS / "aapl-10-k-2024-11-01.html.gz", FILINGS / "nvda-10-k-2025-02-26.html.gz"):
        with collect_skips() as skips:
            out[path.name.split("-")[0]] = (parse_filing(path), list(skips))
    return out


def test_wells_fargo_item_8_is_incorporated_by_reference(parsed):
    doc, skips = parsed["wfc"]
    item8 = next(s for s in doc.sections if s.key == "8")
    assert "incorporated into this item by reference" in item8.text
    reason = incorporated_by_reference(doc.sections, doc.form)
    assert reason == "Item 8 (261 characters) refers to the 2024 Annual Report to Shareholders"
    assert skips == [f"financial statements incorporated by reference ({reason}): {NO_STATEMENTS}"]
    # the reason the note exists: the 10-K document itself yields no statement facts
    assert facts_from_inline_xbrl(WFC) == []


@pytest.mark.parametrize("name", ["aapl", "nvda"])
def test_ordinary_10ks_are_not_flagged(parsed, name):
    doc, skips = parsed[name]
    assert incorporated_by_reference(doc.sections, doc.form) is None
    assert not any("incorporated by reference" in s for s in skips)


def test_nvda_short_item_8_points_inside_the_same_filing(parsed):
    doc, _ = parsed["nvda"]
    item8 = next(s for s in doc.sections if s.key == "8")
    assert len(item8.text) < 300 and "included in this Annual Report on Form 10-K" in item8.text


@pytest.mark.skipif(not JPM_ITEMS.exists(), reason="shared JPM item text not present")
def test_jpm_pointers_and_disclaimers_are_not_incorporation():
    items = json.loads(gzip.open(JPM_ITEMS).read())["item_sections"]
    assert set(items) == {"item1", "item1a", "item1b", "item1c"}  # no Item 8 in this data set
    sections = [Section(key=k.removeprefix("item").upper(), title=k, text=v) for k, v in items.items()]
    assert incorporated_by_reference(sections) is None  # nothing to judge without Item 8
    disclaimer = next(p for p in items["item1"].split("\n") if "not incorporated by reference" in p)
    assert "Annual Report on Form 10-K" in disclaimer
    # Either real text standing in as a short Item 8 must still not be flagged.
    for text in (disclaimer, items["item1c"]):
        assert incorporated_by_reference([Section(key="8", title="Item 8", text=text)]) is None


def test_only_10k_item_8_counts(parsed):
    doc, _ = parsed["wfc"]
    assert incorporated_by_reference(doc.sections, "10-Q") is None
    # the same pointer under Item 7 (MD&A) is not about the statements
    assert incorporated_by_reference([s for s in doc.sections if s.key != "8"]) is None
