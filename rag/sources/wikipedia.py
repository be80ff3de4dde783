"""Wikipedia articles (JSON lines: ticker, company_name, wiki_title_used, clean_text).

Company articles are tagged with their ticker; background articles (ticker "") are general and
retrievable for every report. Disambiguation pages are skipped: they describe rivers and myths,
not the company, and would poison retrieval (the S&P 500 dump resolves "Amazon" to one).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import quote

from rag.errors import SourceError
from rag.sources import SourceSpec, register
from rag.types import Document, Section, digest

_DISAMBIGUATION_MARKERS = ("may refer to:", "most often refers to:", "may also refer to:")


def is_disambiguation(text: str) -> bool:
    head = text[:600].lower()
    return any(marker in head for marker in _DISAMBIGUATION_MARKERS)


def parse_wikipedia_jsonl(path: Path) -> list[Document]:
    """One Document per usable article; raises SourceError if the file cannot be read at all."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        lines = raw.decode("utf-8").splitlines()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read Wikipedia JSONL ({exc})") from exc

    docs: list[Document] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            page = json.loads(line)
            title = str(page["wiki_title_used"])
            text = str(page.get("clean_text") or page.get("raw_text") or "").strip()
        except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:  # deep nesting: fuzz
            raise SourceError(f"{path}:{lineno}: not a Wikipedia page record ({exc})") from exc
        if not text or is_disambiguation(text):
            continue
        ticker = str(page.get("ticker") or "").upper()
        docs.append(
            Document(
                doc_id=f"wikipedia:{title}",
                corpus="wikipedia",
                ticker=ticker,
                source="wikipedia",
                form="wiki",
                date="",
                title=f"Wikipedia: {title}",
                url="https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_")),
                sections=[Section(key="article", title=title, text=text)],
                content_digest=digest(text),
                path=str(path),
            )
        )
    if not docs:
        raise SourceError(f"{path}: no usable Wikipedia articles")
    return docs


register(
    SourceSpec(
        name="wikipedia",
        corpus="wikipedia",
        patterns=("wikipedia/*.jsonl", "wikipedia/*.jsonl.gz"),
        parse=parse_wikipedia_jsonl,
    )
)
