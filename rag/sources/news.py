"""News articles from the shipped CSV format (one file per ticker: `news/<TICKER>.csv[.gz]`).

Columns: `title, published` (epoch milliseconds, UTC), `descriptionText` (body or excerpt),
`storyPath` (link). The file name gives the ticker. Duplicate articles (same link, or same title)
are kept once: aggregators repeat wire stories.
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

from rag.errors import SourceError
from rag.sources import SourceSpec, register
from rag.types import Document, Section, digest

REQUIRED_COLUMNS = {"title", "published", "descriptionText", "storyPath"}


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"{path}: cannot read news file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _iso_utc(epoch_ms: str) -> str:
    try:
        return datetime.fromtimestamp(int(float(epoch_ms)) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return ""


def parse_news_csv(path: Path) -> list[Document]:
    """One Document per distinct article; raises SourceError for unreadable or malformed files."""
    ticker = path.name.split(".")[0].upper()
    text = _read_text(path)
    try:
        reader = csv.DictReader(io.StringIO(text))
        columns = set(reader.fieldnames or [])
        if not REQUIRED_COLUMNS <= columns:
            missing = ", ".join(sorted(REQUIRED_COLUMNS - columns))
            raise SourceError(f"{path}: not a news CSV, missing columns: {missing}")
        rows = list(reader)
    except csv.Error as exc:
        raise SourceError(f"{path}: malformed CSV ({exc})") from exc
    if not rows:
        raise SourceError(f"{path}: news CSV has a header but no articles")

    docs: list[Document] = []
    seen: set[str] = set()
    for row in rows:
        title = (row.get("title") or "").strip()
        url = (row.get("storyPath") or "").strip()
        body = (row.get("descriptionText") or "").strip()
        if not title and not body:
            continue
        keys = {k for k in (url, title.lower()) if k}
        if keys & seen:
            continue
        seen |= keys
        when = _iso_utc(row.get("published") or "")
        docs.append(
            Document(
                doc_id=f"news:{ticker}:{digest(url or title)}",
                corpus="news",
                ticker=ticker,
                source="news",
                form="news",
                date=when,
                title=title,
                url=url,
                # the title carries most of the signal for short excerpts, so it is part of the text
                sections=[Section(key="body", title="News", text=f"{title}. {body}" if body else title)],
                content_digest=digest(f"{title}\n{when}\n{url}\n{body}"),
                path=str(path),
            )
        )
    return docs


register(
    SourceSpec(name="news", corpus="news", patterns=("news/*.csv", "news/*.csv.gz"), parse=parse_news_csv)
)
