"""PDF filings (FinanceBench format) -> one Document whose sections never span a page.

Where they live: `<data_dir>/sec/pdf/*.pdf`, with an optional sidecar `documents.jsonl` in the
same folder (or its parent, as FinanceBench ships it: `pdfs/` next to `documents.jsonl`), one
JSON object per PDF keyed by `doc_name` (the file name without `.pdf`). Used fields: `ticker`
(our extension; FinanceBench has none), `company`, `doc_type` ("10k", "10q", "8k", "earnings"),
`doc_period` (2023), `date` (ISO, our extension), `doc_link` (cited URL). Without a sidecar row,
the file name says it: `AMCOR_2023_10K.pdf`, `Pfizer_2023Q2_10Q.pdf` -> ticker AMCOR / PFIZER,
period, form. FinanceBench names carry company names, not tickers: add `"ticker": "AMCR"` to the
sidecar (or name the file `AMCR_2023_10K.pdf`) so reports for that ticker find the filing.

Page-aware because citations and evaluation point at pages (FinanceBench's `evidence_page_num`
is 0-based into the PDF): every Section carries its 0-based page and a title like
"Item 8. Financial Statements and Supplementary Data, PDF page 52" (1-based, as PDF viewers
count), so the section filters that keep 10-K Items apart work on PDFs too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag.errors import SourceError
from rag.sources import SourceSpec, register, skipped
from rag.sources.html_text import read_raw
from rag.sources.pdf_text import lines_to_text, page_lines
from rag.types import Document, Section, digest

SIDECAR = "documents.jsonl"
_NAME_RE = re.compile(
    r"^(?P<ticker>[A-Za-z0-9.&-]+?)_(?P<period>\d{4}(?:Q[1-4])?)_(?P<form>[A-Za-z0-9-]+)", re.I
)
_FORMS = {"10K": "10-K", "10Q": "10-Q", "8K": "8-K", "EARNINGS": "Earnings"}

# "Item 7. Management's Discussion...", "ITEM 1A. RISK FACTORS", "Item 1. - Business"; the title
# must start upper-case so a wrapped cross reference ("Item 8 of this Annual Report") is not one.
_ITEM_RE = re.compile(
    r"^item\s*(\d{1,2})\s*([a-c])?(?![a-z0-9])\s*[.:]?\s*(?:[-\u2013\u2014:.]\s*)?(.*)$", re.I
)
_PART_RE = re.compile(r"^part\s+(iv|i{1,3})(?![a-z])\s*[.:\-\u2013\u2014]?\s*(.*)$", re.I)
_TOC_PAGE_REF = re.compile(r"\s(\d{1,3}|page)$", re.I)  # "Item 1A. Risk Factors 14" is a TOC entry
_PARTS = ("I", "II", "III", "IV")
_BLOCK_END = (".", ":", ";", "!", "?", ")", '"', "\u201d")
_CONNECTORS = {"OF", "AND", "THE", "IN", "FOR", "TO", "ON", "WITH", "OR", "ABOUT", "REGARDING"}


@dataclass(frozen=True)
class PdfMeta:
    ticker: str
    company: str
    form: str  # "10-K", "10-Q", "8-K", "Earnings", or "" when unknown
    period: str  # "2023", "2023Q2"
    date: str  # ISO filing date when the sidecar gives one, else the fiscal year ("2023")
    url: str


@cache
def _sidecar(folder: Path, mtime: float) -> dict[str, dict]:
    """doc_name -> row of `folder/documents.jsonl` (bad lines are reported and skipped)."""
    rows: dict[str, dict] = {}
    path = folder / SIDECAR
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[str(row["doc_name"])] = row
        except (ValueError, KeyError, TypeError):
            skipped(f"{path} line {n}: not a JSON object with doc_name; ignored")
    return rows


def sidecar_row(path: Path) -> dict:
    """The sidecar row describing this PDF, from its folder or the parent folder; {} if none."""
    for folder in (path.parent, path.parent.parent):
        side = folder / SIDECAR
        if side.is_file():
            row = _sidecar(folder, side.stat().st_mtime).get(path.stem)
            if row is not None:
                return row
    return {}


def pdf_meta(path: Path) -> PdfMeta:
    row = sidecar_row(path)
    m = _NAME_RE.match(path.stem)
    name_ticker, period, name_form = (m["ticker"], m["period"], m["form"]) if m else ("", "", "")
    form_key = str(row.get("doc_type") or name_form).upper().replace("-", "")
    form = _FORMS.get(form_key, str(row.get("doc_type") or name_form).upper())
    period = period or str(row.get("doc_period") or "")
    ticker = str(row.get("ticker") or name_ticker).upper()
    company = str(row.get("company") or ticker or path.stem)
    date = str(row.get("date") or str(row.get("doc_period") or period)[:4])
    return PdfMeta(ticker, company, form, period, date, str(row.get("doc_link") or ""))


@dataclass(frozen=True)
class _Heading:
    page: int
    line: int
    part: str
    number: int
    letter: str
    title: str  # "Item 1A. Risk Factors" as printed (a title wrapped onto the next line joined)


def _item_heading(lines: list[str], k: int, page: int, part: str) -> _Heading | None:
    line = lines[k]
    m = _ITEM_RE.match(line)
    if not m or len(line) > 150:
        return None
    prev = lines[k - 1] if k else ""
    if prev and not prev.endswith(_BLOCK_END) and len(prev.split()) > 8:
        return None  # mid-sentence: a cross reference wrapped to the start of a line
    rest = m.group(3).strip()
    if rest and not (rest[0].isupper() or rest[0] in "[\"'\u201c("):
        return None
    if rest and _TOC_PAGE_REF.search(rest):
        return None
    nxt = lines[k + 1] if k + 1 < len(lines) else ""
    joins = rest.isupper() and rest.split()[-1] in _CONNECTORS and nxt.isupper() and len(nxt.split()) <= 6
    if joins:
        rest = f"{rest} {nxt}"  # "...FINANCIAL CONDITION AND RESULTS OF" / "OPERATIONS"
    key = f"{int(m.group(1))}{(m.group(2) or '').upper()}"
    title = f"Item {key}. {rest}".strip() if rest else f"Item {key}."
    return _Heading(page, k, part, int(m.group(1)), (m.group(2) or "").upper(), title)


def find_items(pages: list[list[str]], quarterly: bool) -> list[_Heading]:
    """The Item headings that start real sections, in order.

    Candidates are lines that read like headings; the table of contents repeats them all, so
    (as in `filings.py`) we keep the one strictly increasing sequence that is followed by the
    most text: TOC entries are followed by almost nothing.
    """
    cands: list[_Heading] = []
    size: list[int] = []  # chars from each candidate up to the next one
    part = "I"
    for p, lines in enumerate(pages):
        for k, line in enumerate(lines):
            pm = _PART_RE.match(line)
            part_ok = pm and (not pm.group(2) or pm.group(2)[0].isupper()) and len(line) <= 80
            if part_ok and not _TOC_PAGE_REF.search(line):
                part = pm.group(1).upper()
            elif (h := _item_heading(lines, k, p, part)) is not None:
                cands.append(h)
                size.append(0)
                continue
            if size:
                size[-1] += len(line)
    if not cands:
        return []

    def order(h: _Heading) -> tuple[int, int, int]:
        letter = ord(h.letter) - ord("A") + 1 if h.letter else 0
        return (_PARTS.index(h.part) if quarterly else 0, h.number, letter)

    keys = [order(h) for h in cands]
    best: list[tuple[int, int]] = []
    back: list[int] = []
    for i in range(len(cands)):
        score, prev = (size[i], 1), -1
        for j in range(i):
            if keys[j] < keys[i] and (best[j][0] + size[i], best[j][1] + 1) >= score:
                score, prev = (best[j][0] + size[i], best[j][1] + 1), j
        best.append(score)
        back.append(prev)
    i = max(range(len(cands)), key=lambda n: (best[n], n))
    chosen = []
    while i >= 0:
        chosen.append(cands[i])
        i = back[i]
    return chosen[::-1]


def page_sections(pages: list[list[str]], form: str) -> list[Section]:
    """One Section per page, split where an Item starts on that page; title = Item + page."""
    quarterly = form.upper().startswith("10-Q")
    starts: dict[int, list[_Heading]] = {}
    for h in find_items(pages, quarterly):
        starts.setdefault(h.page, []).append(h)
    sections: list[Section] = []
    current: _Heading | None = None
    for p, lines in enumerate(pages):
        cuts = [0] + [h.line for h in starts.get(p, [])] + [len(lines)]
        heads = [current] + starts.get(p, [])
        for (a, b), head in zip(zip(cuts, cuts[1:], strict=False), heads, strict=True):
            text = lines_to_text(lines[a:b])
            current = head
            if not text:
                continue
            key, where = f"p{p}", f"PDF page {p + 1}"
            if head is not None:
                item = f"{head.number}{head.letter}"
                key = f"{head.part}-{item}@p{p}" if quarterly else f"{item}@p{p}"
                where = f"{'Part ' + head.part + ', ' if quarterly else ''}{head.title}, {where}"
            sections.append(Section(key=key, title=where, text=text, page=p))
    return sections


def parse_pdf(path: Path) -> Document:
    """Read one PDF filing; SourceError (naming the file and the fix) when it has no usable text."""
    path = Path(path)
    raw = read_raw(path)
    pages = page_lines(raw, path)
    if not any(pages):
        raise SourceError(
            f"{path}: PDF has no text layer ({len(pages)} pages of images or blank pages); "
            "it needs OCR first (e.g. `ocrmypdf in.pdf out.pdf`), then ingest the OCR'd file"
        )
    if b"%%EOF" not in raw[-2048:]:
        skipped(f"{path.name}: PDF looks truncated (no %%EOF at the end); kept the pages that could be read")
    blank = [p for p, lines in enumerate(pages) if not lines]
    if len(blank) > max(2, len(pages) // 10):  # a few blank separator pages are normal; many mean scans
        skipped(f"{path.name}: {len(blank)} of {len(pages)} pages have no text layer (scanned? needs OCR)")
    meta = pdf_meta(path)
    form = meta.form or "PDF"
    title = " ".join(x for x in (meta.company, meta.period, form) if x)
    return Document(
        doc_id=f"filings:{path.name}",
        corpus="filings",
        ticker=meta.ticker,
        source="sec",
        form=form,
        date=meta.date,
        title=title,
        url=meta.url or path.name,
        sections=page_sections(pages, form),
        content_digest=digest(raw),
        path=str(path),
    )


def parse_pdf_file(path: Path) -> list[Document]:
    """Registry adapter: one PDF -> a one-element list."""
    return [parse_pdf(path)]


register(SourceSpec(name="pdf", corpus="filings", patterns=("sec/pdf/*.pdf",), parse=parse_pdf_file))
