"""Typed records that flow between stages: documents -> passages, and financial facts.

Kept dependency-free (dataclasses only) so every package can import them cheaply.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


def digest(text: str | bytes, n: int = 16) -> str:
    """Short, stable content hash used for ids and audit digests (sha256, hex, n chars)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:n]


@dataclass(frozen=True)
class Section:
    """A titled span of a document, e.g. 10-K "Item 1A. Risk Factors"."""

    key: str  # stable key: "1", "1A", "7" for filings; "article" / "body" elsewhere
    title: str  # human title as printed in the document
    text: str  # plain text, paragraphs separated by blank lines
    page: int = -1  # 0-based PDF page the section lies on (PDF sections never span pages); -1: not paged


@dataclass(frozen=True)
class Document:
    """One source document after parsing, before chunking."""

    doc_id: str  # "<corpus>:<file name>" etc.; unique within a corpus
    corpus: str  # "filings" | "news" | "wikipedia"
    ticker: str  # upper-case; "" for general (non-company) documents
    source: str  # "sec" | "news" | "wikipedia"
    form: str  # "10-K", "10-Q", "news", "wiki"
    date: str  # ISO date (filing date, publication date; an 8-K's event date); "" if unknown
    title: str
    url: str
    sections: list[Section]
    content_digest: str  # digest of the raw input file/record, for incremental ingest and audit
    path: str = ""  # input file the document came from (for error messages and audit)
    # When it became public, where that differs from `date`: an 8-K is dated by its event but was
    # filed up to four business days later, and a point-in-time report must not see it before then.
    filed: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrievable chunk with everything needed to cite it."""

    passage_id: str  # digest of (doc_id, section, text): same text -> same id -> never added twice
    doc_id: str
    corpus: str
    ticker: str
    source: str
    form: str
    date: str
    section: str  # section title, e.g. "Item 1A. Risk Factors"
    title: str  # document title
    url: str
    text: str
    ordinal: int = 0  # position within the document, keeps reading order
    page: int = -1  # 0-based PDF page (FinanceBench's evidence_page_num); -1 for unpaged sources
    filed: str = ""  # Document.filed: public from this date ("" = from `date`)

    def to_row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Fact:
    """One reported XBRL value for a standard statement line and fiscal period."""

    ticker: str
    line: str  # standard line: "revenue", "net_income", "eps_diluted", ...
    concept: (
        str  # XBRL concept actually used, e.g. "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax"
    )
    value: float  # in `unit`, fully scaled (USD, not millions)
    unit: str  # "USD", "USD/shares", "shares"
    fiscal_year: int
    period_start: str  # ISO date; "" for instants
    period_end: str
    form: str  # form that reported it ("10-K")
    filed: str  # filing date (ISO) or ""
    accession: str  # accession number or source file name
    source: str  # "companyfacts" | "inline-xbrl"
    extra: dict = field(default_factory=dict)
