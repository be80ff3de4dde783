"""News from real exports: free-text dates with US time zones, placeholder bodies, the file-level message.

Fixtures in tests/fixtures/news/real-formats/ hold real shipped articles (data/news: title, excerpt,
link) with their real publication time re-written the way exports write it:
- user-export-est.csv: the reported export, "May 25, 2025 — 03:00 am EDT" (New York local time), body
  "0" for every third article, and two rows that are only "0" (no title, no body);
- newsapi-iso-rfc.json: NewsAPI's shape, ISO 8601 with offsets and RFC 2822, bodies "null", "[removed]",
  "Click here to read more: <url>" and a bare URL, a "null" title, and an item with "0" and "N/A" only;
- us-zones-month-first.csv: a multi-company export with a ticker column, US zone names (EDT, CDT, PT,
  ET, EST, CST, PST, MST, PDT, CT) plus CEST and UTC, and month-first numeric dates on days <= 12
  (05/12/2025 is May 12, never December 5).
They sit in a subfolder so the fuzz tests keep their seeds. The expected instant of every row is
its real epoch time in data/news (cut to the minute where the format has no seconds).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import SourceError
from rag.sources import collect_skips
from rag.sources.news import parse_news_csv, parse_news_json
from rag.sources.news_dates import INCOMPLETE, NO_DATE, RELATIVE, UNKNOWN_ZONE, UNREADABLE, read_date
from rag.sources.news_fields import BOILERPLATE, PLACEHOLDER, norm_key, not_text, to_article, utc_iso
from rag.sources.news_notes import plural

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
REAL = ROOT / "tests" / "fixtures" / "news" / "real-formats"


@pytest.mark.parametrize(
    "value, expected",
    [
        # the reported export, and its neighbours: EST is UTC-5, EDT UTC-4, whatever the date
        ("January 25, 2024 — 03:33 am EST", "2024-01-25T08:33:00Z"),
        ("January 25, 2024 – 03:33 pm EST", "2024-01-25T20:33:00Z"),  # en dash
        ("July 25, 2024 — 03:33 am EDT", "2024-07-25T07:33:00Z"),
        # ET is New York's zone with daylight saving as on that date
        ("Jan 25, 2024 3:33 PM ET", "2024-01-25T20:33:00Z"),
        ("Jul 25, 2024 3:33 PM ET", "2024-07-25T19:33:00Z"),
        ("Mar 10, 2024 1:59 AM ET", "2024-03-10T06:59:00Z"),  # an hour before the spring change
        ("Mar 10, 2024 3:00 AM ET", "2024-03-10T07:00:00Z"),  # just after it
        ("Jan. 25, 2024, 3:33 p.m. ET", "2024-01-25T20:33:00Z"),
        ("Thursday, January 25, 2024 at 3:33 PM ET", "2024-01-25T20:33:00Z"),
        ("Published: January 25, 2024 at 10:00 am CT", "2024-01-25T16:00:00Z"),
        ("Jul 25, 2024 10:00 AM CT", "2024-07-25T15:00:00Z"),
        ("Jan 25, 2024 10:00 AM CST", "2024-01-25T16:00:00Z"),
        ("Jul 25, 2024 10:00 AM CDT", "2024-07-25T15:00:00Z"),
        ("Jan 25, 2024 10:00 AM MST", "2024-01-25T17:00:00Z"),
        ("Jan 25, 2024 10:00 AM PST", "2024-01-25T18:00:00Z"),
        ("Jul 25, 2024 10:00 AM PDT", "2024-07-25T17:00:00Z"),
        ("Jul 25, 2024 10:00 AM PT", "2024-07-25T17:00:00Z"),
        ("Jan 25, 2024 3:33 PM (EST)", "2024-01-25T20:33:00Z"),
        ("25 January 2024 15:33 CET", "2024-01-25T14:33:00Z"),
        ("25 July 2024 15:33 CEST", "2024-07-25T13:33:00Z"),
        ("2024-01-25 03:33:00 EST", "2024-01-25T08:33:00Z"),
        ("2024-07-25 03:33:00 EDT", "2024-07-25T07:33:00Z"),
        ("Jan 25, 2024 3:33 PM UTC", "2024-01-25T15:33:00Z"),
        ("Jan 25, 2024 3:33 PM GMT+3", "2024-01-25T12:33:00Z"),  # GMT plus 3, not POSIX's minus
        ("Jan 25, 2024 3:33 PM", "2024-01-25T15:33:00Z"),  # no zone: UTC, as for ISO
        # RFC 2822
        ("Thu, 25 Jan 2024 08:33:00 GMT", "2024-01-25T08:33:00Z"),
        ("Thu, 25 Jan 2024 03:33:00 -0500", "2024-01-25T08:33:00Z"),
        ("Thu, 25 Jul 2024 03:33:00 EDT", "2024-07-25T07:33:00Z"),
        ("Thu, 25 Jan 2024 15:33:00 CET", "2024-01-25T14:33:00Z"),  # email.utils drops CET: dateutil reads it
        # ISO 8601 with and without zone
        ("2024-01-25T08:33:00Z", "2024-01-25T08:33:00Z"),
        ("2024-01-25T03:33:00-05:00", "2024-01-25T08:33:00Z"),
        ("2024-01-25T09:33:00.250+01:00", "2024-01-25T08:33:00Z"),
        ("2024-01-25T08:33:00", "2024-01-25T08:33:00Z"),
        # epoch seconds and milliseconds
        (1706171580, "2024-01-25T08:33:00Z"),
        ("1706171580000", "2024-01-25T08:33:00Z"),
        # numeric dates are month first (US exports); a first number over 12 can only be a day
        ("03/04/2024", "2024-03-04T00:00:00Z"),
        ("03/04/2024 3:33 PM EST", "2024-03-04T20:33:00Z"),
        ("25/01/2024", "2024-01-25T00:00:00Z"),
        ("1/25/2024 3:33 PM ET", "2024-01-25T20:33:00Z"),
    ],
)
def test_utc_iso_reads_what_exports_write(value: object, expected: str):
    assert utc_iso(value) == expected


@pytest.mark.parametrize(
    "value, kind",
    [
        ("2 hours ago", RELATIVE),
        ("3 days ago", RELATIVE),
        ("yesterday", RELATIVE),
        ("Today 3:33 PM", RELATIVE),
        ("just now", RELATIVE),
        ("last week", RELATIVE),
        ("next tuesday", RELATIVE),
        ("January 25", INCOMPLETE),  # no year: dateutil would use this year
        ("January 2024", INCOMPLETE),  # no day
        ("3:33 PM EST", INCOMPLETE),  # no date at all: dateutil would use today
        ("Jan 25, 2024 3:33 PM XYZ", UNKNOWN_ZONE),  # never read as UTC
        ("Jan 25, 2024 3:33 PM IST", UNKNOWN_ZONE),  # India, Ireland or Israel: not guessed
        ("25 janvier 2024 15:33", UNREADABLE),
        ("32/13/2024", UNREADABLE),
        ("0", UNREADABLE),  # 1970: a missing value written as 0
        ("n/a", UNREADABLE),
        ("January 25, 2024 " + "x" * 80, UNREADABLE),  # a sentence, not a timestamp
        ("", NO_DATE),
        (None, NO_DATE),
    ],
)
def test_what_is_not_a_point_in_time_is_refused_with_its_kind(value: object, kind: str):
    assert read_date(value) == ("", kind)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.text(alphabet="0123456789 :/-,.+TZ—apmESTDUCGMJanFebJulyat", max_size=40),
        st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "Dec 31, 9999 11:59 PM EST"]),
    )
)
def test_any_text_gives_a_date_or_a_kind_never_an_exception(text: str):
    date, kind = read_date(text)
    assert bool(date) != bool(kind)
    assert not date or re.fullmatch(r"(19[89]\d|20\d\d|2100)-\d\d-\d\dT\d\d:\d\d:\d\dZ", date)


def test_free_text_dates_are_fast_enough_for_big_exports():
    """Distinct free-text dates cost ~0.1 ms each (10,000 rows: ~1 s), far below embedding them."""
    values = [
        f"{m} {d}, {y} — {h:02d}:{mi:02d} am EST"
        for y in (2023, 2024)
        for m in ("January", "March", "July", "October")
        for d in range(1, 29)
        for h in range(1, 12)
        for mi in (7, 41, 53, 59)
    ][:2_000]
    start = time.perf_counter()
    got = [utc_iso(v) for v in values]
    elapsed = time.perf_counter() - start
    assert all(got) and got[0] == "2023-01-01T06:07:00Z"
    assert elapsed < 2.0, f"{elapsed:.2f} s for 2,000 dates"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("0", PLACEHOLDER),
        ("null", PLACEHOLDER),
        ("None", PLACEHOLDER),
        ("N/A", PLACEHOLDER),
        ("nan", PLACEHOLDER),
        ("-", PLACEHOLDER),
        ("[removed]", PLACEHOLDER),
        ("undefined", PLACEHOLDER),
        ("Click here to read more", BOILERPLATE),
        ("Click here to read more: https://www.tradingview.com/news/DJN_DN20250525000348:0/", BOILERPLATE),
        ("Subscribe to continue reading", BOILERPLATE),
        ("Sign in", BOILERPLATE),
        ("This content is for subscribers only.", BOILERPLATE),
        ("https://www.tradingview.com/news/DJN_DN20250525000348:0/", BOILERPLATE),
        ("Read the full story here »", BOILERPLATE),
        # real bodies that contain such words are text
        ("Click here to participate in the action. Then, Apple announced on March 7, 2025", ""),
        ("Questions or comments about this article and/or author? Click here>>", ""),
        ("0.5% rise in Apple shares", ""),
        ("Nvidia", ""),
    ],
)
def test_placeholder_and_boilerplate_bodies(text: str, kind: str):
    assert not_text(text) == kind


def test_no_shipped_title_or_body_is_taken_for_a_placeholder():
    """2,479 real rows: the placeholder and boilerplate rules must not eat real text."""
    flagged = []
    for path in sorted((DATA / "news").glob("*.csv.gz")):
        for row in csv.DictReader(gzip.open(path, "rt", encoding="utf-8")):
            for field in ("title", "descriptionText"):
                text = " ".join(row[field].split())
                if text and not_text(text):
                    flagged.append((path.name, field, text[:80]))
    assert flagged == []


# Shipped news per file, measured before this change: Documents and a digest of (doc_id, date,
# content digest, text) of all of them, so not one date or text moved.
SHIPPED = {
    "AAPL": (155, "e873d29c51a1c29a"),
    "AMZN": (159, "dc067484923a7245"),
    "META": (156, "a8cd62a6441495ad"),
    "NVDA": (157, "0644b49e53cbfb6a"),
    "TSLA": (152, "fdf98a992784d286"),
}


@pytest.mark.parametrize("ticker", sorted(SHIPPED))
def test_shipped_news_parses_exactly_as_before(ticker: str):
    with collect_skips() as skips:
        docs = parse_news_csv(DATA / "news" / f"{ticker}.csv.gz")
    rows = "\n".join(f"{d.doc_id}|{d.date}|{d.content_digest}|{d.sections[0].text}" for d in docs)
    assert (len(docs), hashlib.sha256(rows.encode()).hexdigest()[:16]) == SHIPPED[ticker]
    assert skips == []  # ~3% empty bodies: nothing was dropped, so nothing to report


def _truth() -> dict[str, int]:
    """Link -> real publication time (epoch ms) of every shipped article."""
    out: dict[str, int] = {}
    for path in sorted((DATA / "news").glob("*.csv.gz")):
        for row in csv.DictReader(gzip.open(path, "rt", encoding="utf-8")):
            out[row["storyPath"]] = int(row["published"])
    return out


def _expected(raw_date: str, epoch_ms: int) -> str:
    """The instant a row's written date stands for: its real time, to the minute without seconds."""
    seconds = epoch_ms // 1000 if re.search(r"\d:\d\d:\d\d", raw_date) else epoch_ms // 60_000 * 60
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "sec").mkdir()
    (tmp_path / "news").mkdir()
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "sec")
    return tmp_path


def _parse(parse, path: Path):
    with collect_skips() as skips:
        docs = parse(path)
    return docs, skips


def test_the_reported_export_keeps_every_real_article(data_dir: Path):
    """The user's file lost all its real articles to "Month D, YYYY — hh:mm am EDT" dates and kept
    the "0"-body rows; now every real article is in, at its real instant, and "0" is no body."""
    src = REAL / "user-export-est.csv"
    path = data_dir / "news" / "AAPL.csv"
    shutil.copy(src, path)
    docs, skips = _parse(parse_news_csv, path)
    truth = _truth()
    rows = list(csv.DictReader(src.open(encoding="utf-8")))
    real = [r for r in rows if r["Title"]]
    assert len(rows) == 16 and len(real) == 14
    written = {r["URL"]: r["Date"] for r in real}
    assert sorted(d.url for d in docs) == sorted(written)  # the 14 real articles, none lost
    for d in docs:
        assert d.date == _expected(written[d.url], truth[d.url]), (d.title, written[d.url])
    first = next(d for d in docs if d.title.startswith("Tech Stocks Had a Crazy Few Days"))
    assert written[first.url] == "May 25, 2025 — 03:00 am EDT" and first.date == "2025-05-25T07:00:00Z"
    zero = [d for d in docs if next(r for r in real if r["URL"] == d.url)["Content"] == "0"]
    assert len(zero) == 4 and all(d.sections[0].text == d.title for d in zero)  # headline kept, no "0"
    assert skips == [
        "row 6: placeholder body '0' and no title",
        "row 12: placeholder body '0' and no title",
        "4 rows with placeholder body '0' (title kept)",
    ]


def test_json_with_iso_offsets_rfc2822_and_placeholders(data_dir: Path):
    src = REAL / "newsapi-iso-rfc.json"
    path = data_dir / "news" / "NVDA.json"
    shutil.copy(src, path)
    docs, skips = _parse(parse_news_json, path)
    truth = _truth()
    items = json.loads(src.read_text(encoding="utf-8"))["articles"]
    written = {a["url"]: a for a in items if a["url"]}
    assert len(docs) == len(written) == 10
    for d in docs:
        a = written[d.url]
        assert d.date == _expected(a["publishedAt"], truth[d.url]), a["publishedAt"]
    text = {d.url: d.sections[0].text for d in docs}
    assert text[items[7]["url"]] == items[7]["description"]  # title "null": the body carries it
    for i in (3, 5, 6, 8):  # placeholder or boilerplate body: the headline only
        assert text[items[i]["url"]] == items[i]["title"]
    for i in (0, 1, 2, 4, 9):  # real bodies, whole
        assert text[items[i]["url"]] == f"{items[i]['title']}. {items[i]['description']}"
    assert skips == [
        "item 11: placeholder body 'N/A' and no title",
        "1 item with placeholder body 'null' (title kept)",
        "1 item with placeholder body '[removed]' (title kept)",
        "2 items with boilerplate-only body (first: 'Click here to read more: "
        "https://www.tradingview.com/news/DJ') (title kept)",
        "1 item with placeholder title 'null' (body kept)",
    ]


def test_us_zones_and_month_first_dates(data_dir: Path):
    src = REAL / "us-zones-month-first.csv"
    path = data_dir / "news" / "wire-2025-05.csv"  # a multi-company feed: the ticker column decides
    shutil.copy(src, path)
    docs, skips = _parse(parse_news_csv, path)
    truth = _truth()
    rows = {r["link"]: r for r in csv.DictReader(src.open(encoding="utf-8"))}
    assert len(docs) == len(rows) == 12 and skips == []
    zones = {r["pubDate"].rsplit(" ", 1)[-1] for r in rows.values()}
    assert zones == {"EDT", "CDT", "PT", "ET", "EST", "CEST", "UTC", "CT", "PDT", "CST", "PST", "MST"}
    for d in docs:
        row = rows[d.url]
        assert d.ticker == row["ticker"]
        assert d.date == _expected(row["pubDate"], truth[d.url]), row["pubDate"]
    month_first = [d for d in docs if rows[d.url]["pubDate"].startswith("05/12/2025")]
    assert len(month_first) >= 2 and all(d.date.startswith("2025-05-1") for d in month_first)


def _rewrite(src: Path, dest: Path, date: str) -> None:
    """The reported export with every date replaced (what a scraper or a foreign-language export writes)."""
    rows = list(csv.reader(src.open(encoding="utf-8")))
    with dest.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([rows[0]] + [[r[0], date, r[2], r[3]] for r in rows[1:]])


@pytest.mark.parametrize(
    "date, reason, fix",
    [
        (
            "3 hours ago",
            "14 relative dates (not a point in time) (first: row 1: '3 hours ago')",
            "export absolute dates (ISO 8601, RFC 2822 or epoch), not '2 hours ago'",
        ),
        (
            "25 mai 2025 — 03:00",
            "14 unreadable dates (first: row 1: '25 mai 2025 — 03:00')",
            "write dates as ISO 8601 with a zone (2024-01-25T08:33:00Z), RFC 2822 or epoch seconds/ms",
        ),
    ],
)
def test_a_file_with_no_usable_article_names_what_its_rows_failed_on(
    data_dir: Path, date: str, reason: str, fix: str
):
    path = data_dir / "news" / "feed-2025-05.csv"  # a feed: the old message blamed tickers
    _rewrite(REAL / "user-export-est.csv", path, date)
    with pytest.raises(SourceError) as exc:
        parse_news_csv(path)
    assert str(exc.value) == (
        f"{path}: no articles: all 16 rows dropped: {reason}, "
        f"2 placeholder bodies and no title (first: row 6: '0'); {fix}"
    )
    assert "ticker" not in str(exc.value)


def test_counts_read_as_english():
    assert [plural(1, "row"), plural(2, "row"), plural(3, "entry"), plural(2, "day")] == [
        "1 row",
        "2 rows",
        "3 entries",
        "2 days",
    ]


def test_a_feed_whose_articles_name_no_ticker_also_counts_its_drops(tmp_path: Path):
    path = tmp_path / "news" / "feed-2025-05.csv"  # no catalog, no filings: nothing can be tagged
    path.parent.mkdir()
    shutil.copy(REAL / "user-export-est.csv", path)
    with pytest.raises(SourceError) as exc:
        parse_news_csv(path)
    assert "no article names a known ticker (14 articles read; 2 rows dropped: " in str(exc.value)
    assert "2 placeholder bodies and no title (first: row 6: '0')" in str(exc.value)


def test_each_refused_date_is_noted_with_its_reason(data_dir: Path):
    path = data_dir / "news" / "AAPL.csv"
    path.write_text(
        "title,date\n"
        "Apple opens a store,Jan 25 2024 3:33 PM IST\n"
        "Apple closes a store,January 25\n"
        "Apple moves a store,2 hours ago\n"
        "Apple sells a store,January 25 2024 — 03:33 am EST\n"
    )
    docs, skips = _parse(parse_news_csv, path)
    assert [(d.title, d.date) for d in docs] == [("Apple sells a store", "2024-01-25T08:33:00Z")]
    assert skips == [
        "row 1: date 'Jan 25 2024 3:33 PM IST' in an unknown time zone (write a UTC offset, or add it to _ZONES)",
        "row 2: incomplete date 'January 25' (no year, month or day)",
        "row 3: relative date '2 hours ago' (not a point in time)",
    ]


@pytest.mark.parametrize(
    ("record", "date", "problem"),
    [
        # a placeholder `published` and a real `updated`: dated by the first field that reads
        ({"title": "Tesla Names Chipotle Executive John R. Hartung to Board", "published": "0",
          "updated": "2025-05-16T12:31:00Z"}, "2025-05-16T12:31:00Z", ""),
        ({"title": "Tesla Names Chipotle Executive John R. Hartung to Board", "published": "2 hours ago",
          "date": "May 16, 2025 — 08:31 am EDT"}, "2025-05-16T12:31:00Z", ""),
        # none reads: the first field's problem is named, nothing is invented
        ({"title": "Tesla Names Chipotle Executive John R. Hartung to Board", "published": "yesterday",
          "time": "08:31 am"}, None, "relative date 'yesterday'"),
    ],
)  # fmt: skip
def test_the_first_date_field_that_reads_dates_the_article(record, date, problem):
    article, why = to_article(1, {norm_key(k): v for k, v in record.items()})
    assert (article.date if article else None) == date
    assert problem in why
