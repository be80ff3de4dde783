"""The ingest report names every file under the data folder: what was read, what failed and why,
what was set aside, and for a file no source reads, where it would have to go.

The folder mixes real files the sources read (an 8-K earnings release, an XBRL instance, a news
CSV, SEC's ticker list) with what a research team drops next to them in practice: an Excel
export, a PDF at the top level, a filing in a subfolder, an instance outside sec/xbrl/, a linkbase,
a README, a .DS_Store, a corrupt download and a Word file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.ingest import SUMMARY_FILE, IngestSummary, ingest
from rag.ingest_report import STATUSES, FileLedger, file_report, status_counts
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
FIXTURES = ROOT / "tests" / "fixtures"

PLACED = {
    # real inputs the sources read
    "sec/company_tickers.json.gz": DATA / "sec/company_tickers.json.gz",
    "sec/filings/bke-8-k.BuckleInc.8-K.EX99.1.html.gz": FIXTURES / "sec8k/bke-8-k.BuckleInc.8-K.EX99.1.html.gz",
    "sec/xbrl/tsla-20240630_htm.xml.gz": FIXTURES / "xbrl/tsla-20240630_htm.xml.gz",
    "news/TSLA.csv.gz": DATA / "news/TSLA.csv.gz",
    "sec/filings/wfc-10-k-2025-02-25.html.gz": FIXTURES / "incorporation/wfc-10-k-2025-02-25.html.gz",
    # what else lands in a data folder
    "sec/xbrl/amzn-20221231_htm.xml.gz": FIXTURES / "xbrl/amzn-20221231_htm.xml.gz",
    "filings/amzn-20221231_htm.xml.gz": FIXTURES / "xbrl/amzn-20221231_htm.xml.gz",
    "sec/filings/2024/bke-8-k.BuckleInc.8-K.EX99.1.html.gz": FIXTURES / "sec8k/bke-8-k.BuckleInc.8-K.EX99.1.html.gz",
}
WRITTEN = {
    "news/export.xlsx": b"PK\x03\x04 not really a workbook",
    "annual-report.pdf": b"%PDF-1.7\n",
    "sec/xbrl/tsla-20240630_cal.xml": b"<linkbase/>",
    "README.md": b"# our data\n",
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    "sec/filings/nvda-10-k-2025-02-26.html.gz": b"\x1f\x8b\x08\x00 cut off",
    "notes.docx": b"PK\x03\x04",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, IngestSummary]:
    root = tmp_path_factory.mktemp("report")
    data, index = root / "data", root / "index"
    for rel, src in PLACED.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, data / rel)
    for rel, raw in WRITTEN.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(raw)
    return data, index, ingest(data, index, HashEmbedder())


def _by_file(summary: IngestSummary) -> dict[str, object]:
    return {e.file: e for e in summary.files}


def test_every_placed_file_has_exactly_one_entry(run):
    _, _, summary = run
    files = [e.file for e in summary.files]
    assert sorted(files) == sorted([*PLACED, *WRITTEN])
    assert all(e.status in STATUSES for e in summary.files)


def test_what_the_sources_read_is_parsed_with_every_use_named(run):
    entries = _by_file(run[2])
    release = entries["sec/filings/bke-8-k.BuckleInc.8-K.EX99.1.html.gz"]
    assert release.status == "parsed"
    assert release.sources == ["filings", "press-release"]  # passages and the release's figures
    assert entries["sec/xbrl/tsla-20240630_htm.xml.gz"].sources == ["xbrl-instance"]
    assert entries["news/TSLA.csv.gz"].sources == ["news"]
    assert entries["sec/company_tickers.json.gz"].sources == ["company-tickers"]


def test_a_10k_whose_statements_are_incorporated_by_reference_says_so_and_gives_no_facts(run):
    _, index, summary = run
    entry = _by_file(summary)["sec/filings/wfc-10-k-2025-02-25.html.gz"]
    assert entry.status == "partly parsed"
    assert "financial statements incorporated by reference" in entry.reason
    assert "WFC" not in summary.facts_tickers
    skip = next(s for s in summary.skips if s.file == entry.file)
    assert skip.ticker == "WFC"  # the report for WFC repeats it in its data notes (flows/reports.py)


def test_a_corrupt_download_is_failed_with_the_parser_reason(run):
    entry = _by_file(run[2])["sec/filings/nvda-10-k-2025-02-26.html.gz"]
    assert entry.status == "failed"
    assert "gzip" in entry.reason


@pytest.mark.parametrize(
    ("rel", "hint"),
    [
        ("news/export.xlsx", "save it as CSV"),
        ("annual-report.pdf", "sec/pdf/"),
        ("filings/amzn-20221231_htm.xml.gz", "sec/xbrl/"),
        ("sec/filings/2024/bke-8-k.BuckleInc.8-K.EX99.1.html.gz", "subfolders are not searched: move it into sec/filings/"),
        ("notes.docx", "no source reads .docx files"),
    ],
)
def test_an_unrecognised_file_says_what_would_make_it_recognised(run, rel, hint):
    entry = _by_file(run[2])[rel]
    assert entry.status == "not recognised"
    assert hint in entry.reason


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("README.md", "documentation"),
        (".DS_Store", "hidden file"),
        ("sec/xbrl/tsla-20240630_cal.xml", "linkbase"),
    ],
)
def test_files_that_are_not_data_are_ignored_with_the_reason(run, rel, why):
    entry = _by_file(run[2])[rel]
    assert (entry.status, why in entry.reason) == ("ignored", True)


def test_the_report_is_saved_and_read_back_and_a_second_run_says_unchanged(run):
    data, index, summary = run
    saved = json.loads((index / SUMMARY_FILE).read_text())
    assert len(saved["files"]) == len(summary.files)
    assert "ledger" not in saved
    assert IngestSummary.read(index).files == summary.files
    again = _by_file(ingest(data, index, HashEmbedder()))
    assert again["news/TSLA.csv.gz"].status == "unchanged"
    # facts served from the per-file cache are not "parsed" again either
    assert again["sec/xbrl/tsla-20240630_htm.xml.gz"].status == "unchanged"
    release = again["sec/filings/bke-8-k.BuckleInc.8-K.EX99.1.html.gz"]
    assert (release.status, release.sources) == ("unchanged", ["filings", "press-release"])
    assert again["sec/filings/nvda-10-k-2025-02-26.html.gz"].status == "failed"  # still reported
    assert again["notes.docx"].status == "not recognised"


def test_a_news_only_run_reports_filings_as_not_part_of_it_not_as_unrecognised(run):
    data, index, _ = run
    entries = _by_file(ingest(data, index, HashEmbedder(), sources={"news"}))
    assert entries["sec/xbrl/tsla-20240630_htm.xml.gz"].status == "ignored"
    assert "not part of this run" in entries["sec/xbrl/tsla-20240630_htm.xml.gz"].reason
    assert entries["annual-report.pdf"].status == "not recognised"
    assert entries["news/TSLA.csv.gz"].status in ("parsed", "unchanged")


def test_an_instance_of_a_ticker_with_companyfacts_is_set_aside_with_the_reason(tmp_path):
    data = tmp_path / "data"
    (data / "sec/companyfacts").mkdir(parents=True)
    (data / "sec/xbrl").mkdir(parents=True)
    shutil.copy(DATA / "sec/companyfacts/companyfacts_CIK0000320193_AAPL.json.gz", data / "sec/companyfacts")
    shutil.copy(FIXTURES / "xbrl/aapl-20230930_htm.xml.gz", data / "sec/xbrl")
    entries = _by_file(ingest(data, tmp_path / "index", HashEmbedder()))
    entry = entries["sec/xbrl/aapl-20230930_htm.xml.gz"]
    assert entry.status == "set aside"
    assert "companyfacts covers AAPL" in entry.reason
    assert entries["sec/companyfacts/companyfacts_CIK0000320193_AAPL.json.gz"].sources == ["companyfacts"]


def test_the_worst_outcome_wins_when_stages_disagree_and_counts_follow_status_order(tmp_path):
    ledger = FileLedger()
    ledger.record("sec/filings/x-10-k-2024-01-01.htm", "filings", "parsed")
    ledger.record("sec/filings/x-10-k-2024-01-01.htm", "inline-xbrl", "failed", "no ix:nonFraction tags")
    (tmp_path / "sec/filings").mkdir(parents=True)
    (tmp_path / "sec/filings/x-10-k-2024-01-01.htm").write_text("<html></html>")
    (tmp_path / "odd.bin").write_bytes(b"\x00")
    entries = file_report(tmp_path, ledger)
    assert [(e.status, e.sources) for e in entries] == [
        ("not recognised", []),
        ("failed", ["filings", "inline-xbrl"]),
    ]
    assert list(status_counts(entries)) == ["failed", "not recognised"]


def test_an_index_built_by_another_embedder_is_rebuilt_even_though_no_file_changed(tmp_path):
    """An upgrade that changes the embedder (model, backend, precision) must not leave an empty
    index behind a files.json that says everything is up to date."""
    from rag.retrieve import Retriever

    class OtherBackend(HashEmbedder):
        @property
        def signature(self) -> str:
            return super().signature + "|backend=other"

    data = tmp_path / "data"
    (data / "news").mkdir(parents=True)
    shutil.copy(DATA / "news/TSLA.csv.gz", data / "news")
    ingest(data, tmp_path / "index", HashEmbedder())
    summary = ingest(data, tmp_path / "index", OtherBackend())
    assert summary.files_skipped_unchanged == 0 and summary.documents > 100
    assert summary.corpora["news"]["passages"] == summary.corpora["news"]["passages_added"] > 100
    retriever = Retriever(tmp_path / "index", OtherBackend())
    assert len(retriever.passages("news", "TSLA")) == summary.corpora["news"]["passages"]
    again = ingest(data, tmp_path / "index", OtherBackend())  # and then incremental again
    assert again.documents == 0 and again.files_skipped_unchanged == 1
