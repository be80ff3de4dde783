"""Bad input at ingest level: each broken file is named with a readable reason in the summary
(`failures` when nothing of it could be used, `skips` when part of it was), and nothing else is lost,
in this run or the next.

The data dir holds real files from data/: a good 10-Q and a good news file, plus the kinds of damage
seen in practice: a 10-K cut off at 40% (an interrupted download), a news CSV saved as Windows-1252,
an empty CSV, a header-only CSV and a truncated .gz.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from pathlib import Path

import pytest

from rag.chunking import chunk_document
from rag.ingest import IngestSummary, ingest
from rag.sources.filings import parse_filing
from rag.sources.news import parse_news_csv
from rag.store import CorpusStore
from tests.fakes import HashEmbedder

DATA = Path(__file__).resolve().parents[2] / "data"
GOOD_FILING = "sec/filings/nvda-10-q-2025-08-27.html.gz"
GOOD_NEWS = "news/TSLA.csv.gz"
TRUNCATED_10K = "sec/filings/aapl-10-k-2024-11-01.html"
CP1252_NEWS = "news/AMZN.csv"
EMPTY_CSV = "news/META.csv"
HEADER_ONLY_CSV = "news/MSFT.csv"
TRUNCATED_GZ = "news/NVDA.csv.gz"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for rel in ("sec/company_tickers.json.gz", GOOD_FILING, GOOD_NEWS):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / rel, root / rel)
    tenk = gzip.decompress((DATA / "sec/filings/aapl-10-k-2024-11-01.html.gz").read_bytes())
    (root / TRUNCATED_10K).write_bytes(tenk[: int(len(tenk) * 0.4)])
    # real AMZN rows re-saved as Windows-1252 (curly quotes and dashes become single bytes)
    text = gzip.decompress((DATA / "news/AMZN.csv.gz").read_bytes()).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))[:41]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    assert any(ord(c) > 127 for c in buf.getvalue())
    (root / CP1252_NEWS).write_bytes(buf.getvalue().encode("cp1252", errors="replace"))
    (root / EMPTY_CSV).write_bytes(b"")
    (root / HEADER_ONLY_CSV).write_bytes(b"title,published,descriptionText,storyPath\n")
    (root / TRUNCATED_GZ).write_bytes((DATA / "news/NVDA.csv.gz").read_bytes()[:1000])
    return root


def _indexed(index_dir: Path, corpus: str) -> dict[str, int]:
    """doc_id -> passages in the saved store."""
    table = CorpusStore.load(index_dir, corpus).table
    return table.groupby("doc_id").size().to_dict()


def _expected(data_dir: Path) -> dict[str, dict[str, int]]:
    """What the good parts should put in the index: doc_id -> passage count, per corpus."""
    filings = [parse_filing(data_dir / rel) for rel in (GOOD_FILING, TRUNCATED_10K)]
    news = parse_news_csv(data_dir / GOOD_NEWS) + parse_news_csv(data_dir / CP1252_NEWS)
    return {
        "filings": {d.doc_id: len(chunk_document(d)) for d in filings},
        "news": {d.doc_id: len(chunk_document(d)) for d in news if chunk_document(d)},
    }


def test_bad_files_are_named_and_nothing_else_is_lost(data_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    summary = ingest(data_dir, index, HashEmbedder())

    failures = {f.file: f.error for f in summary.failures}
    assert set(failures) == {EMPTY_CSV, HEADER_ONLY_CSV, TRUNCATED_GZ}
    assert "no articles (empty file)" in failures[EMPTY_CSV] and EMPTY_CSV in failures[EMPTY_CSV]
    assert "header but no articles" in failures[HEADER_ONLY_CSV]
    assert "truncated gzip" in failures[TRUNCATED_GZ] and TRUNCATED_GZ in failures[TRUNCATED_GZ]

    skips = {s.file: s.reason for s in summary.skips}
    assert set(skips) == {TRUNCATED_10K, CP1252_NEWS}
    assert skips[TRUNCATED_10K].startswith("document looks truncated (no closing </html>; ends at 'Item 8.")
    assert skips[CP1252_NEWS].startswith("not UTF-8") and "Windows-1252" in skips[CP1252_NEWS]

    # every good document (and the usable part of the damaged ones) is in the index, whole
    expected = _expected(data_dir)
    assert len(expected["filings"]) == 2 and len(expected["news"]) > 150
    for corpus, docs in expected.items():
        assert _indexed(index, corpus) == docs
    truncated = parse_filing(data_dir / TRUNCATED_10K)
    assert [s.key for s in truncated.sections][-1] == "8"  # the Items before the cut are kept
    assert summary.corpora["filings"]["passages"] == sum(expected["filings"].values())

    # the next run parses only what failed, fails the same way, and keeps everything
    again = ingest(data_dir, index, HashEmbedder())
    assert {f.file for f in again.failures} == set(failures)
    assert again.files_skipped_unchanged == summary.files_seen - len(failures)
    for corpus, docs in expected.items():
        assert _indexed(index, corpus) == docs
    assert IngestSummary.read(index).failures == again.failures
    # an unchanged damaged file is not parsed again, but it is still reported as damaged
    assert {s.file: s.reason for s in again.skips} == skips
    assert IngestSummary.read(index).skips == again.skips


def test_fixing_a_broken_file_brings_it_in(data_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    ingest(data_dir, index, HashEmbedder())
    shutil.copy(DATA / "news/NVDA.csv.gz", data_dir / TRUNCATED_GZ)
    summary = ingest(data_dir, index, HashEmbedder())
    assert TRUNCATED_GZ not in {f.file for f in summary.failures}
    nvda = {d.doc_id for d in parse_news_csv(data_dir / TRUNCATED_GZ)}
    assert nvda <= set(_indexed(index, "news"))
