"""News timestamps as real exports write them -> UTC `YYYY-MM-DDTHH:MM:SSZ`, or why they cannot be read.

Readers are tried fast and exact first; each later one sees only what the earlier ones could not read:
1. epoch seconds, milliseconds or microseconds (a number, or digits), told apart by magnitude;
2. ISO 8601 (`datetime.fromisoformat`): `2024-01-25T08:33:00Z`, `...-05:00`, `2024-01-25 08:33:00 UTC`,
   `20240125T083300`, `2024-01-25`;
3. RFC 2822 (`email.utils`): `Thu, 25 Jan 2024 08:33:00 GMT`, `-0500`, `EST`; used only when it found
   a zone, because it silently drops the ones it does not know ("CET") and words like "pm";
4. free text, by python-dateutil's parser with the zone table below: "January 25, 2024 — 03:33 am EST",
   "Jan 25, 2024 3:33 PM ET", "25 January 2024 15:33 CET", "2024-01-25 03:33:00 EST". The result is
   cached per distinct string (exports repeat times), ~80 µs per new string.

Why dateutil and not dateparser (both are installed, as dependencies of pandas and prefect): dateparser
1.5 takes 2-10 ms per value (the first call ~300 ms), i.e. up to a minute for a 10,000-row file of
unreadable values, and by default reads "2 hours ago" or "yesterday" against the clock of the machine
running ingest, which for a stored file invents a date. dateutil is deterministic, ~50x faster, and its
time zones come only from `_ZONES` here. What it cannot read (non-English month names) is refused
with the reason, never guessed.

Rules, because a wrong date is worse than none (news is used point in time, `--as-of`):
- Zones (`_ZONES`): EST/EDT, CST/CDT, MST/MDT, PST/PDT, CET/CEST are the fixed offsets they name; ET,
  CT, MT, PT are the region's zone (America/New_York, ...) with daylight saving as on that date
  (an ambiguous hour at the autumn change reads as the first, daylight one). CST is US Central, not
  China: these are US news exports. Any other abbreviation is refused: dateutil would return a naive
  time, read as UTC, hours off. "GMT+3"/"UTC+05:00" mean UTC plus that offset (not POSIX's inverse).
- A value with no zone is taken as UTC (see `news_fields`), so the result never depends on where
  ingest runs.
- Numeric dates with slashes are month first, the US norm: "03/04/2024" is March 4. A first number
  over 12 can only be a day and is read so ("25/01/2024" is January 25).
- Year, month and day must be in the text; dateutil fills missing parts from a default date, which
  would invent one ("January 25" would become this year). A missing time is midnight UTC.
- Relative values ("2 hours ago", "yesterday", "today", "just now", "last week", "next tuesday")
  are no point in time once stored in a file: refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser

# Result kinds (what `read_date` returns beside the timestamp); news.py counts drops by these.
NO_DATE = "no date"
UNREADABLE = "unreadable date"
RELATIVE = "relative date"
UNKNOWN_ZONE = "unknown time zone"
INCOMPLETE = "incomplete date"

_YEARS = (1980, 2100)  # outside this a "date" is a mis-read number (seconds taken for ms, an id)
_MAX_LEN = 80  # longer text is a sentence, not a timestamp; also keeps dateutil's work bounded
_ZONES: dict[str, tzinfo] = {
    **dict.fromkeys(("UTC", "GMT", "UT", "Z", "ZULU"), UTC),
    **{k: timezone(timedelta(hours=h), k) for k, h in (("EST", -5), ("EDT", -4), ("CST", -6), ("CDT", -5))},
    **{k: timezone(timedelta(hours=h), k) for k, h in (("MST", -7), ("MDT", -6), ("PST", -8), ("PDT", -7))},
    **{k: timezone(timedelta(hours=h), k) for k, h in (("CET", 1), ("CEST", 2))},
    "ET": ZoneInfo("America/New_York"),
    "CT": ZoneInfo("America/Chicago"),
    "MT": ZoneInfo("America/Denver"),
    "PT": ZoneInfo("America/Los_Angeles"),
}
_RELATIVE = re.compile(
    r"\b(?:ago|yesterday|today|tonight|tomorrow|now|"
    r"(?:last|next|this)\s+(?:\w+day|week|month|year|hour|minute))\b|^in\s+\d+\s+\w+$",
    re.I,
)
_RFC2822 = re.compile(r"(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?\s+\S+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LABEL = re.compile(r"^(?:published|updated|last updated|posted|date)\s*(?:on|:)?\s*", re.I)
_OFFSET_NAME = re.compile(r"\b(?:UTC|GMT)\s*(?=[+-]\d)")  # "GMT+3" -> "+3" (dateutil inverts the sign)
_DEFAULTS = (datetime(1, 1, 1), datetime(4, 2, 2))  # two different fill-ins reveal a missing part


class _UnknownZone(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _zone(name: str | None, offset: int | None) -> tzinfo | None:
    """dateutil's callback for a zone it found: our table only, never the machine's local zone."""
    if name is None:
        return None if offset is None else timezone(timedelta(seconds=offset))
    found = _ZONES.get(name.upper())
    if found is None:
        raise _UnknownZone(name)
    return found


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # naive: documented as UTC (module docstring)
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


def _exact(text: str) -> str:
    """ISO 8601 or RFC 2822 with a zone: the formats feeds and APIs write; "" when neither."""
    iso = re.sub(r"\s+(?:UTC|GMT)$", "Z", text) if re.match(r"\d{4}-", text) else text
    try:
        return _iso(datetime.fromisoformat(iso))
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across midnight
        pass
    if _RFC2822.fullmatch(text):
        try:
            dt = parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            return ""
        if dt.tzinfo is not None:  # naive here means a zone email.utils does not know: dateutil decides
            try:
                return _iso(dt)
            except (ValueError, OverflowError):
                return ""
    return ""


def _clean(text: str) -> str:
    """What real exports put around a timestamp, removed: dashes, "at", "@", "|", "p.m.", labels."""
    text = _LABEL.sub("", text)
    text = re.sub(r"[\u2012-\u2015|@]", " ", text)
    text = re.sub(r"\b([ap])\.m\.", r"\1m", text, flags=re.I)
    text = re.sub(r"\(([A-Za-z]{1,5})\)", r"\1", text)  # "3:33 PM (EST)"
    return " ".join(_OFFSET_NAME.sub("", text).split())


@lru_cache(maxsize=16384)
def _free_text(text: str) -> tuple[str, str]:
    """(timestamp, "") or ("", kind) for text the exact readers could not read."""
    if _RELATIVE.search(text):
        return "", RELATIVE
    cleaned = _clean(text)
    try:
        first = dateutil_parser.parse(cleaned, default=_DEFAULTS[0], tzinfos=_zone)
        if first.year == _DEFAULTS[0].year:
            return "", INCOMPLETE
        if first.month == _DEFAULTS[0].month or first.day == _DEFAULTS[0].day:
            # the month or day may be the fill-in: a second fill-in shows whether it is
            if dateutil_parser.parse(cleaned, default=_DEFAULTS[1], tzinfos=_zone) != first:
                return "", INCOMPLETE
        return _iso(first), ""
    except _UnknownZone:
        return "", UNKNOWN_ZONE
    except Exception:  # dateutil on arbitrary text raises ParserError, OverflowError, TypeError, ...
        return "", UNREADABLE


def read_date(value: object) -> tuple[str, str]:
    """(`YYYY-MM-DDTHH:MM:SSZ`, "") for a readable point in time, else ("", kind: NO_DATE, ...)."""
    if value is None or isinstance(value, bool):
        return "", NO_DATE
    try:
        if isinstance(value, int | float):
            return _iso(_epoch(float(value))), ""
        text = str(value).strip()
        if not text:
            return "", NO_DATE
        if _NUMBER.fullmatch(text):
            return _iso(_epoch(float(text))), ""
    except (ValueError, OverflowError, OSError):
        return "", UNREADABLE
    if len(text) > _MAX_LEN:
        return "", UNREADABLE
    exact = _exact(text)
    return (exact, "") if exact else _free_text(text)


def utc_iso(value: object) -> str:
    """Any supported timestamp -> `YYYY-MM-DDTHH:MM:SSZ`; "" when it cannot be read."""
    return read_date(value)[0]
