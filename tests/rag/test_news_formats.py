"""News at production depth: CSV/JSON/RSS/Atom readers, UTC timestamps, dedup, ticker tagging, bad rows.

Fixtures in tests/fixtures/news/ are real shipped articles (data/news) re-encoded in the formats
users bring: a NewsAPI-shaped JSON, Polygon-style JSON lines, a generic CSV export, RSS 2.0 and
Atom. Each holds the same 8 records: 6 distinct stories (one about Apple, Tesla and Nvidia at
once, one about no company, one with an explicit TSLA ticker field), a copy of the first with
tracking parameters on its link, and an "Update: ..." re-issue of the second two hours later.
"""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pytest

from rag.errors import SourceError
from rag.sources import SOURCES, collect_skips
from rag.sources.news import parse_news_csv, parse_news_feed, parse_news_json
from rag.sources.news_dedup import dedup, near_duplicate, normalize_url, title_tokens
from rag.sources.news_fields import Article, norm_key, split_tickers, to_article, utc_iso
from rag.sources.news_tickers import Tagger, file_ticker, load_catalog
from rag.types import digest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
FIXTURES = ROOT / "tests" / "fixtures" / "news"
FORMATS = [
    "export-2025-05.csv",
    "feed-2025-05.json",
    "feed-2025-05.jsonl",
    "feed-2025-05.xml",
    "feed-2025-05.atom",
]
EXPECTED = {  # (ticker, UTC date, title start) after dedup and tagging, the same for every format
    ("AAPL", "2025-05-23T19:43:32Z", "Apple (AAPL) Faces Trump Tariff Threat"),
    ("AAPL", "2025-05-23T16:21:00Z", "Apple Can't Really Make iPhones in the U.S."),
    ("NVDA", "2025-05-23T21:49:00Z", "Will Nvidia Stock Keep Rebounding"),
    ("AAPL", "2025-05-22T13:55:01Z", "Kraken to allow trading in Apple, Tesla and"),
    ("TSLA", "2025-05-22T13:55:01Z", "Kraken to allow trading in Apple, Tesla and"),
    ("NVDA", "2025-05-22T13:55:01Z", "Kraken to allow trading in Apple, Tesla and"),
    ("TSLA", "2025-05-23T15:39:08Z", "Tesla Eyes $500 Peak as Autonomy Era Dawns"),
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir like a user's: the SEC ticker list, filings for AAPL/NVDA/TSLA (so their names are
    matched), and an empty news/ folder."""
    (tmp_path / "sec" / "filings").mkdir(parents=True)
    (tmp_path / "news").mkdir()
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "sec")
    for name in (
        "aapl-10-q-2025-08-01.html.gz",
        "nvda-10-q-2025-08-27.html.gz",
        "tsla-10-q-2025-07-24.html.gz",
    ):
        shutil.copy(DATA / "sec" / "filings" / name, tmp_path / "sec" / "filings")
    return tmp_path


def _parse(path: Path):
    spec = next(s for s in SOURCES.values() if path in s.files(path.parent.parent))
    with collect_skips() as skips:
        docs = spec.parse(path)
    return spec.name, docs, skips


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_gives_the_same_articles(data_dir: Path, name: str):
    shutil.copy(FIXTURES / name, data_dir / "news")
    source, docs, skips = _parse(data_dir / "news" / name)
    assert source == {"csv": "news", "json": "news-json", "jsonl": "news-json"}.get(
        name.split(".")[-1], "news-feed"
    )
    got = {(d.ticker, d.date, d.title) for d in docs}
    assert len(got) == len(docs) == len(EXPECTED)
    starts = {start for _, _, start in EXPECTED}
    assert {(t, w, s) for t, w, title in got for s in starts if title.startswith(s)} == EXPECTED
    # the story about no company is reported, not silently lost
    assert skips == [
        "1 of 6 articles name no known ticker (ticker field, cashtag, company name): not indexed"
    ]
    # a multi-company article is one Document per ticker with the same text
    kraken = [d for d in docs if d.title.startswith("Kraken")]
    assert len({d.doc_id for d in kraken}) == 3 and len({d.sections[0].text for d in kraken}) == 1
    assert all("<p>" not in d.sections[0].text and "<div>" not in d.sections[0].text for d in docs)
    assert all(d.corpus == "news" and d.form == "news" for d in docs)


def test_ingest_discovers_every_news_format(data_dir: Path):
    for name in FORMATS:
        shutil.copy(FIXTURES / name, data_dir / "news")
    found = {p.name for spec in SOURCES.values() if spec.corpus == "news" for p in spec.files(data_dir)}
    assert found == set(FORMATS)


def test_per_ticker_file_name_wins(data_dir: Path):
    # a feed saved as news/AAPL.xml is about Apple, whatever else its articles mention
    shutil.copy(FIXTURES / "feed-2025-05.xml", data_dir / "news" / "AAPL.xml")
    _, docs, skips = _parse(data_dir / "news" / "AAPL.xml")
    assert {d.ticker for d in docs} == {"AAPL"} and len(docs) == 6 and skips == []


@pytest.mark.parametrize(
    "value, expected",
    [
        (1748017260000, "2025-05-23T16:21:00Z"),  # epoch ms (the shipped format)
        ("1748017260", "2025-05-23T16:21:00Z"),  # epoch s
        ("1748017260000000", "2025-05-23T16:21:00Z"),  # epoch µs
        ("1748017260000.0", "2025-05-23T16:21:00Z"),
        ("2025-05-23T16:21:00Z", "2025-05-23T16:21:00Z"),
        ("2025-05-23T12:21:00-04:00", "2025-05-23T16:21:00Z"),
        ("2025-05-23T18:21:00.123456+02:00", "2025-05-23T16:21:00Z"),
        ("2025-05-23 16:21:00", "2025-05-23T16:21:00Z"),  # naive: taken as UTC
        ("2025-05-23 16:21:00 UTC", "2025-05-23T16:21:00Z"),
        ("2025-05-23", "2025-05-23T00:00:00Z"),
        ("20250523T162100", "2025-05-23T16:21:00Z"),  # Alpha Vantage time_published
        ("Fri, 23 May 2025 16:21:00 GMT", "2025-05-23T16:21:00Z"),
        ("Fri, 23 May 2025 12:21:00 -0400", "2025-05-23T16:21:00Z"),
        ("Fri, 23 May 2025 12:21:00 EDT", "2025-05-23T16:21:00Z"),
        ("May 23, 2025", "2025-05-23T00:00:00Z"),
        ("", ""),
        ("yesterday", ""),
        ("0", ""),  # 1970: a missing value written as 0, not a date
        ("99999999999999999999999", ""),
        (float("nan"), ""),
        (True, ""),
        (None, ""),
    ],
)
def test_timestamps_normalised_to_utc(value, expected):
    assert utc_iso(value) == expected


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("https://WWW.Example.com/a/b/?utm_source=x&utm_medium=y#top", "https://example.com/a/b", True),
        ("http://example.com/a?id=3&fbclid=zz", "https://example.com/a?id=3", True),
        ("https://example.com/a?id=3", "https://example.com/a?id=4", False),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2", True),
        ("https://example.com/Path", "https://example.com/path", False),  # paths are case-sensitive
    ],
)
def test_url_normalisation(a: str, b: str, same: bool):
    assert (normalize_url(a) == normalize_url(b)) is same


# Shipped news, per ticker: rows, distinct after the old exact link/title rule, distinct now.
SHIPPED = {
    "AAPL": (495, 158, 155),
    "AMZN": (495, 159, 159),
    "META": (497, 158, 156),
    "NVDA": (496, 159, 157),
    "TSLA": (496, 157, 152),
}
# every pair the title rule merges on the shipped news, checked by hand: all are the same story
MERGED = {
    ("-Trump Threatens Apple With at Least 25% Tariff", "Trump Threatens Apple with 25% Tariff"),
    ("Market Chatter: Nvidia, Apple, Tesla Shares to Trade", "Update: Market Chatter: Nvidia, Apple, Tesla"),
    (
        "Fortnite Returns to Apple's App Store in the U.S.",
        "Fortnite Returns to Apple's App Store in the U.S. — Update",
    ),
    ("Market Chatter: Pledged US Investments of Tech", "Update: Market Chatter: Pledged US Investments"),
    (
        "Openai'S Biggest Data Center Secures $11.6 Billion",
        "OpenAI's biggest data center secures $11.6 billion",
    ),
    ("Market Chatter: Musk Says Tesla Situation Has", "Update: Market Chatter: Musk Says Tesla Situation"),
    ("CATL Goes Public in Hong Kong.", "Update: CATL Goes Public in Hong Kong."),
    ("Correction to CATL Goes Public in Hong Kong.", "Update: CATL Goes Public in Hong Kong."),
    (
        "Alphabet's Waymo gets California nod for expansion",
        "Alphabet's Waymo gets California nod for robotaxi",
    ),
}


def _shipped(ticker: str) -> list[Article]:
    rows = csv.DictReader(gzip.open(DATA / "news" / f"{ticker}.csv.gz", "rt"))
    return [to_article(i, {norm_key(k): v for k, v in r.items()})[0] for i, r in enumerate(rows, start=1)]


@pytest.mark.parametrize("ticker", sorted(SHIPPED))
def test_near_duplicate_merges_on_shipped_news(ticker: str):
    rows, old, new = SHIPPED[ticker]
    articles = _shipped(ticker)
    assert len(articles) == rows and len(parse_news_csv(DATA / "news" / f"{ticker}.csv.gz")) == new
    seen: set[str] = set()
    old_rule = 0  # the previous rule: same raw link, or same raw title ignoring case
    for r in csv.DictReader(gzip.open(DATA / "news" / f"{ticker}.csv.gz", "rt")):
        keys = {k for k in (r["storyPath"].strip(), r["title"].strip().lower()) if k}
        if not keys & seen:
            old_rule += 1
            seen |= keys
    assert old_rule == old
    kept, dropped = dedup(articles)
    assert len(kept) == new
    by_title = {
        (d.title, k.title)
        for d, k in dropped
        if normalize_url(d.url) != normalize_url(k.url) and d.title.lower().split() != k.title.lower().split()
    }
    for d, k in by_title:
        assert any(d.startswith(a) and k.startswith(b) for a, b in MERGED), (d, k)


def test_prefix_filtering_finds_what_brute_force_finds():
    """The candidate index must not miss a pair: compare with checking every pair, on all shipped titles."""
    articles = [a for t in sorted(SHIPPED) for a in _shipped(t)]
    kept, _ = dedup(articles)
    brute: list[Article] = []
    urls: set[str] = set()
    titles: set[str] = set()
    for a in articles:
        url, exact = normalize_url(a.url), " ".join(a.title.lower().split())
        dup = url in urls or exact in titles
        dup = dup or any(near_duplicate(a, b, title_tokens(a.title), title_tokens(b.title)) for b in brute)
        urls.add(url)
        titles.add(exact)
        if not dup:
            brute.append(a)
    assert [a.row for a in kept] == [a.row for a in brute]


@pytest.mark.parametrize(
    "a, b, hours, same",
    [
        (
            "Fortnite Returns to Apple's App Store in the U.S.",
            "Fortnite Returns to Apple's App Store in the U.S. — Update",
            5,
            True,
        ),
        # a weekly column reusing its title pattern days apart is a different article
        (
            "The Zacks Analyst Blog Highlights Meta Platforms and Microsoft",
            "The Zacks Analyst Blog Highlights NVIDIA, Meta Platforms and Microsoft",
            69,
            False,
        ),
        (
            "The Zacks Analyst Blog Highlights Meta Platforms and Microsoft",
            "The Zacks Analyst Blog Highlights NVIDIA, Meta Platforms and Microsoft",
            2,
            True,
        ),
        # different figures are different filings, however alike the words
        (
            "Amazon Insider Sold Shares Worth $4,211,791, According to a Recent SEC Filing",
            "Amazon Insider Sold Shares Worth $4,175,442, According to a Recent SEC Filing",
            0,
            False,
        ),
        (
            "Sector Update: Tech Stocks Fall Late Afternoon",
            "Sector Update: Tech Stocks Mixed Late Afternoon",
            0,
            False,
        ),
    ],
)
def test_near_duplicate_rule(a: str, b: str, hours: int, same: bool):
    x = Article(1, a, "u1", "", "2025-05-20T00:00:00Z")
    y = Article(2, b, "u2", "", f"2025-05-{20 + hours // 24:02d}T{hours % 24:02d}:00:00Z")
    assert near_duplicate(x, y, title_tokens(a), title_tokens(b)) is same


def test_tagging_rules(data_dir: Path):
    known = load_catalog(data_dir, data_dir)
    tag = Tagger.for_data_dir(data_dir, known).tag
    assert tag("Apple and Tesla shares fell") == ("AAPL", "TSLA")  # covered names
    assert tag("Shares of NVIDIA rose") == ("NVDA",)  # catalog name is "NVIDIA CORP"
    assert tag("an apple pie recipe; tesla coils") == ()  # names count only capitalised
    assert tag("Oracle signs a deal") == ()  # ORCL has no data here: its name is not matched
    assert tag("Oracle NYSE:ORCL and $MSFT rose") == ("ORCL", "MSFT")  # explicit symbols: any SEC ticker
    assert tag("Costs rose $5 and $USDX is no ticker") == ()
    assert tag("Pineapple growers; Teslas everywhere") == ()  # whole words only
    assert tag("Apple Inc. (AAPL) and (TSLA)") == ("AAPL", "TSLA")
    assert split_tickers(["aapl", {"ticker": "NASDAQ:NVDA"}, "$TSLA", "brk.b", "toolongticker", "??"]) == (
        "AAPL",
        "NVDA",
        "TSLA",
        "BRK.B",
    )


def test_no_catalog_trusts_only_covered_cashtags(tmp_path: Path):
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "AAPL.csv").write_text("title,date\nx,2025-05-23\n")
    tag = Tagger.for_data_dir(tmp_path, None).tag
    assert tag("$AAPL and $MSFT") == ("AAPL",)


@pytest.mark.parametrize(
    "name, ticker",
    [
        ("AAPL.csv.gz", "AAPL"),
        ("nvda.json", "NVDA"),
        ("BRK.B.jsonl.gz", "BRK-B"),  # SEC writes class shares with a dash
        ("feed-2025-05.json", ""),
        ("news.csv", ""),  # ticker-shaped but not an SEC ticker: a feed
        ("export.xml", ""),
    ],
)
def test_file_ticker(data_dir: Path, name: str, ticker: str):
    assert file_ticker(Path(name), load_catalog(data_dir, data_dir)) == ticker


def test_feed_with_ticker_column_uses_it(data_dir: Path):
    path = data_dir / "news" / "wire-2025.csv"
    path.write_text(
        "headline,pubDate,link,tickers\n"
        "Apple news that is really about Microsoft,2025-05-23T10:00:00Z,https://x.test/1,MSFT\n"
        "Apple again,2025-05-23T11:00:00Z,https://x.test/2,\n"
    )
    _, docs, _ = _parse(path)
    assert [(d.ticker, d.title) for d in docs] == [
        ("MSFT", "Apple news that is really about Microsoft"),
        ("AAPL", "Apple again"),  # empty ticker field: tagged from the text
    ]


def test_bad_rows_are_skipped_with_reasons(data_dir: Path):
    path = data_dir / "news" / "AAPL.csv"
    path.write_text(
        "title,published,descriptionText,storyPath\n"
        "Good one,1748017260000,Body,https://x.test/1\n"
        ",1748017260000,,https://x.test/2\n"
        "No date,,Body,https://x.test/3\n"
        "Bad date,next tuesday,Body,https://x.test/4\n"
        "Good two,2025-05-23T10:00:00Z,,https://x.test/5\n"
        "Bad date,32/13/2025,Body,https://x.test/6\n"
    )
    _, docs, skips = _parse(path)
    assert [d.title for d in docs] == ["Good one", "Good two"]
    assert skips == [
        "row 2: no title and no body",
        "row 3: no date",
        "row 4: relative date 'next tuesday' (not a point in time)",
        "row 6: unreadable date '32/13/2025'",
    ]


def test_malformed_json_lines_are_skipped(data_dir: Path):
    lines = (FIXTURES / "feed-2025-05.jsonl").read_text().splitlines()
    path = data_dir / "news" / "TSLA.jsonl"
    path.write_text("\n".join([lines[0], '{"headline": "cut off', "[1, 2]", *lines[1:]]) + "\n")
    _, docs, skips = _parse(path)
    assert len(docs) == 6 and {d.ticker for d in docs} == {"TSLA"}
    assert skips[0].startswith("line 2: not JSON") and skips[1] == "line 3: not an article object (list)"


def test_truncated_json_array_keeps_whole_records(data_dir: Path):
    text = (FIXTURES / "feed-2025-05.json").read_text()
    path = data_dir / "news" / "NVDA.json"
    path.write_text(text[: text.index('"title": "Kraken')])  # cut inside the 4th article
    _, docs, skips = _parse(path)
    assert len(docs) == 3 and len(skips) == 1
    assert skips[0].startswith("item 4: file ends or stops being JSON here") and "rest skipped" in skips[0]


def test_skip_notes_are_capped(data_dir: Path):
    """20 drops one by one, then ONE line counting every drop per reason, most common first; kept
    headlines whose body was a placeholder are counted, not listed."""
    path = data_dir / "news" / "AAPL.csv"
    path.write_text(
        "title,date,body\n"
        + "".join(f"t{i},bad,\n" for i in range(25))
        + ",2025-05-23,0\n" * 5
        + "ok,2025-05-23,\nApple opens a store,2025-05-24,null\nTesla recalls cars,2025-05-24,NULL\n"
    )
    _, docs, skips = _parse(path)
    assert len(docs) == 3 and len(skips) == 22
    assert skips[:2] == ["row 1: unreadable date 'bad'", "row 2: unreadable date 'bad'"]
    assert skips[-2] == (
        "30 rows dropped in all, the first 20 listed: 25 unreadable dates (first: row 1: 'bad'), "
        "5 placeholder bodies and no title (first: row 26: '0')"
    )
    assert skips[-1] == "2 rows with placeholder body 'null' (title kept)"
    assert {d.title: d.sections[0].text for d in docs}["Apple opens a store"] == "Apple opens a store"


def test_windows_1252_is_read_with_a_note(data_dir: Path):
    path = data_dir / "news" / "AAPL.csv"
    path.write_bytes("title,date\nCafé owner’s view on Apple,2025-05-23\n".encode("cp1252"))
    _, docs, skips = _parse(path)
    assert docs[0].title == "Café owner’s view on Apple"
    assert len(skips) == 1 and skips[0].startswith("not UTF-8") and "Windows-1252" in skips[0]


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("AAPL.csv", b"", "no articles (empty file)"),
        ("AAPL.csv", b"title,published,descriptionText,storyPath\n", "no articles"),
        ("AAPL.csv", b"headline,body\nx,y\n", "missing columns: a date column"),
        ("AAPL.csv", b"title,date\x00\n", "NUL bytes"),
        ("AAPL.csv", b"title,date\n\x81\x9d\xff,2025-05-23\n", "nor Windows-1252"),
        ("AAPL.json", b"", "no articles (empty file)"),
        ("AAPL.json", b"[]", "no articles"),
        ("AAPL.json", b'{"status": "ok"}', "no list of articles"),
        ("AAPL.json", b"42", "no list of articles"),
        ("AAPL.xml", b"<html><body>not a feed</body></html>", "no articles in feed"),
        ("AAPL.xml", b"<rss version='2.0'><channel></channel></rss>", "no articles in feed"),
        ("feed-2025-05.xml", (FIXTURES / "feed-2025-05.xml").read_bytes(), "no article names a known ticker"),
    ],
)
def test_unusable_files_raise_source_error(tmp_path: Path, name: str, content: bytes, reason: str):
    # no catalog and no other data here: the generic feed cannot be tagged
    path = tmp_path / "news" / name
    path.parent.mkdir()
    path.write_bytes(content)
    parse = {"csv": parse_news_csv, "json": parse_news_json, "xml": parse_news_feed}[name.rsplit(".", 1)[-1]]
    with pytest.raises(SourceError) as exc:
        parse(path)
    assert str(path) in str(exc.value) and reason in str(exc.value)


def test_doc_ids_are_stable_and_unique():
    """doc_id hashes the link as written (what earlier indexes used), so re-ingesting changes nothing."""
    docs = parse_news_csv(DATA / "news" / "AAPL.csv.gz")
    assert len({d.doc_id for d in docs}) == len(docs)
    first = next(d for d in docs if d.title.startswith("Tech Stocks Had a Crazy Few Days"))
    assert first.doc_id == "news:AAPL:" + digest(first.url)
