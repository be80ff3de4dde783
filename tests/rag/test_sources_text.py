"""News and Wikipedia sources, chunking: real shipped files plus table-driven bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rag.chunking import MAX_WORDS, chunk_document, pack, split_units
from rag.errors import SourceError
from rag.sources.news import parse_news_csv
from rag.sources.wikipedia import is_disambiguation, parse_wikipedia_jsonl
from rag.types import Document, Section

DATA = Path(__file__).resolve().parents[2] / "data"


def test_news_dedupes_and_uses_utc():
    docs = parse_news_csv(DATA / "news" / "AAPL.csv.gz")
    # the shipped file repeats wire stories: 495 rows, 160 distinct links, 158 distinct titles,
    # 155 after near-duplicate titles ("Update: ..." re-issues) are merged
    assert len(docs) == 155
    assert len({d.url for d in docs}) == len(docs)
    assert {d.ticker for d in docs} == {"AAPL"}
    assert all(d.date.endswith("Z") and d.date.startswith("2025-05") for d in docs)
    first = next(d for d in docs if d.title.startswith("Tech Stocks Had a Crazy Few Days"))
    assert first.date == "2025-05-25T07:00:00Z"  # 1748156400000 ms
    assert first.sections[0].text.startswith(first.title)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "no articles"),
        (b"title,published,descriptionText,storyPath\n", "no articles"),
        (b"a,b\n1,2\n", "missing columns"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_news_bad_input_names_file(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "AAPL.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError) as exc:
        parse_news_csv(path)
    assert str(path) in str(exc.value) and reason in str(exc.value)


def test_truncated_gzip_news(tmp_path: Path):
    raw = (DATA / "news" / "AAPL.csv.gz").read_bytes()
    path = tmp_path / "AAPL.csv.gz"
    path.write_bytes(raw[:1000])
    with pytest.raises(SourceError, match="AAPL.csv.gz"):
        parse_news_csv(path)


def test_wikipedia_companies_and_background():
    docs = parse_wikipedia_jsonl(DATA / "wikipedia" / "companies.jsonl.gz")
    by_ticker = {d.ticker: d for d in docs if d.ticker}
    assert set(by_ticker) == {"AAPL", "AMZN", "META", "NVDA", "TSLA"}
    assert by_ticker["AMZN"].sections[0].text.startswith("Amazon.com, Inc.")
    assert any(d.ticker == "" and "S&P 500" in d.title for d in docs)
    assert by_ticker["AAPL"].url == "https://en.wikipedia.org/wiki/Apple_Inc."


def test_disambiguation_pages_are_skipped(tmp_path: Path):
    assert is_disambiguation("Amazon most often refers to: Amazon (company) …")
    assert not is_disambiguation("Apple Inc. is an American multinational technology company.")
    path = tmp_path / "w.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            '{"ticker": "AMZN", "wiki_title_used": "Amazon", "clean_text": "Amazon may refer to: a river"}\n'
        )
    with pytest.raises(SourceError, match="no usable"):
        parse_wikipedia_jsonl(path)


def test_chunks_respect_sections_and_size():
    risk = " ".join(f"Risk sentence number {i} describes a threat to the business." for i in range(80))
    legal = "The Company is party to legal proceedings. " * 3
    doc = Document(
        "filings:x",
        "filings",
        "AAPL",
        "sec",
        "10-K",
        "2024-11-01",
        "Apple 10-K",
        "u",
        [Section("1A", "Item 1A. Risk Factors", risk), Section("3", "Item 3. Legal Proceedings", legal)],
        "d",
    )
    passages = chunk_document(doc)
    assert all(len(p.text.split()) <= MAX_WORDS for p in passages)
    assert all("legal proceedings" not in p.text for p in passages if p.section.startswith("Item 1A"))
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    # every sentence survives chunking
    joined = " ".join(p.text for p in passages if p.section.startswith("Item 1A"))
    assert all(f"number {i} " in joined for i in range(80))
    assert len({p.passage_id for p in passages}) == len(passages)


def test_table_rows_stay_whole():
    units = split_units(
        "Revenue | 391,035 | 383,285\nNet income | 93,736 | 96,995\n\nProse here. More prose."
    )
    assert units == [
        "Revenue | 391,035 | 383,285",
        "Net income | 93,736 | 96,995",
        "Prose here.",
        "More prose.",
    ]
    assert pack(["a " * 200]) == [" ".join(["a"] * MAX_WORDS), " ".join(["a"] * 40)]
