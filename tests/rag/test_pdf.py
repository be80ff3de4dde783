"""PDF filings: pages, text and table rows, Item sections, metadata, and every way a PDF can be bad.

Real pages come from tests/fixtures/financebench/ (pages cut from FinanceBench's AMCOR 10-K and
Pfizer 10-Q; see the README there for the page remapping); bad PDFs are written by tests/pdfs.py.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_document
from rag.errors import SourceError
from rag.ingest import ingest
from rag.sources import SOURCES, collect_skips
from rag.sources.pdf import parse_pdf, pdf_meta
from rag.sources.pdf_text import lines_to_text, table_row
from rag.store import CorpusStore
from tests.fakes import HashEmbedder
from tests.pdfs import make_pdf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FB = FIXTURES / "financebench"
AMCOR = FB / "AMCOR_2023_10K.pdf"
PFIZER = FB / "Pfizer_2023Q2_10Q.pdf"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{3,}|\d[\d,.]*\d", text.lower()))


def _page_texts(doc) -> dict[int, str]:
    pages: dict[int, str] = {}
    for s in doc.sections:
        pages[s.page] = pages.get(s.page, "") + "\n" + s.text
    return pages


@pytest.fixture(scope="module")
def amcor():
    return parse_pdf(AMCOR)


@pytest.fixture(scope="module")
def pfizer():
    return parse_pdf(PFIZER)


def test_every_page_is_a_section_with_its_0_based_page(amcor, pfizer):
    assert sorted({s.page for s in amcor.sections}) == list(range(8))
    assert sorted({s.page for s in pfizer.sections}) == list(range(3))
    for doc in (amcor, pfizer):
        for s in doc.sections:
            assert s.title.endswith(f"PDF page {s.page + 1}")  # people count pages from 1


def test_evidence_text_lands_on_the_evidence_page(amcor, pfizer):
    """FinanceBench's evidence pages (remapped to the fixture) hold the evidence words, others don't."""
    docs = {"AMCOR_2023_10K": amcor, "Pfizer_2023Q2_10Q": pfizer}
    questions = [json.loads(line) for line in (FB / "questions.jsonl").read_text().splitlines()]
    assert len(questions) == 7
    for q in questions:
        for ev in q["evidence"]:
            pages = _page_texts(docs[ev["doc_name"]])
            want = _words(ev["evidence_text"])
            overlap = {p: len(want & _words(t)) / len(want) for p, t in pages.items()}
            best = max(overlap, key=overlap.get)
            assert best == ev["evidence_page_num"], (q["financebench_id"], overlap)
            assert overlap[best] > 0.9, (q["financebench_id"], overlap[best])


def test_tables_become_rows_with_cells(amcor, pfizer):
    balance = _page_texts(amcor)[4]
    assert "Total current assets | 5,308 | 5,853" in balance.splitlines()
    assert "Raw materials and supplies | 992 | 1,114" in balance.splitlines()
    assert "Total assets | $17,003 | $17,426" in balance.splitlines()
    assert "Accumulated other comprehensive loss | (862) | (880)" in balance.splitlines()
    income = _page_texts(amcor)[2]
    assert "Gross profit | 2,725 | 2,820 | 2,732" in income.splitlines()
    regions = _page_texts(pfizer)[0]
    assert any(line.startswith("Biopharma | $12,418 | $27,425") for line in regions.splitlines())


def test_prose_stays_prose_and_hyphens_survive(amcor):
    business = _page_texts(amcor)[0]
    assert (
        "Today, we are a global leader in developing and producing responsible packaging for food" in business
    )
    assert " | " not in next(
        p for p in business.split("\n\n") if p.startswith("Amcor plc (ARBN 630 385 278)")
    )
    assert "personal-care" in business


def test_item_headings_title_the_sections(amcor, pfizer):
    titles = [s.title for s in amcor.sections]
    assert titles[0] == "PDF page 1"  # "PART I" above the first Item heading
    assert titles[1:3] == ["Item 1. Business, PDF page 1", "Item 1. Business, PDF page 2"]
    assert pfizer.sections[-1].title == (
        "Part I, Item 2. MANAGEMENT’S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF "
        "OPERATIONS, PDF page 3"
    )
    assert pfizer.sections[-1].key == "I-2@p2"


def test_item_sections_skip_the_toc_and_cross_references(tmp_path: Path):
    toc = "TABLE OF CONTENTS\nItem 1. Business 3\nItem 1A. Risk Factors 4\nItem 7. Management's Discussion 5"
    body1 = "Item 1. Business\nWe make widgets for hospitals and clinics around the world every day."
    body2 = (
        "Item 1A. Risk Factors\nOur business faces many risks from suppliers and customers. For more see the\n"
        "Item 7. Management's Discussion and Analysis section of this annual report and the notes to it\n"
        "which explain how these risks affect revenue."
    )
    body3 = (
        "Item 7. Management's Discussion and Analysis\nRevenue grew because hospitals bought more widgets."
    )
    path = tmp_path / "ACME_2024_10K.pdf"
    path.write_bytes(make_pdf([toc, body1, body2, body3]))
    doc = parse_pdf(path)
    assert [(s.page, s.title) for s in doc.sections] == [
        (0, "PDF page 1"),
        (1, "Item 1. Business, PDF page 2"),
        (2, "Item 1A. Risk Factors, PDF page 3"),
        (3, "Item 7. Management's Discussion and Analysis, PDF page 4"),
    ]


def test_passages_carry_their_page_and_never_cross_pages(amcor):
    passages = chunk_document(amcor)
    assert len(passages) > 8
    texts = _page_texts(amcor)
    for p in passages:
        assert p.section.endswith(f"PDF page {p.page + 1}")
        words = p.text.split()
        assert " ".join(words[:6]) in " ".join(texts[p.page].split()), p.passage_id
    assert {p.page for p in passages} == set(range(8))


def test_page_survives_the_store_and_old_tables_load_with_minus_one(tmp_path: Path, amcor):
    emb = HashEmbedder()
    passages = chunk_document(amcor)
    store = CorpusStore.open(tmp_path, "filings", emb.dim, emb.signature)
    store.upsert(amcor, passages, emb.encode([p.text for p in passages]))
    store.save()
    again = CorpusStore.load(tmp_path, "filings")
    assert [again.passage(i).page for i in range(len(again))] == [p.page for p in passages]
    # an index written before passages had a page: loads, and its passages say "no page"
    table = pd.read_parquet(tmp_path / "filings" / "passages.parquet").drop(columns=["page"])
    table.to_parquet(tmp_path / "filings" / "passages.parquet", index=False)
    old = CorpusStore.load(tmp_path, "filings")
    assert old.passage(0).page == -1 and old.passage(0).text == passages[0].text


def test_metadata_from_the_sidecar(amcor, pfizer):
    assert (amcor.ticker, amcor.form, amcor.date, amcor.title) == ("AMCOR", "10-K", "2023", "Amcor 2023 10-K")
    assert amcor.url.startswith("https://") and amcor.doc_id == "filings:AMCOR_2023_10K.pdf"
    assert (pfizer.ticker, pfizer.form, pfizer.title) == ("PFIZER", "10-Q", "Pfizer 2023Q2 10-Q")


@pytest.mark.parametrize(
    ("name", "ticker", "form", "date", "title"),
    [
        ("PFE_2023Q2_10Q.pdf", "PFE", "10-Q", "2023", "PFE 2023Q2 10-Q"),
        ("BESTBUY_2023_10K.pdf", "BESTBUY", "10-K", "2023", "BESTBUY 2023 10-K"),
        ("JPM_2022Q4_EARNINGS.pdf", "JPM", "Earnings", "2022", "JPM 2022Q4 Earnings"),
        ("AAPL_2023_8K.pdf", "AAPL", "8-K", "2023", "AAPL 2023 8-K"),
        ("annual report.pdf", "", "", "", "annual report"),
    ],
)
def test_metadata_from_the_file_name(tmp_path: Path, name, ticker, form, date, title):
    path = tmp_path / name
    shutil.copy(AMCOR, path)
    meta = pdf_meta(path)
    assert (meta.ticker, meta.form, meta.date) == (ticker, form, date)
    doc = parse_pdf(path)
    assert doc.title == (title if form else f"{title} PDF") and doc.url == name


def test_sidecar_in_the_parent_folder_can_set_ticker_and_date(tmp_path: Path):
    (tmp_path / "pdfs").mkdir()
    shutil.copy(AMCOR, tmp_path / "pdfs" / AMCOR.name)
    rows = [
        "not json",
        json.dumps(
            {
                "doc_name": "AMCOR_2023_10K",
                "ticker": "amcr",
                "company": "Amcor",
                "doc_type": "10k",
                "doc_period": 2023,
                "date": "2023-08-17",
                "doc_link": "https://example.com/a.pdf",
            }
        ),
    ]
    (tmp_path / "documents.jsonl").write_text("\n".join(rows) + "\n")
    with collect_skips() as skips:
        doc = parse_pdf(tmp_path / "pdfs" / AMCOR.name)
    assert (doc.ticker, doc.date, doc.url) == ("AMCR", "2023-08-17", "https://example.com/a.pdf")
    assert any("documents.jsonl line 1" in s for s in skips)


@pytest.mark.parametrize(
    "pages",
    [[None], [""], [None, "", None]],
    ids=["image-only", "blank", "scanned-and-blank"],
)
def test_no_text_layer_says_ocr(tmp_path: Path, pages):
    path = tmp_path / "SCAN_2023_10K.pdf"
    path.write_bytes(make_pdf(pages))
    with pytest.raises(SourceError) as err:
        parse_pdf(path)
    msg = str(err.value)
    assert "SCAN_2023_10K.pdf" in msg and "no text layer" in msg and "OCR" in msg and "\n" not in msg


def test_mostly_scanned_pdf_keeps_text_pages_and_says_so(tmp_path: Path):
    path = tmp_path / "ACME_2023_10K.pdf"
    text = "Revenue grew to a record level in fiscal 2023 as hospitals bought more widgets."
    path.write_bytes(make_pdf([text, None, None, None, text.replace("grew", "fell")]))
    with collect_skips() as skips:
        doc = parse_pdf(path)
    assert [s.page for s in doc.sections] == [0, 4]
    assert skips == ["ACME_2023_10K.pdf: 3 of 5 pages have no text layer (scanned? needs OCR)"]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: (FIXTURES / "pdf" / "encrypted.pdf").read_bytes(), "encrypted"),
        (lambda: b"", "not a PDF"),
        (lambda: b"<html><body>10-K</body></html>", "not a PDF"),
        (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 4, "cannot open PDF"),
        (lambda: AMCOR.read_bytes()[:2000], "cannot open PDF"),
    ],
    ids=["encrypted", "empty", "html", "garbage", "truncated-header"],
)
def test_bad_pdfs_raise_source_error_naming_the_file(tmp_path: Path, make, says):
    path = tmp_path / "BAD_2023_10K.pdf"
    path.write_bytes(make())
    with pytest.raises(SourceError) as err:
        parse_pdf(path)
    assert says in str(err.value) and "BAD_2023_10K.pdf" in str(err.value)


def test_truncated_pdfs(tmp_path: Path):
    """Cut mid-file: PDFium cannot open it -> SourceError. Cut after the xref: readable, but flagged."""
    raw = PFIZER.read_bytes()
    path = tmp_path / "Pfizer_2023Q2_10Q.pdf"
    path.write_bytes(raw[: int(len(raw) * 0.8)])
    with pytest.raises(SourceError, match="Pfizer_2023Q2_10Q.pdf: cannot open PDF .* corrupt or truncated"):
        parse_pdf(path)
    text = "Revenue grew to a record level in fiscal 2023 as hospitals bought more widgets."
    whole = make_pdf([text, text])
    path.write_bytes(whole[: whole.rindex(b"%%EOF")])
    with collect_skips() as skips:
        doc = parse_pdf(path)
    assert [s.page for s in doc.sections] == [0, 1]
    assert skips == [
        "Pfizer_2023Q2_10Q.pdf: PDF looks truncated (no %%EOF at the end); kept the pages that could be read"
    ]


_SEED = AMCOR.read_bytes()


def _parse_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "FUZZ_2023_10K.pdf"
        path.write_bytes(raw)
        try:
            with collect_skips():
                doc = parse_pdf(path)
        except SourceError as exc:
            assert "FUZZ_2023_10K.pdf" in str(exc)
        else:
            assert doc.sections and all(s.page >= 0 for s in doc.sections)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2000), st.binary(max_size=2000).map(lambda b: b"%PDF-1.4\n" + b)))
def test_fuzz_random_bytes_never_crash(raw: bytes):
    _parse_bytes(raw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=len(_SEED)),
    flips=st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=8),
)
def test_fuzz_truncated_and_corrupted_real_pdf_never_crash(cut: int, flips):
    raw = bytearray(_SEED)
    for pos, value in flips:
        raw[pos] = value
    _parse_bytes(bytes(raw[:cut]))


@pytest.mark.parametrize(
    ("line", "row"),
    [
        ("Total current assets 5,308 5,853", "Total current assets | 5,308 | 5,853"),
        ("Total assets $ 17,003 $ 17,426", "Total assets | $17,003 | $17,426"),
        (
            "Accumulated other comprehensive loss (862) (880)",
            "Accumulated other comprehensive loss | (862) | (880)",
        ),
        ("Assets held for sale, net — 192", "Assets held for sale, net | — | 192"),
        ("Gross margin 22.5 % 21.9 %", "Gross margin | 22.5% | 21.9%"),
        ("As of June 30, 2023 2022", "As of June 30, | 2023 | 2022"),
        ("Goodwill 5,366", "Goodwill | 5,366"),
        ("$ 12,734 $ 27,742", "$12,734 | $27,742"),
        ("Commitments and contingencies (See Note 20)", None),
        ("Note 5 - Acquisitions", None),
        ("July 2,", None),
        ("Total assets were $220 billion as of July 2, 2023 and $197 billion as of December 31, 2022.", None),
        ("the purchase consideration for the plant acquired in the Czech Republic was 59", None),
    ],
)
def test_table_row(line: str, row: str | None):
    assert table_row(line) == row


def test_lines_to_text_keeps_tables_apart_from_prose():
    lines = [
        "Consolidated Balance Sheets",
        "Current assets:",
        "Cash and cash equivalents $ 689 $ 775",
        "Inventories, net",
        "Raw materials and supplies 992 1,114",
        "See accompanying notes to consolidated financial statements.",
        "We manage our assets on a total company basis, not by operating segment, as our",
        "operating assets are shared or commingled.",
    ]
    assert lines_to_text(lines).split("\n\n") == [
        "Consolidated Balance Sheets",
        "Current assets:",
        "Cash and cash equivalents | $689 | $775\nInventories, net\nRaw materials and supplies | 992 | 1,114",
        # no geometry, so prose lines join into one paragraph; chunking splits it into sentences
        "See accompanying notes to consolidated financial statements. We manage our assets on a total "
        "company basis, not by operating segment, as our operating assets are shared or commingled.",
    ]


def test_registered_source_ingests_pdfs_and_reports_the_scan(tmp_path: Path):
    data = tmp_path / "data"
    (data / "sec" / "pdf").mkdir(parents=True)
    shutil.copy(PFIZER, data / "sec" / "pdf")
    shutil.copy(FB / "documents.jsonl", data / "sec" / "pdf")
    (data / "sec" / "pdf" / "SCAN_2023_10K.pdf").write_bytes(make_pdf([None, None]))
    assert [p.name for p in SOURCES["pdf"].files(data)] == ["Pfizer_2023Q2_10Q.pdf", "SCAN_2023_10K.pdf"]
    summary = ingest(data, tmp_path / "index", HashEmbedder())
    assert [(f.file, f.source) for f in summary.failures] == [("sec/pdf/SCAN_2023_10K.pdf", "pdf")]
    assert "OCR" in summary.failures[0].error
    store = CorpusStore.load(tmp_path / "index", "filings")
    assert set(store.table["doc_id"]) == {"filings:Pfizer_2023Q2_10Q.pdf"}
    assert sorted(set(store.table["page"])) == [0, 1, 2]
