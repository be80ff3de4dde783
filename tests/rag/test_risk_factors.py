"""Item 1A risk headings from the real shipped 10-Ks, a synthetic bold-lead paragraph, the ingest
hook and its cache, and linking a risk to its passage.

Expected counts and first/last headings were read from the filings themselves and cross-checked
with an independent regex scan of the raw HTML for fully emphasized paragraphs between the body's
"Risk Factors" and "Unresolved Staff Comments" headings: the same headings, none missing.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from rag import risk_factors as rf
from rag.chunking import chunk_document
from rag.ingest import RISKS_FILE, ingest
from rag.sources.filings import parse_filing
from rag.sources.html_text import decompress, html_blocks, load_html, read_raw
from rag.store import CorpusStore
from tests.fakes import HashEmbedder

DATA = Path(__file__).resolve().parents[2] / "data"
FILINGS = DATA / "sec" / "filings"

# file -> (risks, categories, first heading, last heading)
EXPECTED = {
    "aapl-10-k-2024-11-01": (
        28,
        5,
        "The Company’s operations and performance depend significantly on global and regional economic conditions and adverse economic conditions can materially adversely affect the Company’s business, results of operations and financial condition.",
        "The price of the Company’s stock is subject to volatility.",
    ),
    "amzn-10-k-2025-02-07": (
        24,
        3,
        "We Face Intense Competition",
        "We Are Subject to Risks Related to Government Contracts and Related Procurement Regulations",
    ),
    "meta-10-k-2025-01-30": (
        48,
        5,
        "If we fail to retain existing users or add new users, or if our users decrease their level of engagement with our products, our revenue, financial results, and business may be significantly harmed.",
        "Delaware law and provisions in our certificate of incorporation and bylaws could make a merger, tender offer, or proxy contest difficult, thereby depressing the trading price of our Class A common stock.",
    ),
    "nvda-10-k-2025-02-26": (
        23,
        4,
        "Failure to meet the evolving needs of our industry and markets may adversely impact our financial results.",
        "Delaware law and our certificate of incorporation, bylaws and agreement with Microsoft could delay or prevent a change in control.",
    ),
    "tsla-10-k-2025-01-30": (
        40,
        4,
        "We may experience delays in launching and ramping the production of our products and features, or we may be unable to control our manufacturing costs.",
        "Anti-takeover provisions contained in our governing documents, applicable laws and certain of our debt facilities could impair a takeover attempt.",
    ),
}
CATEGORIES = [  # (file, heading starts with, category)
    ("aapl-10-k-2024-11-01", "The price of the Company’s stock", "General Risks"),
    ("aapl-10-k-2024-11-01", "The Company depends on component and product", "Business Risks"),
    ("amzn-10-k-2025-02-07", "We Face Intense Competition", "Business and Industry Risks"),
    ("amzn-10-k-2025-02-07", "We Face Additional Tax Liabilities", "Legal and Regulatory Risks"),
    ("meta-10-k-2025-01-30", "If we fail to retain existing users", "Risks Related to Our Product Offerings"),
    ("nvda-10-k-2025-02-26", "Climate change may have", "Risks Related to Our Global Operating Business"),
    (
        "tsla-10-k-2025-01-30",
        "We are highly dependent on the services of Elon Musk",
        "Risks Related to Our Operations",
    ),
]


@pytest.fixture(scope="module")
def risks() -> dict[str, list[rf.RiskFactor]]:
    return {name: rf.risk_factors_from_filing(FILINGS / f"{name}.html.gz") for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shipped_10k_headings(risks, name):
    count, categories, first, last = EXPECTED[name]
    rows = risks[name]
    assert len(rows) == count
    assert len({r.category for r in rows}) == categories and all(r.category for r in rows)
    assert rows[0].heading == first and rows[-1].heading == last
    assert [r.ordinal for r in rows] == list(range(count))
    doc = parse_filing(FILINGS / f"{name}.html.gz")
    section = " ".join({s.key: s for s in doc.sections}["1A"].text.split())
    for r in rows:
        assert (r.doc_id, r.url, r.ticker, r.form, r.filed) == (
            doc.doc_id,
            doc.url,
            doc.ticker,
            "10-K",
            doc.date,
        )
        assert r.heading in section  # boundaries agree with the passages' Item 1A
        assert 20 <= len(r.heading) <= 600 and r.heading == " ".join(r.heading.split())
        assert re.match(r"[A-Z]", r.heading) and not r.heading.startswith("•")
        assert not re.match(r"(item\s*\d|part\s+i|table of contents|risk factors)", r.heading, re.I)
        assert "Form 10-K" not in r.heading and not re.search(r"\|\s*\d+$", r.heading)  # no footers
        assert 0 < len(r.body) <= rf.MAX_BODY and not r.body.startswith(("Item 1B", "ITEM 1B"))


@pytest.mark.parametrize(("name", "start", "category"), CATEGORIES)
def test_category_assignment(risks, name, start, category):
    [row] = [r for r in risks[name] if r.heading.startswith(start)]
    assert row.category == category


def test_introductions_and_summaries_are_not_risks(risks):
    headings = [r.heading for rows in risks.values() for r in rows]
    # TSLA/NVDA print an italic introduction; META and NVDA open Item 1A with a risk summary
    assert not any(
        h.startswith(("You should carefully consider", "price to decline", "The following risk"))
        for h in headings
    )
    assert not any(h.startswith("Risks Related to") or "Summary" in h for h in headings)
    assert len(set(headings)) == len(headings)


def test_emphasis_walk_keeps_the_passage_blocks():
    path = FILINGS / "nvda-10-k-2025-02-26.html.gz"
    raw = decompress(read_raw(path), path)
    blocks, paras = rf.emphasized_blocks(load_html(raw, path))
    assert [b.text for b in blocks] == [b.text for b in html_blocks(load_html(raw, path))]
    assert [p.text for p in paras] == [b.text for b in blocks]


def _ten_k(risk_section: str) -> str:
    return f"""<html><body>
<table><tr><td>Item 1.</td><td>Business</td></tr><tr><td>Item 1A.</td><td>Risk Factors</td></tr>
<tr><td>Item 2.</td><td>Properties</td></tr></table>
<div><b>Item 1.</b></div><div>Business</div><p>We sell widgets to hardware stores in three states.</p>
<div><b>Item 1A.</b></div><div><b>Risk Factors</b></div>{risk_section}
<div><b>Item 2. Properties</b></div><p>We lease a warehouse in Ohio, which is all we own or rent.</p>
</body></html>"""


def test_bold_lead_sentence_then_body_in_one_paragraph(tmp_path):
    path = tmp_path / "wid-10-k-2024-03-01.html"
    path.write_text(
        _ten_k(
            """<p>Our business carries risks; the material ones follow.</p>
<p><span style="font-weight:bold">Risks Related to Our Customers</span></p>
<p><b>We depend on a few large customers for most of our sales.</b> Two chains bought 60% of our
widgets. <i>If either left</i>, sales would fall.</p>
<p><b>Competition.</b> Rivals sell cheaper widgets.</p>
<p><span style="font-style:italic;font-weight:700">Prices of steel, our main input,   may rise.</span></p>
<p>Steel is bought <b>monthly</b> at market prices.</p>
<p style="font-weight:700">Our <span style="font-weight:400">plain</span> words are not a heading.</p>
<p>More about steel.</p>"""
        )
    )
    rows = rf.risk_factors_from_filing(path)
    assert [(r.category, r.heading, r.ordinal) for r in rows] == [
        ("Risks Related to Our Customers", "We depend on a few large customers for most of our sales.", 0),
        ("Risks Related to Our Customers", "Prices of steel, our main input, may rise.", 1),
    ]
    assert rows[0].body == (
        "Two chains bought 60% of our widgets. If either left, sales would fall.\n\n"
        "Competition. Rivals sell cheaper widgets."
    )
    assert rows[1].body.startswith("Steel is bought monthly at market prices.") and rows[1].ticker == "WID"
    assert rows[1].doc_id == "filings:wid-10-k-2024-03-01.html" and rows[1].url == path.name


def test_10k_without_risk_headings_and_other_forms_yield_nothing(tmp_path):
    plain = tmp_path / "wid-10-k-2024-03-01.html"
    plain.write_text(_ten_k("<p>Widgets may stop selling.</p><p>Demand is volatile.</p>"))
    assert rf.risk_factors_from_filing(plain) == []
    no_1a = tmp_path / "wid-10-k-2024-04-01.html"
    no_1a.write_text(_ten_k("").replace("<div><b>Item 1A.</b></div><div><b>Risk Factors</b></div>", ""))
    assert rf.risk_factors_from_filing(no_1a) == []
    # 10-Q Part II Item 1A only updates the 10-K's risks: skipped on purpose
    assert rf.risk_factors_from_filing(FILINGS / "nvda-10-q-2025-08-27.html.gz") == []
    assert rf.read_risk_factors(tmp_path) == []  # an index ingested before the table existed


def test_ingest_writes_the_table_caches_it_and_links_passages(tmp_path, monkeypatch):
    data, index = tmp_path / "data", tmp_path / "index"
    (data / "sec" / "filings").mkdir(parents=True)
    shutil.copy(FILINGS / "aapl-10-k-2024-11-01.html.gz", data / "sec" / "filings")
    (data / "sec" / "filings" / "bad-10-k-2024-01-01.html.gz").write_bytes(b"\x1f\x8b not gzip")
    summary = ingest(data, index, HashEmbedder())
    assert [f.source for f in summary.failures] == ["filings"]  # reported once, by its parser
    rows = rf.read_risk_factors(index)
    assert summary.risk_factors == len(rows) == 28 and (index / RISKS_FILE).exists()
    assert rows[0].heading == EXPECTED["aapl-10-k-2024-11-01"][2]
    assert rf.read_risk_factors(index, ticker="AAPL") == rows and rf.read_risk_factors(index, ticker="NVDA") == []

    # unchanged file: rows come from the per-file cache, extraction is not run again
    def boom(path):
        raise AssertionError(f"re-extracted {path}")

    monkeypatch.setattr(rf, "risk_factors_from_filing", boom)
    again = ingest(data, index, HashEmbedder())
    assert again.risk_factors == 28 and rf.read_risk_factors(index) == rows
    assert [f.source for f in again.failures] == ["filings"]

    table = CorpusStore.load(index, "filings").table
    for r in rows:
        pid = rf.passage_for(r, table)
        [hit] = table[table["passage_id"] == pid].to_dict("records")
        assert hit["section"] == "Item 1A. Risk Factors" and hit["doc_id"] == r.doc_id
        text = " ".join(hit["text"].split())
        assert r.heading[:80] in text and r.body[:40] in text  # the passage the risk's body starts in


def test_passage_for_falls_back_to_word_overlap():
    doc = parse_filing(FILINGS / "aapl-10-k-2024-11-01.html.gz")
    table = pd.DataFrame([p.to_row() for p in chunk_document(doc)])
    risk = rf.risk_factors_from_filing(FILINGS / "aapl-10-k-2024-11-01.html.gz")[9]
    exact = rf.passage_for(risk, table)
    reworded = replace(risk, heading=risk.heading.replace("The Company’s", "Apple’s"))
    assert exact is not None and rf.passage_for(reworded, table) == exact
    unrelated = replace(risk, heading="Zebras quietly graze on xylophones.")
    assert rf.passage_for(unrelated, table) is None
    other_doc = replace(risk, doc_id="filings:other.html")
    assert rf.passage_for(other_doc, table) is None
