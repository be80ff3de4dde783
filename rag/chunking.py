"""Documents -> passages sized for the embedder and for a 2,048-token prompt.

all-MiniLM-L6-v2 reads at most 256 word pieces; financial text runs ~1.3 pieces per word, so
passages are capped near 160 words to keep the whole passage visible to the embedder. Passages
never cross a section boundary (a Risk Factors chunk must not carry Legal Proceedings text), and
they break at sentence or table-row boundaries, with one sentence of overlap for continuity.
"""

from __future__ import annotations

import re

from rag.types import Document, Passage, digest

MAX_WORDS = 160
MIN_WORDS = 8  # fragments shorter than this (page numbers, lone headings) carry no retrievable meaning

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$])")


def split_units(text: str) -> list[str]:
    """Sentences of prose paragraphs, whole rows of tables (lines holding ' | ')."""
    units: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if " | " in para:
            units.extend(line.strip() for line in para.splitlines() if line.strip())
            continue
        flat = " ".join(para.split())
        units.extend(s.strip() for s in _SENTENCE_END.split(flat) if s.strip())
    return units


def _hard_split(unit: str, max_words: int) -> list[str]:
    words = unit.split()
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]


def pack(units: list[str], max_words: int = MAX_WORDS, overlap: int = 1) -> list[str]:
    """Greedy packing of units into chunks of at most max_words, repeating `overlap` units."""
    expanded: list[str] = []
    for unit in units:
        expanded.extend(_hard_split(unit, max_words) if len(unit.split()) > max_words else [unit])
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for unit in expanded:
        n = len(unit.split())
        if current and count + n > max_words:
            chunks.append(" ".join(current))
            keep = current[-overlap:] if overlap else []
            if sum(len(u.split()) for u in keep) + n > max_words:
                keep = []
            current, count = list(keep), sum(len(u.split()) for u in keep)
        current.append(unit)
        count += n
    if current:
        chunks.append(" ".join(current))
    return chunks


def chunk_document(doc: Document, max_words: int = MAX_WORDS) -> list[Passage]:
    """Split every section of a document into citeable passages, in reading order."""
    passages: list[Passage] = []
    for section in doc.sections:
        for text in pack(split_units(section.text), max_words=max_words):
            if len(text.split()) < MIN_WORDS and len(doc.sections) > 1:
                continue
            passages.append(
                Passage(
                    passage_id=digest(f"{doc.doc_id}\n{section.key}\n{text}"),
                    doc_id=doc.doc_id,
                    corpus=doc.corpus,
                    ticker=doc.ticker,
                    source=doc.source,
                    form=doc.form,
                    date=doc.date,
                    section=section.title,
                    title=doc.title,
                    url=doc.url,
                    text=text,
                    ordinal=len(passages),
                    page=section.page,  # sections never span pages, so neither do passages
                )
            )
    return passages
