"""News records in the wild -> one `Article` shape: field-name variants, timestamps in UTC, plain text.

Feeds and exports name the same field differently (`title`/`headline`, `publishedAt`/`pubDate`/
`time_published`, `url`/`link`/`article_url`, `body`/`summary`/`description`) and write time as
epoch seconds or milliseconds, ISO 8601, RFC 2822 or free text ("January 25, 2024 — 03:33 am EST").
Everything is mapped here once, so the CSV, JSON and RSS readers in `news.py` only find records.

Timestamps (`news_dates.py`): a value with a zone or offset is converted to UTC; a naive value
("2025-04-30 13:05") is taken to BE UTC, because a feed that omits the zone gives no better guess
and the machine's local zone would make the result depend on where ingest runs. Output is
`2025-04-30T13:05:00Z`.

Text that is not text: exports fill empty cells with "0", "null", "N/A" and scrapers keep paywall
lines ("Subscribe to continue reading"). Such a title or body is treated as missing (`_PLACEHOLDERS`,
`_BOILERPLATE`), so a headline-only article is kept as a headline, a record with nothing real is
dropped, and neither a "0" body nor a "Sign in" teaser reaches the index or the reports.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.sources.news_dates import INCOMPLETE, NO_DATE, RELATIVE, UNKNOWN_ZONE, read_date, utc_iso  # noqa: F401 (callers import utc_iso from here)

# Normalised key (lower-case, letters and digits only) -> role. Order inside a role = preference.
TITLE_KEYS = ("title", "headline")
DATE_KEYS = (
    "published",
    "publishedat",
    "publishedutc",
    "publishdate",
    "pubdate",
    "date",
    "datetime",
    "time",
    "timepublished",
    "timestamp",
    "created",
    "createdat",
    "updated",
)
URL_KEYS = ("url", "link", "articleurl", "storypath", "href")
BODY_KEYS = ("body", "text", "content", "descriptiontext", "description", "summary", "teaser")
TICKER_KEYS = ("ticker", "tickers", "symbol", "symbols", "stocks")

# Whole-field values that mean "empty" (compared lower-case, after markup and spaces are removed):
# "0" and "-"/"--" are what spreadsheets and pandas write for a missing number or cell; "null", "none",
# "nil", "undefined" and "nan" are the empty values of SQL/JSON, Python, Ruby, JavaScript and pandas
# written out as text; "n/a" and "na" are typed by hand; "[removed]"/"[deleted]" are what Reddit and
# NewsAPI put where the text was taken down.
_PLACEHOLDERS = frozenset(
    ("0", "-", "--", "null", "none", "nil", "undefined", "nan", "n/a", "na", "[removed]", "[deleted]")
)
_PLACEHOLDER_LEN = max(map(len, _PLACEHOLDERS))
# Phrases that make up a whole body only on a paywall, a login wall or a teaser link; a body that is
# nothing but these (and links) carries no news. Matched inside the body, which must have nothing
# else left: a real article that ends with "To subscribe to Barron's, visit ..." is kept whole.
_BOILERPLATE_PHRASES = (
    r"(?:click|tap) here(?: to (?:read|see|view|continue)"
    r"(?: reading| more| the (?:full )?(?:article|story))?)?",
    r"(?:read|see|view) (?:more|the (?:full )?(?:article|story))(?: (?:here|at|on))?",
    r"(?:continue|keep) reading",
    r"(?:subscribe|sign up|register)(?: now)?(?: to (?:continue|keep) reading| to read(?: more)?)?",
    r"(?:sign|log) in(?: to (?:continue|read)(?: reading)?)?",
    r"(?:this|the) (?:content|article|story) is (?:only )?(?:available )?(?:for|to) "
    r"(?:paid |premium )?(?:subscribers|members)(?: only)?",
    r"subscribers only|premium content",
)
_BOILERPLATE = re.compile(rf"\b(?:{'|'.join(_BOILERPLATE_PHRASES)})\b", re.I)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)
_ALNUM = re.compile(r"[^\W_]")
PLACEHOLDER = "placeholder"
BOILERPLATE = "boilerplate-only"

_TICKER_SHAPE = re.compile(r"[A-Z][A-Z0-9]{0,5}(?:[.-][A-Z0-9]{1,2})?")
_TAG = re.compile(r"<[A-Za-z/!][^>]*>")


@dataclass(frozen=True)
class Article:
    """One usable news record, before de-duplication and ticker tagging."""

    row: int  # 1-based record number in the file (CSV data row, JSON item, feed entry)
    title: str
    url: str
    body: str
    date: str  # UTC ISO "2025-04-30T13:05:00Z"
    tickers: tuple[str, ...] = ()  # from the record's own ticker field, if it has one


def norm_key(name: object) -> str:
    """`publishedAt`, `published_at`, `Published At` -> `publishedat`."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def pick(record: dict[str, object], keys: tuple[str, ...]) -> object:
    """First non-empty value under any of `keys` (record keys already normalised)."""
    for k in keys:
        value = record.get(k)
        if value not in (None, "", [], {}):
            return value
    return None


def plain_text(value: object) -> str:
    """A field as one line of readable text: markup stripped, entities decoded, spaces collapsed."""
    if value is None:
        return ""
    if isinstance(value, dict):  # {"value": "..."} / {"text": "..."} shapes
        value = value.get("value") or value.get("text") or ""
    if isinstance(value, list):
        value = " ".join(plain_text(v) for v in value)
    text = str(value)
    if "<" in text:
        text = _TAG.sub(" ", text)
    return " ".join(html.unescape(text).replace("\xa0", " ").split())


def split_tickers(value: object) -> tuple[str, ...]:
    """A record's ticker field -> upper-case tickers: "AAPL, MSFT", ["AAPL"], [{"ticker": "AAPL"}],
    "NASDAQ:AAPL" and "$AAPL" all work; anything that does not look like a ticker is dropped."""
    items: list[str] = []
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, dict):
            v = v.get("ticker") or v.get("symbol") or v.get("name") or ""
        items.extend(re.split(r"[,;|\s]+", str(v or "")))
    out: list[str] = []
    for item in items:
        t = item.strip().lstrip("$").rsplit(":", 1)[-1].upper()
        if _TICKER_SHAPE.fullmatch(t) and t not in out:
            out.append(t)
    return tuple(out)


def not_text(text: str, boilerplate: bool = True) -> str:
    """PLACEHOLDER or BOILERPLATE when a non-empty field holds no real text, else "".

    Titles are checked for placeholders only: a headline is never a paywall line."""
    if len(text) <= _PLACEHOLDER_LEN and text.lower() in _PLACEHOLDERS:
        return PLACEHOLDER
    if not boilerplate or len(text) > 600:  # longer than any paywall line and its links: an article
        return ""
    rest = _URL.sub(" ", text) if "://" in text or "www." in text or "WWW." in text else text
    if len(rest) > 200:
        return ""
    return "" if _ALNUM.search(_BOILERPLATE.sub(" ", rest)) else BOILERPLATE


@dataclass(frozen=True)
class Reading:
    """One record read: its Article, or why it was dropped; and what was dropped from a kept one.

    `kind` groups drops for the file's per-reason counts ("unreadable date", "no title and no body");
    `value` is the field behind it, shown as the example; `stripped` lists (what, value) pairs such
    as ("placeholder body", "0") for a kept article whose body or title was not text.
    """

    article: Article | None
    problem: str = ""
    kind: str = ""
    value: str = ""
    stripped: tuple[tuple[str, str], ...] = ()


def _real(values: Iterable[str], boilerplate: bool = True) -> tuple[str, tuple[str, str]]:
    """The first real text among `values`, and (kind, value) of the first non-text one seen."""
    fake: tuple[str, str] = ("", "")
    for text in values:
        kind = not_text(text, boilerplate) if text else ""
        if text and not kind:
            return text, fake
        if kind and not fake[0]:
            fake = (kind, text)
    return "", fake


def _no_text(fake_title: tuple[str, str], fake_body: tuple[str, str]) -> Reading:
    if fake_body[0]:
        kind = f"{fake_body[0]} body and no title"
        return Reading(None, f"{fake_body[0]} body {fake_body[1][:60]!r} and no title", kind, fake_body[1])
    if fake_title[0]:
        kind = f"{fake_title[0]} title and no body"
        return Reading(None, f"{fake_title[0]} title {fake_title[1][:60]!r} and no body", kind, fake_title[1])
    return Reading(None, "no title and no body", "no title and no body")


_DATE_PROBLEM = {  # a refused date's note, by kind; others read "unreadable date '...'"
    RELATIVE: "relative date {shown!r} (not a point in time)",
    INCOMPLETE: "incomplete date {shown!r} (no year, month or day)",
    UNKNOWN_ZONE: "date {shown!r} in an unknown time zone (write a UTC offset, or add it to _ZONES)",
}


def _first_date(record: dict[str, object]) -> tuple[object, str, str]:
    """(value, UTC date, kind) of the first date field that reads, in DATE_KEYS order; when none
    does, the first non-empty one with its problem. An export whose `published` is a placeholder
    ("0") but whose `updated` is real keeps the article, dated no earlier than it was public."""
    first: tuple[object, str, str] | None = None
    for key in DATE_KEYS:
        value = record.get(key)
        if value in (None, "", [], {}):
            continue
        date, kind = read_date(value)
        if date:
            return value, date, kind
        first = first or (value, date, kind)
    return first or (None, *read_date(None))


def read_record(row: int, record: dict[str, object]) -> Reading:
    """A record needs a real title or body, and a readable date: news is only used point in time
    (`--as-of`), and an undated article would pass every date filter. Nothing is guessed."""
    title, fake_title = _real((plain_text(record.get(k)) for k in TITLE_KEYS), boilerplate=False)
    bodies = sorted((plain_text(record.get(k)) for k in BODY_KEYS), key=len, reverse=True)
    body, fake_body = _real(bodies)  # the fullest real one of summary/description/content
    if not title and not body:
        return _no_text(fake_title, fake_body)
    raw_date, date, kind = _first_date(record)
    if not date:
        shown = " ".join(str(raw_date).split())[:60] if raw_date is not None else ""
        if kind == NO_DATE or not shown:
            return Reading(None, NO_DATE, NO_DATE)
        problem = _DATE_PROBLEM.get(kind, "{kind} {shown!r}").format(kind=kind, shown=shown)
        return Reading(None, problem, kind, shown)
    stripped = []
    if fake_title[0] and not title:
        stripped.append((f"{fake_title[0]} title", fake_title[1]))
    if fake_body[0] and not body:
        stripped.append((f"{fake_body[0]} body", fake_body[1]))
    url = plain_text(pick(record, URL_KEYS))
    art = Article(row, title, url, body, date, split_tickers(pick(record, TICKER_KEYS)))
    return Reading(art, stripped=tuple(stripped))


def to_article(row: int, record: dict[str, object]) -> tuple[Article | None, str]:
    """(Article, "") for a usable record, else (None, why it was dropped); see `read_record`."""
    reading = read_record(row, record)
    return reading.article, reading.problem

