"""10-K/10-Q parsing on the real shipped filings: Item boundaries, tables, metadata, bad input."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from rag.errors import SourceError
from rag.sources import SOURCES
from rag.sources.filings import parse_filing
from rag.sources.html_text import decompress, html_blocks, load_html, read_raw
from rag.types import Document, digest

DATA = Path(__file__).resolve().parents[2] / "data"
FILINGS = DATA / "sec" / "filings"
TEN_K = [
    "aapl-10-k-2024-11-01",
    "amzn-10-k-2025-02-07",
    "meta-10-k-2025-01-30",
    "nvda-10-k-2025-02-26",
    "tsla-10-k-2025-01-30",
]
TEN_Q = ["aapl-10-q-2025-08-01", "nvda-10-q-2025-08-27", "tsla-10-q-2025-07-24"]
ALL_10K_ITEMS = [
    "1",
    "1A",
    "1B",
    "1C",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "7A",
    "8",
    "9",
    "9A",
    "9B",
    "9C",
    "10",
    "11",
    "12",
    "13",
    "14",
    "15",
    "16",
]


@pytest.fixture(scope="module")
def docs() -> dict[str, Document]:
    """Every sample filing parsed once for the whole module."""
    return {name: parse_filing(FILINGS / f"{name}.html.gz") for name in TEN_K + TEN_Q}


def sections(doc: Document) -> dict[str, str]:
    return {s.key: s.text for s in doc.sections}


@pytest.mark.parametrize("name", TEN_K)
def test_10k_has_every_item_in_order(docs, name):
    assert [s.key for s in docs[name].sections] == ALL_10K_ITEMS


@pytest.mark.parametrize("name", TEN_K)
def test_10k_toc_is_skipped_and_big_items_have_body_text(docs, name):
    text = sections(docs[name])
    # The TOC entry "Item 1. Business ... 1" is followed by the next entry, not by 10k+ chars.
    assert len(text["1"]) > 10_000 and len(text["1A"]) > 50_000 and len(text["7"]) > 10_000
    assert not text["1"].startswith(("Item 1A", "ITEM 1A", "Risk Factors"))
    for body in text.values():
        assert "Table of Contents" not in body.split("\n")
        assert "<td" not in body and "<span" not in body and "<ix:" not in body


def test_apple_10k_item_boundaries(docs):
    doc = docs["aapl-10-k-2024-11-01"]
    text = sections(doc)
    titles = {s.key: s.title for s in doc.sections}
    assert titles["1A"] == "Item 1A. Risk Factors"
    assert titles["7"].startswith("Item 7. Management’s Discussion and Analysis")
    assert text["1"].startswith("Company Background")
    assert text["1A"].startswith(
        "The Company’s business, reputation, results of operations, financial condition"
    )
    assert "adversely affected" in text["1A"]
    # Item 2 "Properties" text belongs to Item 2 only; Item 1A ends before it.
    assert "headquarters is located in Cupertino, California" in text["2"]
    assert "headquarters is located in Cupertino" not in text["1A"]
    assert not text["1A"].rstrip().endswith("Properties")
    assert "net sales" in text["7"].lower()
    assert text["1B"] == "None." and text["9"] == "None."
    # Running page footers ("Apple Inc. | 2024 Form 10-K | 18") are dropped.
    assert all("2024 Form 10-K |" not in body for body in text.values())


def test_tables_become_rows_of_cells(docs):
    text = sections(docs["aapl-10-k-2024-11-01"])["8"]
    assert "Total net sales | 391,035 | 383,285 | 394,328" in text
    assert "Net income | $93,736 | $96,995 | $99,803" in text
    assert "Other income/(expense), net | 269 | (565) | (334)" in text  # "(", number, ")" glued
    tsla = sections(docs["tsla-10-k-2025-01-30"])["7"]
    assert "Total revenues | $97,690 | $96,773 | $81,462 | $917 | 1% | $15,311 | 19%" in tsla


def test_hidden_xbrl_header_is_not_text():
    path = FILINGS / "aapl-10-k-2024-11-01.html.gz"
    raw = decompress(read_raw(path), path)
    assert b"fasb.org/us-gaap/2024#MarketableSecuritiesCurrent" in raw  # present, but display:none
    blocks = html_blocks(load_html(raw, path))
    assert not any("fasb.org/us-gaap" in b.text for b in blocks)


def test_other_issuers_sections(docs):
    amzn = sections(docs["amzn-10-k-2025-02-07"])  # headings live in table cells
    assert "net sales" in amzn["7"].lower()
    assert amzn["1A"].startswith("Please carefully consider the following discussion of significant factors")
    nvda = docs["nvda-10-k-2025-02-26"]
    assert sections(nvda)["7"].startswith("The following discussion and analysis of our financial condition")
    assert "Revenue | $130,497 | $60,922 | $26,974" in sections(nvda)["15"]  # statements sit in Item 15
    tsla = {s.key: s.title for s in docs["tsla-10-k-2025-01-30"].sections}
    assert tsla["1A"] == "ITEM 1A. RISK FACTORS"  # printed capitalisation kept
    meta = {s.key: s.title for s in docs["meta-10-k-2025-01-30"].sections}
    assert (
        meta["10"] == "Item 10. Directors, Executive Officers and Corporate Governance"
    )  # "Item10." normalised


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        (
            "aapl-10-q-2025-08-01",
            ["I-1", "I-2", "I-3", "I-4", "II-1", "II-1A", "II-2", "II-3", "II-4", "II-5", "II-6"],
        ),
        ("nvda-10-q-2025-08-27", ["I-1", "I-2", "I-3", "I-4", "II-1", "II-1A", "II-2", "II-5", "II-6"]),
        (
            "tsla-10-q-2025-07-24",
            ["I-1", "I-2", "I-3", "I-4", "II-1", "II-1A", "II-2", "II-3", "II-4", "II-5", "II-6"],
        ),
    ],
)
def test_10q_parts_and_items(docs, name, keys):
    assert [s.key for s in docs[name].sections] == keys


def test_apple_10q_sections(docs):
    doc = docs["aapl-10-q-2025-08-01"]
    text = sections(doc)
    titles = {s.key: s.title for s in doc.sections}
    assert titles["I-1"] == "Part I, Item 1. Financial Statements"
    assert titles["II-1"] == "Part II, Item 1. Legal Proceedings"
    assert "CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS" in text["I-1"]
    assert "net sales" in text["I-2"].lower()
    assert "Digital Markets Act" in text["II-1"]
    assert text["II-1A"].startswith("The Company’s business, reputation, results of operations")
    assert text["II-3"] == "None."


def test_metadata(docs):
    doc = docs["aapl-10-k-2024-11-01"]
    path = FILINGS / "aapl-10-k-2024-11-01.html.gz"
    assert doc.doc_id == "filings:aapl-10-k-2024-11-01.html.gz"
    assert (doc.corpus, doc.source, doc.ticker, doc.form, doc.date) == (
        "filings",
        "sec",
        "AAPL",
        "10-K",
        "2024-11-01",
    )
    assert doc.title == "Apple Inc. 10-K filed 2024-11-01"
    assert doc.url == "aapl-10-k-2024-11-01.html.gz"  # primary documents carry no accession number
    assert doc.content_digest == digest(path.read_bytes())
    assert doc.path == str(path)
    nvda = docs["nvda-10-q-2025-08-27"]
    assert (nvda.ticker, nvda.form, nvda.date, nvda.title) == (
        "NVDA",
        "10-Q",
        "2025-08-27",
        "NVIDIA CORP 10-Q filed 2025-08-27",
    )


def test_registry_finds_and_parses_filings():
    spec = SOURCES["filings"]
    assert spec.corpus == "filings"
    assert spec.patterns == (
        "sec/filings/*.html",
        "sec/filings/*.html.gz",
        "sec/filings/*.htm",
        "sec/filings/*.htm.gz",
    )
    files = spec.files(DATA)
    assert [p.name for p in files] == sorted(f"{n}.html.gz" for n in TEN_K + TEN_Q)
    [doc] = spec.parse(FILINGS / "aapl-10-q-2025-08-01.html.gz")
    assert doc.form == "10-Q" and doc.corpus == "filings"


SMALL_10K = """<html><body>
<table><tr><td>Item 1.</td><td>Business</td><td>3</td></tr>
<tr><td>Item 1A.</td><td>Risk Factors</td><td>5</td></tr>
<tr><td>Item 7.</td><td>MD&amp;A</td><td>9</td></tr></table>
<div><span>PART I</span></div>
<div><b>Item 1.</b></div><div>Business</div><p>We sell widgets. See Item 7 of this report.</p>
<p>Item 1A of Part I discusses risks in more detail than this line.</p>
<div>ITEM 1A. RISK FACTORS</div><p>Widgets may stop selling.</p><p>Demand is volatile.</p>
<div>PART II</div><div>Item 7. Management's Discussion</div>
<table><tr><td>Revenue</td><td>$</td><td>1,000</td><td></td><td>$</td><td>900</td></tr></table>
</body></html>"""


def test_small_document_with_toc_split_heading_and_cross_references(tmp_path):
    path = tmp_path / "wid-10-k-2024-03-01.html"
    path.write_text(SMALL_10K)
    doc = parse_filing(path, ticker="wdgt")
    assert doc.ticker == "WDGT" and doc.title == "WDGT 10-K filed 2024-03-01"
    assert [(s.key, s.title) for s in doc.sections] == [
        ("1", "Item 1. Business"),  # title printed in the block after "Item 1."
        ("1A", "ITEM 1A. RISK FACTORS"),
        ("7", "Item 7. Management's Discussion"),
    ]
    text = sections(doc)
    assert text["1"].startswith("We sell widgets. See Item 7 of this report.")  # cross refs stay text
    assert text["1A"] == "Widgets may stop selling.\n\nDemand is volatile."  # "PART II" dropped
    assert text["7"] == "Revenue | $1,000 | $900"


def _truncated_gzip(tmp_path: Path) -> Path:
    raw = (FILINGS / "aapl-10-q-2025-08-01.html.gz").read_bytes()
    path = tmp_path / "aapl-10-k-2024-11-01.html.gz"
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _write(name: str, data: bytes):
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_truncated_gzip, "corrupt or truncated gzip"),
        (_write("aapl-10-k-2024-11-01.html", random.Random(0).randbytes(5000)), "not HTML"),
        (_write("aapl-10-k-2024-11-01.html.gz", gzip.compress(random.Random(1).randbytes(5000))), "not HTML"),
        (_write("aapl-10-k-2024-11-01.html", b""), "empty file"),
        (_write("aapl-10-k-2024-11-01.html.gz", b"<html>plain text named .gz</html>"), "not gzip"),
        (
            _write("aapl-10-k-2024-11-01.html", b"<html><body><p>Quarterly newsletter</p></body></html>"),
            "no 10-K Item headings found (is this a 10-K primary document?)",
        ),
        (
            _write("notes.html", b"<html><body><p>Item 1. Business</p></body></html>"),
            "cannot tell 10-K from 10-Q",
        ),
        (lambda tmp_path: tmp_path / "aapl-10-k-2024-11-01.html", "cannot read file"),
    ],
    ids=[
        "truncated-gzip",
        "random-bytes",
        "gzipped-random",
        "empty",
        "fake-gz",
        "no-items",
        "no-form",
        "missing",
    ],
)
def test_bad_input_raises_source_error_naming_the_file(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(SourceError) as err:
        parse_filing(path)
    message = str(err.value)
    assert path.name in message and reason in message and "\n" not in message


SHARED_8K = Path("/work/shared/data/sec/8-K")


@pytest.mark.parametrize(
    ("name", "event", "title"),
    [
        ("jpm-8-k.jpm-20260624.htm", "2026-06-24", "JPMorgan Chase & Co 8-K filed 2026-06-25"),
        ("nvda-8-k.nvda-20260302.htm", "2026-03-02", "NVIDIA CORP 8-K filed 2026-03-06"),
        ("meta-8-k.meta-20251219.htm", "2025-12-19", "Meta Platforms, Inc. 8-K filed 2025-12-19"),
        ("orcl-8-k.Oracle.8-K.html", "2024-11-14", "ORACLE CORP 8-K filed 2024-11-18"),
        ("bke-8-k.BuckleInc.8-K.html", "2024-11-22", "BUCKLE, INC 8-K filed 2024-11-22"),
        ("bke-8-k.BuckleInc.8-K.EX99.1.html", "2024-11-22", "BKE 8-K EX-99.1 filed 2024-11-22"),  # no cover
    ],
)
def test_8k_dated_by_its_event_title_keeps_the_signature_date(name, event, title):
    doc = parse_filing(SHARED_8K / name)
    assert (doc.form, doc.date, doc.title) == ("8-K", event, title)


def test_8k_event_date_fallbacks(tmp_path):
    """No inline XBRL cover: the printed "Date of Report"; neither: the signature date as before."""
    raw = (SHARED_8K / "nvda-8-k.nvda-20260302.htm").read_bytes()
    no_cover = raw.replace(b'name="dei:DocumentPeriodEndDate"', b'name="dei:Other"')
    assert no_cover != raw
    path = tmp_path / "nvda-8-k.nvda-20260302.htm"
    path.write_bytes(no_cover)
    assert parse_filing(path).date == "2026-03-02"
    path.write_bytes(no_cover.replace(b"earliest event reported", b"earliest event"))
    assert parse_filing(path).date == "2026-03-06"
