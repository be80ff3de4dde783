"""News records in the wild -> one `Article` shape: field-name variants, timestamps in UTC, plain text.

Feeds and exports name the same field differently (`title`/`headline`, `publishedAt`/`pubDate`/
`time_published`, `url`/`link`/`article_url`, `body`/`summary`/`description`) and write time as
epoch seconds or milliseconds, ISO 8601 or RFC 2822. Everything is mapped here once, so the CSV,
JSON and RSS readers in `news.py` only find records.

Timestamps: a value with a zone or offset is converted to UTC; a naive value ("2025-04-30 13:05")
is taken to BE UTC, because a feed that omits the zone gives no better guess and the machine's
local zone would make the result depend on where ingest runs. Output is `2025-04-30T13:05:00Z`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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

_YEARS = (1980, 2100)  # outside this a "date" is a mis-read number (seconds taken for ms, an id)
_EXTRA_FORMATS = (
    "%B %d, %Y %H:%M",
    "%B %d, %Y",
    "%b %d, %Y %H:%M",
    "%b %d, %Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)
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


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # naive: documented as UTC (see module docstring)
    dt = dt.astimezone(UTC)
    if not _YEARS[0] <= dt.year <= _YEARS[1]:
        raise ValueError(f"year {dt.year} out of range")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(number: float) -> datetime:
    """Epoch seconds, milliseconds or microseconds, told apart by magnitude (1e11 s is year 5138)."""
    for scale in (1, 1_000, 1_000_000):
        if abs(number) < 1e11 * scale:
            return datetime.fromtimestamp(number / scale, tz=UTC)
    raise ValueError("epoch value too large")


def utc_iso(value: object) -> str:
    """Any supported timestamp -> `YYYY-MM-DDTHH:MM:SSZ`; "" when it cannot be read."""
    if value is None or isinstance(value, bool):
        return ""
    try:
        if isinstance(value, int | float):
            return _iso(_epoch(float(value)))
        text = str(value).strip()
        if not text:
            return ""
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _iso(_epoch(float(text)))
    except (ValueError, OverflowError, OSError):
        return ""
    text = re.sub(r"\s+UTC$|\s+GMT$", "Z", text) if re.match(r"\d{4}-", text) else text
    parsers = [datetime.fromisoformat, parsedate_to_datetime]
    parsers += [lambda s, f=f: datetime.strptime(s, f) for f in _EXTRA_FORMATS]
    for parse in parsers:
        try:
            return _iso(parse(text))
        except (ValueError, TypeError, OverflowError, IndexError, OSError):
            continue
    return ""


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


def to_article(row: int, record: dict[str, object]) -> tuple[Article | None, str]:
    """(Article, "") for a usable record, else (None, why it was dropped).

    A record needs a title or a body, and a readable date: news is only used point in time
    (`--as-of`), and an undated article would pass every date filter.
    """
    title = plain_text(pick(record, TITLE_KEYS))
    bodies = [plain_text(record.get(k)) for k in BODY_KEYS]
    body = max(bodies, key=len)  # the fullest of summary/description/content
    if not title and not body:
        return None, "no title and no body"
    raw_date = pick(record, DATE_KEYS)
    date = utc_iso(raw_date)
    if not date:
        shown = str(raw_date)[:40] if raw_date is not None else ""
        return None, f"unreadable date {shown!r}" if shown else "no date"
    url = plain_text(pick(record, URL_KEYS))
    return Article(row, title, url, body, date, split_tickers(pick(record, TICKER_KEYS))), ""
