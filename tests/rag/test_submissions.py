"""Full EDGAR submissions and 8-Ks: header, document split, exhibits, item codes, bad input, ingest."""

from __future__ import annotations

import gzip
import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import chunk_document
from rag.errors import SourceError
from rag.ingest import ingest
from rag.retrieve import Retriever
from rag.sources import SOURCES, collect_skips
from rag.sources.filings import parse_filing
from rag.sources.submissions import parse_submission, parse_submission_bytes, read_header, split_documents
from reports.spec import SECTIONS
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SUBMISSIONS = DATA / "sec" / "submissions"
FIX = ROOT / "tests" / "fixtures" / "sec8k"
NVDA = SUBMISSIONS / "nvda-8-k.0001045810-26-000024.txt.gz"
META = SUBMISSIONS / "meta-8-k.0001628280-25-058337.txt.gz"
JPM = FIX / "jpm-8-k.0000019617-26-000241.no-graphics.txt.gz"


def _raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def _parse(path: Path):
    with collect_skips() as skips:
        docs = parse_submission(path)
    return docs, skips


def _parse_bytes(raw: bytes, name: str = "nvda-8-k.0001045810-26-000024.txt"):
    with collect_skips() as skips:
        docs = parse_submission_bytes(raw, Path(name))
    return docs, skips


@pytest.mark.parametrize(
    ("path", "header"),
    [
        (NVDA, ("0001045810-26-000024", "8-K", "2026-03-06", "NVIDIA CORP", "0001045810")),
        (META, ("0001628280-25-058337", "8-K", "2025-12-19", "Meta Platforms, Inc.", "0001326801")),
        (JPM, ("0000019617-26-000241", "8-K", "2026-06-25", "JPMORGAN CHASE & CO", "0000019617")),
    ],
    ids=["NVDA", "META", "JPM"],
)
def test_header_fields(path, header):
    h = read_header(_raw(path), path)
    assert (h.accession, h.form, h.filed, h.company, h.cik) == header


@pytest.mark.parametrize(
    ("path", "types"),
    [
        (NVDA, ["8-K", "EX-10.1", "EX-101.SCH", "EX-101.LAB", "EX-101.PRE", "XML", "XML", "XML", "XML", "JSON"]
         + ["ZIP", "XML"]),
        (META, ["8-K", "EX-101.SCH", "EX-101.LAB", "EX-101.PRE", "GRAPHIC", "XML", "XML", "XML", "XML", "JSON"]
         + ["ZIP", "XML"]),
        (JPM, ["8-K", "EX-99.1", "EX-101.SCH", "EX-101.DEF", "EX-101.LAB", "EX-101.PRE", "XML", "XML", "XML"]
         + ["XML", "JSON", "ZIP", "XML"]),
    ],
    ids=["NVDA", "META", "JPM"],
)  # fmt: skip
def test_document_split(path, types):
    parts = split_documents(_raw(path))
    assert [p.type for p in parts] == types
    assert all(p.complete and p.text for p in parts)
    assert parts[0].sequence == "1" and parts[0].filename.endswith(".htm")


@pytest.mark.parametrize(
    ("path", "kept", "skips"),
    [
        # EX-10.1 (a compensation plan), XBRL, zip: skipped silently, they are not press releases.
        (NVDA, {"nvda-20260302.htm": ["5.02", "9.01"]}, []),
        (META, {"meta-20251219.htm": ["5.02"]}, []),
        # JPM's EX-99.1 press release is two JPEG pages wrapped in HTML: nothing to index, and said so.
        (JPM, {"jpm-20260624.htm": ["5.02", "9.01"]}, ["(EX-99.1 jpmcpressrelease06252026.htm) has no text"]),
    ],
    ids=["NVDA", "META", "JPM"],
)
def test_kept_documents_item_codes_and_skips(path, kept, skips):
    docs, got = _parse(path)
    acc = read_header(_raw(path), path).accession
    assert {d.doc_id.split("/", 1)[1]: [s.key for s in d.sections] for d in docs} == kept
    assert all(d.doc_id.startswith(f"filings:{acc}/") and d.form == "8-K" for d in docs)
    assert len(got) == len(skips) and all(s in g for s, g in zip(skips, got, strict=True))


def test_nvda_document_metadata_and_passages():
    [doc], _ = _parse(NVDA)
    assert (doc.ticker, doc.form, doc.date, doc.corpus, doc.source) == (
        "NVDA",
        "8-K",
        "2026-03-02",  # the event (CONFORMED PERIOD OF REPORT), not FILED AS OF DATE 2026-03-06
        "filings",
        "sec",
    )
    assert doc.title == "NVIDIA CORP 8-K filed 2026-03-06"
    assert doc.url == "https://www.sec.gov/Archives/edgar/data/1045810/000104581026000024/nvda-20260302.htm"
    item = {s.key: s for s in doc.sections}
    assert item["5.02"].title.startswith("Item 5.02. Departure of Directors or Certain Officers;")
    assert item["5.02"].text.startswith("Adoption of Fiscal Year 2027 Variable Compensation Plan")
    assert "Jen-Hsun Huang President and Chief Executive Officer | $4,000,000 | 200%" in item["5.02"].text
    assert "10.1 | Variable Compensation Plan - Fiscal Year 2027" in item["9.01"].text
    assert "Rebecca Peters" not in " ".join(s.text for s in doc.sections)  # signature block dropped
    assert "Emerging growth" not in " ".join(s.text for s in doc.sections)  # cover page dropped
    passages = chunk_document(doc)
    assert len(passages) == 4 and {p.section for p in passages} == {s.title for s in doc.sections}


@pytest.mark.parametrize(
    ("name", "ticker", "date", "sections"),
    [
        ("orcl-8-k.Oracle.8-K.html.gz", "ORCL", "2024-11-14",  # event; signed 2024-11-18
         [("5.07", "Item 5.07 Submission of Matters to a Vote of Security Holders")]),
        ("bke-8-k.BuckleInc.8-K.html.gz", "BKE", "2024-11-22",
         [("2.02", "ITEM 2.02. Results of Operations and Financial Condition"), ("9.01", "ITEM 9.01(d). Exhibits")]),
        ("bke-8-k.BuckleInc.8-K.EX99.1.html.gz", "BKE", "2024-11-22", [("EX-99.1", "Exhibit 99.1")]),
        ("nvda-8-k.nvda-20260302.htm.gz", "NVDA", "2026-03-02",  # event; signed 2026-03-06
         [("5.02", "Item 5.02. Departure of Directors or Certain Officers; Election of Directors; Appointment of "
           "Certain Officers; Compensatory Arrangements of Certain Officers."),
          ("9.01", "Item 9.01. Financial Statements and Exhibits.")]),
    ],
    ids=["ORCL-5.07", "BKE-2.02", "BKE-EX99.1", "NVDA-htm"],
)  # fmt: skip
def test_standalone_html_8k_and_exhibit(name, ticker, date, sections):
    doc = parse_filing(FIX / name)
    assert (doc.ticker, doc.form, doc.date) == (ticker, "8-K", date)
    assert [(s.key, s.title) for s in doc.sections] == sections


def test_orcl_vote_results_whole_item_up_to_the_signature():
    [item] = parse_filing(FIX / "orcl-8-k.Oracle.8-K.html.gz").sections
    assert item.text.startswith("On November 14, 2024, Oracle Corporation")
    assert (
        "Director Nominee | Votes For | Votes Withheld | Broker Non-Votes\nAwo Ablo | 2,300,385,739"
        in item.text
    )
    assert item.text.endswith("62,522,957 shares abstaining and 250,464,124 broker non-votes.")
    assert "Section 5" not in item.text and "Kimberly Woolley" not in item.text


def test_bke_press_release_reaches_passages():
    release = parse_filing(FIX / "bke-8-k.BuckleInc.8-K.EX99.1.html.gz")
    assert release.title == "BKE 8-K EX-99.1 filed 2024-11-22"
    passages = chunk_document(release)
    text = "\n".join(p.text for p in passages)
    assert "net income for the fiscal quarter ended November 2, 2024 was $44.2 million" in text
    assert "NET INCOME | $44,172 | $51,762 | $118,270 | $140,338" in text
    assert "EX-99.1 2 bke20241122-8kexhibit.htm" not in text  # EDGAR viewer header dropped
    assert all(p.section == "Exhibit 99.1" and p.form == "8-K" and p.ticker == "BKE" for p in passages)
    item = parse_filing(FIX / "bke-8-k.BuckleInc.8-K.html.gz").sections[0]
    assert "announced financial results for the fiscal quarter ended November 2, 2024" in item.text


def test_submission_and_html_paths_split_the_same_8k():
    [from_txt], _ = _parse(NVDA)
    from_html = parse_filing(FIX / "nvda-8-k.nvda-20260302.htm.gz")
    assert from_txt.sections == from_html.sections
    assert (from_txt.ticker, from_txt.date) == (from_html.ticker, from_html.date)


def _envelope(
    docs: list[tuple[str, str, str, bytes | None]], form: str = "8-K", accession: str = "0000000001-24-000001"
) -> bytes:
    """A submission around (TYPE, FILENAME, DESCRIPTION, TEXT) documents; TEXT None = no <TEXT>."""
    out = [
        b"<SEC-DOCUMENT>x.txt : 20240301\n<SEC-HEADER>x.hdr.sgml : 20240301\n",
        f"ACCESSION NUMBER:\t\t{accession}\nCONFORMED SUBMISSION TYPE:\t{form}\n".encode(),
        b"FILED AS OF DATE:\t\t20240301\nFILER:\n\tCOMPANY DATA:\t\n\t\tCOMPANY CONFORMED NAME:\t\t\tWIDGET CO\n",
        b"\t\tCENTRAL INDEX KEY:\t\t\t0000000042\n</SEC-HEADER>\n",
    ]
    for n, (type_, name, desc, text) in enumerate(docs, start=1):
        out.append(
            f"<DOCUMENT>\n<TYPE>{type_}\n<SEQUENCE>{n}\n<FILENAME>{name}\n<DESCRIPTION>{desc}\n".encode()
        )
        out.append(b"" if text is None else b"<TEXT>\n" + text + b"\n</TEXT>\n")
        out.append(b"</DOCUMENT>\n")
    return b"".join(out) + b"</SEC-DOCUMENT>\n"


ITEM_8K = b"""<html><body><p>FORM 8-K</p><p>Item 8.01 Other Events.</p>
<p>On March 1, 2024 Widget Co opened its new widget plant in Ohio, adding 400 jobs.</p>
<p>Item 9.01 Financial Statements and Exhibits.</p><p>99.1 Press release.</p>
<p>SIGNATURES</p><p>Date: March 1, 2024</p></body></html>"""
RELEASE = b"<html><body><p>Exhibit 99.1</p><p>Widget Co reports record \x93widget\x94 sales \x96 up 12% \xe9t\xe9.</p></body></html>"


def test_exhibits_kept_others_skipped_and_empty_text_reported():
    raw = _envelope(
        [
            ("8-K", "wid-8k.htm", "8-K", ITEM_8K),
            ("EX-99.1", "wid-ex991.htm", "PRESS RELEASE DATED MARCH 1, 2024", RELEASE),
            ("EX-99.2", "wid-ex992.htm", "EX-99.2", b"   "),  # empty TEXT
            ("EX-99.3", "wid-ex993.htm", "EX-99.3", None),  # no TEXT at all
            ("EX-99.4", "wid-ex994.pdf", "SLIDES", b"begin 644 wid-ex994.pdf\nM4$L#!!0\n`\nend"),
            ("EX-10.1", "wid-ex101.htm", "CONTRACT", b"<html><body><p>Agreement</p></body></html>"),
            ("GRAPHIC", "logo.jpg", "", b"begin 644 logo.jpg\nM_]C_X\n`\nend"),
        ]
    )
    docs, skips = _parse_bytes(raw, "wid-8-k.txt")
    assert [d.doc_id for d in docs] == [
        "filings:0000000001-24-000001/wid-8k.htm",
        "filings:0000000001-24-000001/wid-ex991.htm",
    ]
    item, release = docs
    assert [(s.key, s.title) for s in item.sections] == [
        ("8.01", "Item 8.01 Other Events."),
        ("9.01", "Item 9.01 Financial Statements and Exhibits."),
    ]
    assert release.title == "WIDGET CO 8-K EX-99.1 filed 2024-03-01" and release.form == "8-K"
    [section] = release.sections
    assert (section.key, section.title) == ("EX-99.1", "Exhibit 99.1: PRESS RELEASE DATED MARCH 1, 2024")
    # cp1252 bytes in the HTML (curly quotes, en dash, accented letters) decode, not crash
    assert section.text == "Widget Co reports record \u201cwidget\u201d sales \u2013 up 12% \xe9t\xe9."
    assert len(skips) == 3
    assert "document 3 (EX-99.2 wid-ex992.htm) has no text; dropped" in skips[0]
    assert "document 4 (EX-99.3 wid-ex993.htm) has no text; dropped" in skips[1]
    assert "uuencoded" in skips[2]
    assert item.url == "https://www.sec.gov/Archives/edgar/data/42/000000000124000001/wid-8k.htm"


def test_plain_text_submission_with_old_style_items_and_latin1():
    body = (
        b"UNITED STATES\nSECURITIES AND EXCHANGE COMMISSION\n\nFORM 8-K\n\n"
        b"Item 5.  Other Events.\n\nWidget Co named Ren\xe9e Dupont chief financial officer\n"
        b"effective March 1.\n\n<PAGE>\n\nItem 7.  Financial Statements and Exhibits.\n\n"
        b"(c) Exhibits: none.\n\nSIGNATURES\n\nWidget Co\n"
    )
    [doc], skips = _parse_bytes(_envelope([("8-K", "", "", body)], accession="0000000001-99-000001"), "x.txt")
    assert skips == []
    assert [(s.key, s.title) for s in doc.sections] == [
        ("5", "Item 5. Other Events."),
        ("7", "Item 7. Financial Statements and Exhibits."),
    ]
    assert (
        doc.sections[0].text == "Widget Co named Ren\xe9e Dupont chief financial officer effective March 1."
    )
    assert doc.doc_id == "filings:0000000001-99-000001/document-1"


@pytest.mark.parametrize(
    ("html", "sections"),
    [
        # code only, title in the next block (kept as printed)
        (b"<p>Item 2.02</p><p>Results of Operations and Financial Condition</p><p>Sales rose 5% in the quarter.</p>",
         [("2.02", "Item 2.02 Results of Operations and Financial Condition", "Sales rose 5% in the quarter.")]),
        # code only, no title printed: the SEC's title
        (b"<p>ITEM 7.01.</p><p>On May 1 the company presented at a conference.</p>",
         [("7.01", "ITEM 7.01 Regulation FD Disclosure", "On May 1 the company presented at a conference.")]),
        # heading runs into the first sentence of a long paragraph
        (b"<p>Item 8.01 Other Events. " + b"The board declared a quarterly dividend of $0.25 per share. " * 6 + b"</p>",
         [("8.01", "Item 8.01 Other Events", ("The board declared a quarterly dividend of $0.25 per share. " * 6).strip())]),
        # cross reference and an out-of-order repeat are not headings; "Section 5 -" group line dropped
        (b"<p>Item 5.02 Departure of Directors</p><p>See Item 9.01 of this report for exhibits.</p>"
         b"<p>Section 9 - Financial Statements and Exhibits</p><p>Item 9.01 Exhibits</p><p>None.</p>"
         b"<p>Item 5.02 Departure of Directors</p><p>Signature</p><p>/s/ CFO</p>",
         [("5.02", "Item 5.02 Departure of Directors", "See Item 9.01 of this report for exhibits."),
          ("9.01", "Item 9.01 Exhibits", "None.\n\nItem 5.02 Departure of Directors")]),
        # heading split across table cells; "Item2.02" spacing normalised
        (b"<table><tr><td>Item2.02</td><td>Results of Operations</td></tr></table><p>Revenue was $10 million.</p>",
         [("2.02", "Item 2.02 Results of Operations", "Revenue was $10 million.")]),
    ],
    ids=["title-next-block", "code-only", "run-in", "cross-ref-and-repeat", "table-cells"],
)  # fmt: skip
def test_8k_item_headings(html, sections):
    raw = _envelope([("8-K", "a.htm", "", b"<html><body><p>FORM 8-K</p>" + html + b"</body></html>")])
    [doc], _ = _parse_bytes(raw, "wid-8-k.txt")
    assert [(s.key, s.title, s.text) for s in doc.sections] == sections


def test_10q_inside_a_submission_splits_like_the_html_file():
    path = DATA / "sec" / "filings" / "aapl-10-q-2025-08-01.html.gz"
    html_doc = parse_filing(path)
    raw = _envelope(
        [("10-Q", "aapl-20250628.htm", "10-Q", _raw(path)), ("EX-99.1", "r.htm", "EX-99.1", RELEASE)],
        form="10-Q",
    )
    docs, skips = _parse_bytes(raw, "aapl-10-q.0000320193-25-000073.txt")
    assert skips == [] and [d.form for d in docs] == ["10-Q", "10-Q"]
    assert docs[0].sections == html_doc.sections and docs[0].ticker == "AAPL"
    assert docs[1].title == "WIDGET CO 10-Q EX-99.1 filed 2024-03-01"


def test_ticker_from_catalog_when_the_file_name_has_none(tmp_path):
    (tmp_path / "sec" / "submissions").mkdir(parents=True)
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "sec")
    for src, ticker in ((NVDA, "NVDA"), (JPM, "JPM")):
        path = tmp_path / "sec" / "submissions" / src.name.split(".", 1)[1].replace(".no-graphics", "")
        shutil.copy(src, path)
        docs, _ = _parse(path)
        assert {d.ticker for d in docs} == {ticker}, path.name
    (tmp_path / "sec" / "company_tickers.json.gz").unlink()
    docs, _ = _parse(path)
    assert {d.ticker for d in docs} == {""}  # no catalog, no ticker in the name: untagged, still indexed


def _cut_inside(raw: bytes, n: int) -> bytes:
    """The submission cut half-way through the TEXT of its n-th document (1-based)."""
    start = [m.start() for m in re.finditer(rb"<DOCUMENT>", raw)][n - 1]
    text = raw.index(b"<TEXT>", start)
    end = raw.index(b"</TEXT>", text)
    return raw[: (text + end) // 2]


def test_truncated_submission_keeps_earlier_documents():
    docs, skips = _parse_bytes(_cut_inside(_raw(NVDA), 2))
    assert [[s.key for s in d.sections] for d in docs] == [["5.02", "9.01"]]
    assert skips == [
        "document 2 (EX-10.1 formxex101xfy27variablecom.htm) has no </DOCUMENT> (truncated file?); "
        "it and any later documents are missing"
    ]
    with pytest.raises(
        SourceError, match=r"nvda-8-k\.0001045810-26-000024\.txt: no usable .*document 1 \(8-K"
    ):
        _parse_bytes(_cut_inside(_raw(NVDA), 1))


def test_truncated_gzip_keeps_what_it_can(tmp_path):
    raw = gzip.compress(_raw(JPM), mtime=0)
    path = tmp_path / JPM.name
    path.write_bytes(raw[: len(raw) * 3 // 4])
    docs, skips = _parse(path)
    assert [d.doc_id.rsplit("/", 1)[1] for d in docs] == ["jpm-20260624.htm"]
    assert skips[0].startswith("gzip data ends early") and "has no </DOCUMENT>" in skips[-1]


def _write(name: str, data: bytes):
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_write("nvda-8-k.txt", b""), "not an EDGAR full submission"),
        (_write("nvda-8-k.txt", random.Random(0).randbytes(4000)), "not an EDGAR full submission"),
        (_write("nvda-8-k.txt.gz", gzip.compress(random.Random(1).randbytes(4000))), "not an EDGAR full submission"),
        (_write("nvda-8-k.txt.gz", b"<SEC-HEADER>plain text named .gz"), "not gzip"),
        (_write("nvda-8-k.txt.gz", b"\x1f\x8b\x08\x00garbage"), "gzip"),
        (_write("nvda-8-k.txt", _envelope([])), "header but no <DOCUMENT>"),
        (_write("nvda-8-k.txt", _envelope([("EX-101.SCH", "a.xsd", "", b"<xsd/>"), ("GRAPHIC", "g.jpg", "", b"x")])),
         "no usable 8-K/10-K/10-Q or EX-99 document in the submission (its documents are EX-101.SCH, GRAPHIC)"),
        (_write("nvda-8-k.txt", _envelope([("8-K", "a.htm", "", b"<html><body><p>Hello</p></body></html>")])),
         "document 1 (8-K a.htm) has no 8-K Item headings; dropped"),
        (lambda tmp_path: tmp_path / "nvda-8-k.txt", "cannot read file"),
    ],
    ids=["empty", "random", "gzipped-random", "fake-gz", "corrupt-gz", "no-documents", "nothing-kept",
         "no-items", "missing"],
)  # fmt: skip
def test_unusable_files_raise_source_error_naming_the_file(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(SourceError) as err:
        parse_submission(path)
    assert str(err.value).startswith(str(path)) and reason in str(err.value) and "\n" not in str(err.value)


_FRAGMENTS = [
    b"<SEC-HEADER>", b"</SEC-HEADER>", b"<DOCUMENT>", b"</DOCUMENT>", b"<TYPE>8-K\n", b"<TYPE>EX-99.1\n",
    b"<TYPE>10-Q\n", b"<TEXT>", b"</TEXT>", b"<XBRL>", b"<FILENAME>a.htm\n", b"<html><body>", b"<p>Item 2.02",
    b" Results</p>", b"<table><tr><td>$</td><td>(1)</td></tr>", b"begin 644 x\n", b"\x93\xff\x00",
    b"ACCESSION NUMBER:\t0000000001-24-000001\n", b"FILED AS OF DATE:\t20241399\n", b"Item 9.01", b"\n\n",
    b"Exhibit 99.1", b"<div>" * 50, b"CENTRAL INDEX KEY:\t12x\n",
]  # fmt: skip


def _must_not_crash(raw: bytes) -> None:
    try:
        with collect_skips():
            docs = parse_submission_bytes(raw, Path("fuzz.txt"))
    except SourceError as e:
        assert "fuzz.txt" in str(e)
    else:
        assert docs and all(d.sections for d in docs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=3000), st.lists(st.sampled_from(_FRAGMENTS), max_size=40).map(b"".join)))
def test_fuzz_random_and_structured_bytes_raise_only_source_error(raw):
    _must_not_crash(raw)


NVDA_RAW = _raw(NVDA)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(NVDA_RAW)), st.binary(max_size=20))
def test_fuzz_truncated_real_submission(cut, tail):
    _must_not_crash(NVDA_RAW[:cut] + tail)


_HTML_FRAGMENTS = [
    *_FRAGMENTS, ITEM_8K[:60], ITEM_8K[60:140], b"<p>Exhibit 99.1</p>", b"<p>Date: March 1, 2024</p>",
    b"<p>Dated: February 30, 2024</p>", b"<p>Item 5.02</p>", b"<p>SIGNATURES</p>",
]  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_HTML_FRAGMENTS), max_size=50).map(b"".join))
def test_fuzz_standalone_8k_html_raises_only_source_error(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wid-8-k.ex99-1.html"
        path.write_bytes(raw)
        try:
            doc = parse_filing(path)
        except SourceError as e:
            assert str(path) in str(e)
        else:
            assert doc.form == "8-K" and doc.sections


def test_8k_titles_match_the_developments_filter_and_10k_titles_do_not():
    """The reports' "developments" filings query selects 8-K items and EX-99 by section title."""
    [query] = [q for q in SECTIONS["developments"].queries if q.corpus == "filings"]

    def selected(title: str) -> bool:
        return any(s in title.lower() for s in query.sections)

    eight_k = [s.title for p in (NVDA, META, JPM) for d in _parse(p)[0] for s in d.sections]
    eight_k += [s.title for n in ("orcl-8-k.Oracle.8-K.html.gz", "bke-8-k.BuckleInc.8-K.EX99.1.html.gz")
                for s in parse_filing(FIX / n).sections]  # fmt: skip
    assert [t for t in eight_k if not selected(t)] == [
        "Item 9.01. Financial Statements and Exhibits.",  # an exhibit list: not a development
        "Item 9.01 Financial Statements and Exhibits",
    ]
    ten_q = [
        s.title for s in parse_filing(DATA / "sec" / "filings" / "aapl-10-q-2025-08-01.html.gz").sections
    ]
    assert len(ten_q) > 5 and not any(selected(t) for t in ten_q)


def test_registry_and_ingest_with_a_truncated_and_an_unusable_submission(tmp_path):
    spec = SOURCES["submissions"]
    assert spec.corpus == "filings" and [p.name for p in spec.files(DATA)] == [META.name, NVDA.name]
    data = tmp_path / "data"
    (data / "sec" / "submissions").mkdir(parents=True)
    shutil.copy(NVDA, data / "sec" / "submissions")
    (data / "sec" / "submissions" / META.name).write_bytes(gzip.compress(_cut_inside(_raw(META), 3)))
    (data / "sec" / "submissions" / "jpm-8-k.0000019617-26-000241.txt").write_bytes(_cut_inside(_raw(JPM), 1))
    emb = HashEmbedder()
    summary = ingest(data, tmp_path / "index", emb)
    assert [(s.file, s.ticker, s.source) for s in summary.skips] == [
        (f"sec/submissions/{META.name}", "META", "submissions")
    ]
    assert "document 3 (EX-101.LAB meta-20251219_lab.xml) has no </DOCUMENT>" in summary.skips[0].reason
    [failure] = summary.failures
    assert failure.file == "sec/submissions/jpm-8-k.0000019617-26-000241.txt" and failure.ticker == "JPM"
    assert "no usable 8-K/10-K/10-Q or EX-99 document" in failure.error and "no </DOCUMENT>" in failure.error
    assert summary.documents == 2 and summary.corpora["filings"]["passages"] == 4 + 1
    hits = Retriever(tmp_path / "index", emb).search(list(SECTIONS["developments"].queries), "NVDA", "NVIDIA")
    assert hits and {(h.passage.ticker, h.passage.form, h.passage.date) for h in hits} == {
        ("NVDA", "8-K", "2026-03-02")
    }
    assert all(h.passage.section.startswith("Item 5.02.") for h in hits)
    # dated by its event (March 2) but public only once filed (March 6): a report as of March 4 must
    # not see it, one as of March 6 does
    retriever = Retriever(tmp_path / "index", emb)
    assert {p.filed for p in retriever.passages("filings", "NVDA")} == {"2026-03-06"}
    assert retriever.passages("filings", "NVDA", as_of="2026-03-04") == []
    assert len(retriever.passages("filings", "NVDA", as_of="2026-03-06")) == 4
    assert retriever.search(list(SECTIONS["developments"].queries), "NVDA", "NVIDIA", as_of="2026-03-05") == []


SHARED_8K = Path("/work/shared/data/sec/8-K")


@pytest.mark.parametrize(
    ("path", "period", "filed"),
    [
        (SHARED_8K / "jpm-8-k.0000019617-26-000241.txt.gz", "2026-06-24", "2026-06-25"),
        (NVDA, "2026-03-02", "2026-03-06"),
        (META, "2025-12-19", "2025-12-19"),
    ],
    ids=["JPM", "NVDA", "META"],
)
def test_8k_documents_dated_by_period_of_report_title_keeps_filed(path, period, filed):
    h = read_header(_raw(path), path)
    assert (h.period, h.filed) == (period, filed)
    docs, _ = _parse(path)
    assert docs and {d.date for d in docs} == {period}
    assert all(d.title.endswith(f"filed {filed}") for d in docs)


def test_period_of_report_only_dates_8ks():
    """A 10-Q's period of report is its quarter end, months before it was public: keep the filed date."""
    period = b"CONFORMED PERIOD OF REPORT:\t20231230\nFILED AS OF DATE:"
    aapl_q = _raw(DATA / "sec" / "filings" / "aapl-10-q-2025-08-01.html.gz")
    ten_q = _envelope([("10-Q", "q.htm", "10-Q", aapl_q)], form="10-Q").replace(b"FILED AS OF DATE:", period)
    eight_k = _envelope([("8-K", "a.htm", "8-K", ITEM_8K)]).replace(b"FILED AS OF DATE:", period)
    late = _envelope([("8-K", "a.htm", "8-K", ITEM_8K)]).replace(
        b"FILED AS OF DATE:", b"CONFORMED PERIOD OF REPORT:\t20240305\nFILED AS OF DATE:"
    )
    assert read_header(ten_q, Path("x.txt")).period == "2023-12-30"
    assert parse_submission_bytes(eight_k, Path("x.txt"))[0].date == "2023-12-30"
    assert parse_submission_bytes(late, Path("x.txt"))[0].date == "2024-03-01"  # after filing: not an event date
    assert parse_submission_bytes(ten_q, Path("x.txt"))[0].date == "2024-03-01"
