"""News articles from CSV, JSON / JSON Lines and RSS / Atom files under `news/` -> Documents.

Formats (optionally gzipped, `.gz`):
- CSV `news/*.csv`: a header row naming the columns. The shipped format is `title, published`
  (epoch ms), `descriptionText`, `storyPath`; any export with the usual names works too: title or
  headline; published / date / datetime / pubDate / time / timestamp (epoch s or ms, ISO 8601,
  RFC 2822); url / link; body / summary / description / text / content; optional ticker /
  tickers / symbols. Header names are matched ignoring case, `_`, `-` and spaces.
- JSON `news/*.json`, `*.jsonl`, `*.ndjson`: a list of article objects, an object holding one
  (`{"articles": [...]}`, also `items`/`results`/`data`/`news`/`entries`), or one object per line;
  same field names as CSV (`publishedAt`, `published_utc`, `article_url` included).
- RSS 2.0 / Atom `news/*.xml`, `*.rss`, `*.atom`, read by feedparser from the local file only.

Every article gets a UTC timestamp (`2025-04-30T13:05:00Z`; naive times are taken as UTC; free-text
dates like "January 25, 2024 — 03:33 am EST" and US zone names are read by `news_dates.py`), the
same story is kept once (normalised link, near-duplicate title: `news_dedup.py`), and it is tagged
with the tickers it is about (`news_tickers.py`): the file name's ticker for per-ticker files,
else the record's ticker field, cashtags or company names. An article about several companies
becomes one Document per ticker (same text, `doc_id` `news:<TICKER>:<digest>`), so the per-ticker
retrieval filter needs no change and each company's report can cite it.

Bad input: a record without a real title or body (empty, or placeholders like "0", "null" and
paywall lines: `news_fields.py`), without a readable absolute date (news is used point in time, and
an undated article would pass every `--as-of` filter; "2 hours ago" is no date in a stored file), a
malformed JSON line, or an article in a feed that names no known ticker is dropped and reported
through `skipped(...)`; a placeholder body under a real title is dropped and counted, the headline
kept. The first drops are noted one by one, then counted per reason (`news_notes.py`). A file with
no usable article at all (empty, header only, not news, every row dropped) raises SourceError naming
the file, what most rows failed on and the fix. Text is read as UTF-8, or as Windows-1252 with a
note when it is not UTF-8 (spreadsheet exports); anything else is refused with a SourceError.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from rag.errors import SourceError
from rag.sources import SourceSpec, register, skipped
from rag.sources.html_text import decompress, read_raw
from rag.sources.news_dedup import dedup
from rag.sources.news_fields import BODY_KEYS, DATE_KEYS, TITLE_KEYS, Article, norm_key, read_record
from rag.sources.news_notes import Notes, plural
from rag.sources.news_tickers import Tagger, canonical_ticker, file_ticker, load_catalog
from rag.types import Document, Section, digest

_LIST_KEYS = ("articles", "items", "results", "data", "news", "entries", "feed")
Record = tuple[str, dict[str, object]]  # ("row 3", fields with normalised keys)


def _decode(raw: bytes, path: Path) -> str:
    if b"\x00" in raw:
        raise SourceError(f"{path}: not UTF-8 text (NUL bytes: binary or UTF-16; save it as UTF-8)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = f"{exc.reason} at byte {exc.start}"
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path}: not UTF-8 text ({utf8_error}) nor Windows-1252 ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8"
        ) from exc
    skipped(f"not UTF-8 ({utf8_error}): read as Windows-1252; save it as UTF-8 if accents look wrong")
    return text


def _keyed(pairs: Iterable[tuple[object, object]]) -> dict[str, object]:
    """Normalised field names; when two columns normalise alike, the first non-empty value wins."""
    out: dict[str, object] = {}
    for k, v in pairs:
        key = norm_key(k)
        if key not in out or out[key] in (None, ""):
            out[key] = v
    return out


def _csv_records(raw: bytes, path: Path, notes: Notes) -> list[Record]:
    reader = csv.reader(io.StringIO(_decode(raw, path), newline=""))
    try:
        header = next((h for h in reader if any(c.strip() for c in h)), None)
    except csv.Error as exc:
        raise SourceError(f"{path}: malformed CSV header ({exc})") from exc
    if header is None:
        raise SourceError(f"{path}: no articles (empty file)")
    keys = [norm_key(h) for h in header]
    missing = []
    if not set(keys) & set(TITLE_KEYS + BODY_KEYS):
        missing.append("a title or body column (title, headline, body, summary, description, text)")
    if not set(keys) & set(DATE_KEYS):
        missing.append("a date column (published, date, datetime, pubDate, time, timestamp)")
    if missing:
        found = ", ".join(h for h in header if h.strip())[:200]
        raise SourceError(f"{path}: not a news CSV, missing columns: {' and '.join(missing)}; found: {found}")
    records: list[Record] = []
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's size limit (a 50 MB line)
            # stop here: past a broken quoted field the next "rows" would be pieces of it
            why = f"malformed CSV ({exc})"
            notes.add(f"row {n + 1}: {why}; the rest of the file was not read", kind=why)
            break
        if not any(c.strip() for c in row):
            continue
        n += 1
        records.append((f"row {n}", _keyed(zip(keys, row, strict=False))))
    if not records:  # say why when a malformed row stopped the reading, not only "no articles"
        raise SourceError(f"{path}: news CSV has a header but no articles{notes.unusable()}")
    return records


def _json_items(data: object, path: Path) -> list[object]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        keyed = _keyed(data.items())
        for key in _LIST_KEYS:
            found = keyed.get(key)
            if isinstance(found, list):
                return found
        if set(keyed) & set(TITLE_KEYS + BODY_KEYS):
            return [data]
    raise SourceError(
        f'{path}: JSON holds no list of articles (expected a list, JSON lines, or {{"articles": [...]}})'
    )


def _json_lines(text: str, notes: Notes) -> list[tuple[int, object]]:
    items: list[tuple[int, object]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append((lineno, json.loads(line)))
            except (ValueError, RecursionError) as exc:
                notes.add(f"line {lineno}: not JSON ({str(exc)[:80]})")
    return items


def _salvage_array(text: str, path: Path, error: str, notes: Notes) -> list[tuple[int, object]]:
    """The whole records of a JSON array cut short (an interrupted download): decode item by item
    from the first `[{` up to where the text stops being JSON."""
    start = next((i for i, c in enumerate(text) if c == "[" and text[i + 1 : i + 2].strip() in ("{", "")), -1)
    if start < 0:
        raise SourceError(f"{path}: not JSON ({error})")
    decoder = json.JSONDecoder()
    items: list[tuple[int, object]] = []
    pos = start + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            notes.add(f"item {len(items) + 1}: file ends or stops being JSON here ({error}); rest skipped")
            break
        items.append((len(items) + 1, obj))
    return items


def _json_records(raw: bytes, path: Path, notes: Notes) -> list[Record]:
    text = _decode(raw, path).strip()
    if not text:
        raise SourceError(f"{path}: no articles (empty file)")
    label = "item"
    try:
        numbered = list(enumerate(_json_items(json.loads(text), path), start=1))
    except (ValueError, RecursionError) as exc:
        first = text.splitlines()[0].strip()
        try:
            is_lines = first.startswith("{") and isinstance(json.loads(first), dict)
        except (ValueError, RecursionError):
            is_lines = False
        if is_lines:  # JSON Lines: one article object per line
            numbered, label = _json_lines(text, notes), "line"
        else:
            numbered = _salvage_array(text, path, str(exc)[:80], notes)
    records: list[Record] = []
    for n, item in numbered:
        if isinstance(item, dict):
            records.append((f"{label} {n}", _keyed(item.items())))
        else:
            notes.add(f"{label} {n}: not an article object ({type(item).__name__})")
    return records


def _feed_records(raw: bytes, path: Path, notes: Notes) -> list[Record]:
    import feedparser  # late: only feeds need it

    try:
        parsed = feedparser.parse(raw)  # bytes are parsed as content, never fetched as a URL
    except Exception as exc:  # parser failures on arbitrary bytes share no common type
        raise SourceError(f"{path}: cannot parse feed ({type(exc).__name__}: {exc})") from exc
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.entries:
        why = f" (not RSS/Atom: {str(problem)[:120]})" if problem else ""
        raise SourceError(f"{path}: no articles in feed{why}")
    if problem:
        skipped(f"feed is not well-formed ({str(problem)[:120]}); read {len(parsed.entries)} entries")
    records: list[Record] = []
    for n, entry in enumerate(parsed.entries, start=1):
        # UTC struct_time; `in` first: feedparser warns when published_* silently falls back to updated_*
        pub = "published" if "published_parsed" in entry or "published" in entry else "updated"
        when = entry.get(f"{pub}_parsed")
        record = {
            "title": entry.get("title"),
            "link": entry.get("link"),
            "summary": entry.get("summary"),
            "content": [c.get("value") for c in entry.get("content", []) if isinstance(c, dict)],
            "date": calendar.timegm(when) if when else entry.get(pub),
        }
        records.append((f"entry {n}", record))
    return records


def _document(art: Article, ticker: str, path: Path) -> Document:
    key = art.url or art.title or art.body
    return Document(
        doc_id=f"news:{ticker}:{digest(key)}",
        corpus="news",
        ticker=ticker,
        source="news",
        form="news",
        date=art.date,
        title=art.title,
        url=art.url,
        # the title carries most of the signal for short excerpts, so it is part of the text
        sections=[Section(key="body", title="News", text=". ".join(t for t in (art.title, art.body) if t))],
        content_digest=digest(f"{art.title}\n{art.date}\n{art.url}\n{art.body}"),
        path=str(path),
    )


def parse_news(path: Path, read_records: Callable[[bytes, Path, Notes], list[Record]]) -> list[Document]:
    """One Document per distinct article and ticker; SourceError when the file has no usable article."""
    path = Path(path)
    raw = decompress(read_raw(path), path)
    data_dir = path.parent.parent  # files live in <data dir>/news/
    known = load_catalog(data_dir, path)
    ticker = file_ticker(path, known)
    notes = Notes()
    articles: list[Article] = []
    for n, (where, record) in enumerate(read_records(raw, path, notes), start=1):
        reading = read_record(n, record)
        if reading.article is None:
            notes.add(f"{where}: {reading.problem}", reading.kind, reading.value)
        else:
            notes.kept(where, reading.stripped)
            articles.append(reading.article)
    if not articles:
        raise SourceError(f"{path}: no articles{notes.unusable()}")
    notes.close()
    kept, _ = dedup(articles)
    tagger = None if ticker else Tagger.for_data_dir(data_dir, known)
    docs: list[Document] = []
    untagged = 0
    for art in kept:
        tickers: tuple[str, ...] = (ticker,)
        if tagger is not None:
            own = tuple(dict.fromkeys(t for t in (canonical_ticker(x, known) for x in art.tickers) if t))
            tickers = own or tagger.tag(f"{art.title}\n{art.body}")
        untagged += not tickers
        docs.extend(_document(art, t, path) for t in tickers)
    if not docs:
        dropped = f"; {plural(notes.count, notes.label)} dropped: {notes.summary()}" if notes.count else ""
        raise SourceError(
            f"{path}: no article names a known ticker ({plural(len(kept), 'article')} read{dropped}); add a "
            "ticker column, or name the file <TICKER>.csv/.json/.xml when it is about one company"
        )
    if untagged:
        skipped(
            f"{untagged} of {len(kept)} articles name no known ticker "
            "(ticker field, cashtag, company name): not indexed"
        )
    return docs


def parse_news_csv(path: Path) -> list[Document]:
    return parse_news(path, _csv_records)


def parse_news_json(path: Path) -> list[Document]:
    return parse_news(path, _json_records)


def parse_news_feed(path: Path) -> list[Document]:
    return parse_news(path, _feed_records)


def _patterns(*suffixes: str) -> tuple[str, ...]:
    return tuple(f"news/*{s}{gz}" for s in suffixes for gz in ("", ".gz"))


register(SourceSpec(name="news", corpus="news", patterns=_patterns(".csv"), parse=parse_news_csv))
register(
    SourceSpec(
        name="news-json",
        corpus="news",
        patterns=_patterns(".json", ".jsonl", ".ndjson"),
        parse=parse_news_json,
    )
)
register(
    SourceSpec(
        name="news-feed", corpus="news", patterns=_patterns(".xml", ".rss", ".atom"), parse=parse_news_feed
    )
)
