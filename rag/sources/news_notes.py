"""Drop notes for one news file: the first records one by one, then counts per reason.

A 10,000-row export with a bad date column must not put 10,000 lines in the ingest summary, and a
file that gives nothing must say what most of its rows failed on (and the fix), not the last check
that happened to run. Kinds come from `news_fields.read_record` and `news_dates.read_date`.
"""

from __future__ import annotations

from rag.sources import skipped
from rag.sources.news_dates import INCOMPLETE, NO_DATE, RELATIVE, UNKNOWN_ZONE, UNREADABLE

MAX_NOTES = 20  # dropped records noted one by one per file; past that, one line counts them per reason
_PLURAL = {  # a drop kind (news_fields / news_dates) -> how a count of them reads: "148 unreadable dates"
    NO_DATE: "without a date",
    UNREADABLE: "unreadable dates",
    RELATIVE: "relative dates (not a point in time)",
    INCOMPLETE: "incomplete dates (no year, month or day)",
    UNKNOWN_ZONE: "dates in an unknown time zone",
    "no title and no body": "with no title and no body",
    "placeholder body and no title": "placeholder bodies and no title",
    "boilerplate-only body and no title": "boilerplate-only bodies and no title",
    "placeholder title and no body": "placeholder titles and no body",
    "boilerplate-only title and no body": "boilerplate-only titles and no body",
}
_DATE_FIX = "write dates as ISO 8601 with a zone (2024-01-25T08:33:00Z), RFC 2822 or epoch seconds/ms"
_FIXES = {  # the fix named in the SourceError when most records of an unusable file failed this way
    NO_DATE: "fill the date column (published, date, pubDate, timestamp)",
    UNREADABLE: _DATE_FIX,
    INCOMPLETE: _DATE_FIX,
    RELATIVE: "export absolute dates (ISO 8601, RFC 2822 or epoch), not '2 hours ago'",
    UNKNOWN_ZONE: "write a UTC offset (-05:00) instead of the zone name, or add it to news_dates._ZONES",
    "no title and no body": "the title and body columns are empty",
    "placeholder body and no title": "the title and body columns hold placeholders, not text",
    "boilerplate-only body and no title": "the body column holds paywall or link text, not the article",
}


def plural(n: int, word: str) -> str:
    """`1 row`, `2 rows`, `3 entries`."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else f"{n} {word}s"


class Notes:
    """What was dropped from one file and why, for ingest's summary, without one line per record.

    The first MAX_NOTES dropped records are noted one by one ("row 3: no date"); past that, one line
    counts all drops per reason ("868 rows dropped in all ...: 720 placeholder bodies and no title
    (first: row 2: '0'), 148 unreadable dates (first: ...)"). A kept article whose body or title was a
    placeholder is counted per reason only ("720 rows with placeholder body '0' (title kept)").
    """

    def __init__(self) -> None:
        self.count = 0
        self.label = ""  # what the file's records are called: "row", "line", "item", "entry"
        self.counts: dict[str, int] = {}  # drop kind -> records dropped so
        self.first: dict[str, str] = {}  # drop kind -> its first example ("row 2: '0'")
        self.stripped: dict[tuple[str, str], int] = {}  # (what, value key) -> kept articles it hit
        self.stripped_first: dict[tuple[str, str], tuple[str, str]] = {}  # -> (first value, label)

    def add(self, note: str, kind: str = "", value: str = "") -> None:
        """A dropped record: `note` is "<where>: <why>", `kind` groups it (default: the why)."""
        where, _, why = note.partition(": ")
        self.label = self.label or where.split(" ")[0]
        self.count += 1
        key = kind or why.split(" (")[0]
        self.counts[key] = self.counts.get(key, 0) + 1
        self.first.setdefault(key, f"{where}: {value!r}" if value else where)
        if self.count <= MAX_NOTES:
            skipped(note)

    def kept(self, where: str, stripped: tuple[tuple[str, str], ...]) -> None:
        """A kept article lost its body or title (a placeholder, boilerplate): counted, not listed."""
        for what, value in stripped:
            # placeholders are few and told apart by value; boilerplate texts vary and are one group
            key = (what, value.lower() if what.startswith("placeholder") else "")
            self.stripped[key] = self.stripped.get(key, 0) + 1
            self.stripped_first.setdefault(key, (value, where.split(" ")[0]))

    def summary(self) -> str:
        """Drops per reason, most common first: "720 placeholder bodies and no title (first: ...), ..."."""
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{n} {_PLURAL.get(k, k)} (first: {self.first[k]})" for k, n in ranked)

    def unusable(self) -> str:
        """Why a file gave no article, with the fix for the reason most of its records failed on."""
        if not self.count:
            return ""
        top = max(self.counts.items(), key=lambda kv: kv[1])[0]
        fix = f"; {_FIXES[top]}" if top in _FIXES else ""
        return f": all {plural(self.count, self.label)} dropped: {self.summary()}{fix}"

    def close(self) -> None:
        """The per-reason lines for the ingest summary, once the file is read."""
        if self.count > MAX_NOTES:
            head = f"{plural(self.count, self.label)} dropped in all, the first {MAX_NOTES} listed"
            skipped(f"{head}: {self.summary()}")
        for key, n in self.stripped.items():
            what, by_value = key
            value, label = self.stripped_first[key]
            shown = f"{value[:60]!r}" if by_value else f"(first: {value[:60]!r})"
            kept = "body kept" if what.endswith("title") else "title kept"
            skipped(f"{plural(n, label)} with {what} {shown} ({kept})")
