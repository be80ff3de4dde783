"""Documents -> passages sized for the embedder and for a 2,048-token prompt.

all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops the rest. Prose runs ~1.3
pieces per word, so passages are capped at 160 words; tables of numbers run up to 2.5 (`$(1,234)`
is 6 pieces), so passages are also capped at an estimated MAX_TOKENS pieces: at 160 words alone
180 of 2,594 passages of the shipped filings (7%) lost their tail to truncation. Passages
never cross a section boundary (a Risk Factors chunk must not carry Legal Proceedings text), and
they break at sentence or table-row boundaries, with one sentence of overlap for continuity.
"""

from __future__ import annotations

import re

from rag.types import Document, Passage, digest

MAX_WORDS = 160
# Estimated word pieces (see estimate_tokens). On the shipped filings the real count is 1.00-1.39x
# the estimate (median 1.07x): 198 keeps every passage within the embedder's 256 (bench/ingest.py
# reports the distribution).
MAX_TOKENS = 198
MIN_WORDS = 8  # fragments shorter than this (page numbers, lone headings) carry no retrievable meaning

_PIECES = re.compile(r"\w+|[^\w\s]")
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


def estimate_tokens(text: str) -> int:
    """Word pieces a BERT tokenizer makes, estimated without one: words plus punctuation marks.

    BERT splits at every punctuation mark, so "$(1,234)" is 6 pieces; rare words split further,
    which the MAX_TOKENS margin absorbs. Additive over units joined by spaces.
    """
    return len(_PIECES.findall(text))


def _size(unit: str) -> tuple[int, int]:
    return len(unit.split()), estimate_tokens(unit)


def _hard_split(unit: str, max_words: int, max_tokens: int = MAX_TOKENS) -> list[str]:
    """A unit over either budget (a long table row, a run-on sentence) cut at word boundaries."""
    pieces: list[str] = []
    current: list[str] = []
    words = tokens = 0
    for word in unit.split():
        t = estimate_tokens(word)
        if current and (words + 1 > max_words or tokens + t > max_tokens):
            pieces.append(" ".join(current))
            current, words, tokens = [], 0, 0
        current.append(word)
        words, tokens = words + 1, tokens + t
    if current:
        pieces.append(" ".join(current))
    return pieces


def pack(
    units: list[str], max_words: int = MAX_WORDS, overlap: int = 1, max_tokens: int = MAX_TOKENS
) -> list[str]:
    """Greedy packing of units into chunks within max_words and max_tokens, repeating `overlap` units."""
    expanded: list[str] = []
    for unit in units:
        words, tokens = _size(unit)
        too_big = words > max_words or tokens > max_tokens
        expanded.extend(_hard_split(unit, max_words, max_tokens) if too_big else [unit])
    chunks: list[str] = []
    current: list[str] = []
    count = tokens = 0
    for unit in expanded:
        n, t = _size(unit)
        if current and (count + n > max_words or tokens + t > max_tokens):
            chunks.append(" ".join(current))
            keep = current[-overlap:] if overlap else []
            kept = [_size(u) for u in keep]
            count, tokens = sum(w for w, _ in kept), sum(k for _, k in kept)
            if count + n > max_words or tokens + t > max_tokens:
                keep, count, tokens = [], 0, 0
            current = list(keep)
        current.append(unit)
        count, tokens = count + n, tokens + t
    if current:
        chunks.append(" ".join(current))
    return chunks


def chunk_document(doc: Document, max_words: int = MAX_WORDS, max_tokens: int = MAX_TOKENS) -> list[Passage]:
    """Split every section of a document into citeable passages, in reading order."""
    passages: list[Passage] = []
    for section in doc.sections:
        for text in pack(split_units(section.text), max_words=max_words, max_tokens=max_tokens):
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
