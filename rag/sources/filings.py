"""SEC 10-K / 10-Q / 8-K primary documents and standalone exhibits (HTML, optionally gzipped) -> Documents.

Each Item becomes a `Section` so retrieval can filter by section (Risk Factors must not bleed into
Legal Proceedings). Keys are the item numbers for 10-K ("1", "1A", "7") and part-qualified for
10-Q ("I-2", "II-1A") because 10-Q item numbers repeat across Parts I and II.

Why a document walk and not regexes over markup: Workiva/EDGAR HTML spreads one heading over
several spans or table cells, and the table of contents repeats every heading. We flatten the
DOM into text blocks (paragraphs and table rows), mark blocks that look like Item/Part headings,
then choose the one increasing sequence of headings that covers the most text, which skips the
TOC (its entries are followed by almost nothing) without hard-coding where the TOC ends.

8-Ks split by item code ("2.02") and exhibit files (EX-99.1 press releases) are handled by
`current_reports.py`; `sections_for` is the one place that picks the splitter, shared with full
EDGAR submissions (`submissions.py`), so a 10-K or 8-K reads the same whichever way it arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup

from rag.errors import SourceError
from rag.sources import SourceSpec, register, skipped
from rag.sources.current_reports import (
    event_date,
    exhibit_number,
    exhibit_section,
    report_date,
    split_8k_items,
)
from rag.sources.html_text import (
    Block,
    blocks_text,
    clean_text,
    decompress,
    html_blocks,
    load_html,
    read_raw,
)
from rag.sources.incorporation import NO_STATEMENTS, incorporated_by_reference
from rag.types import Document, Section, digest

# "aapl-10-k-2024-11-01.html.gz" -> ticker, form, filing date. "-a" marks an amendment (10-K/A).
FILE_NAME_RE = re.compile(
    r"^(?P<ticker>[a-z0-9.]+)-(?P<form>10-k|10-q|8-k)(?P<amend>-a)?-(?P<date>\d{4}-\d{2}-\d{2})\b", re.I
)
# Without a date ("orcl-8-k.Oracle.8-K.html") the name still gives ticker and form.
_NAME_RE = re.compile(r"^(?P<ticker>[a-z0-9.]+)-(?P<form>10-k|10-q|8-k)(?P<amend>-a)?[.\-_]", re.I)
_ACCESSION_RE = re.compile(r"ACCESSION[ -]NUMBER:\s*(\d{10}-\d{2}-\d{6})", re.I)
_ACCESSION_NAME_RE = re.compile(r"(\d{10}-\d{2}-\d{6})")

# A heading block: whole block is "Item 1A. Risk Factors" (title optional). The title must start
# upper-case so that cross references ("Item 7 of this Form 10-K") are not taken for headings.
_ITEM_RE = re.compile(r"^item\s*(\d{1,2})\s*([a-c])?(?![a-z0-9])\s*[.:\-\u2014\u2013]?\s*(.*)$", re.I)
_PART_RE = re.compile(r"^part\s+(iv|i{1,3})(?![a-z])\s*[.:\-\u2014\u2013]?\s*(.*)$", re.I)
_MAX_ITEM_HEADING = 200  # chars; longer blocks are prose that happens to start with "Item"
_MAX_PART_HEADING = 80
_PARTS = ("I", "II", "III", "IV")


@dataclass(frozen=True)
class _Heading:
    index: int  # position in the block list
    kind: str  # "item" | "part"
    part: str  # "I".."IV" (for items: the Part in force where the heading appears)
    number: int
    letter: str
    word: str  # "Item" / "ITEM" as printed
    rest: str  # title after the number: "Risk Factors"; "" when printed in the next block


def _part_heading(text: str) -> re.Match | None:
    """ "PART II — OTHER INFORMATION", but not the cross reference "Part II, Item 7 of this report"."""
    m = _PART_RE.match(text)
    ok = m and len(text) <= _MAX_PART_HEADING and (not m.group(2) or m.group(2)[0].isupper())
    return m if ok else None


def _heading(block: Block, index: int, part: str) -> _Heading | None:
    text = block.text.replace(" | ", " ")
    if m := _part_heading(text):
        return _Heading(index, "part", m.group(1).upper(), 0, "", "Part", m.group(2))
    m = _ITEM_RE.match(text)
    if m and len(text) <= _MAX_ITEM_HEADING:
        rest = m.group(3)
        if rest and not (rest[0].isupper() or rest[0] in "[\"'\u201c("):
            return None
        num, letter = int(m.group(1)), (m.group(2) or "").upper()
        return _Heading(index, "item", part, num, letter, text[:4], rest)
    return None


def _find_headings(blocks: list[Block]) -> list[_Heading]:
    out: list[_Heading] = []
    part = "I"
    for i, block in enumerate(blocks):
        h = _heading(block, i, part)
        if h is None:
            continue
        if h.kind == "part":
            part = h.part
        out.append(h)
    return out


def _order(h: _Heading, quarterly: bool) -> tuple[int, int, int]:
    letter = ord(h.letter) - ord("A") + 1 if h.letter else 0
    return (_PARTS.index(h.part) if quarterly else 0, h.number, letter)


def _choose(headings: list[_Heading], blocks: list[Block], quarterly: bool) -> list[_Heading]:
    """Pick the item headings that start real sections.

    Longest-path over headings in document order whose item order strictly increases, scored by
    the text each heading is followed by (up to the next heading of any kind). TOC entries score
    ~0, so the body's headings win; ties prefer more sections, so "Item 6. [Reserved]" stays.
    """
    items = [h for h in headings if h.kind == "item"]
    bounds = [h.index for h in headings] + [len(blocks)]
    nxt = {h.index: bounds[k + 1] for k, h in enumerate(headings)}
    gain = [sum(len(b.text) for b in blocks[h.index + 1 : nxt[h.index]]) for h in items]
    keys = [_order(h, quarterly) for h in items]
    best: list[tuple[int, int]] = []
    prev: list[int] = []
    for i in range(len(items)):
        score, back = (gain[i], 1), -1
        for j in range(i):
            if keys[j] < keys[i]:
                cand = (best[j][0] + gain[i], best[j][1] + 1)
                if cand >= score:
                    score, back = cand, j
        best.append(score)
        prev.append(back)
    if not items:
        return []
    i = max(range(len(items)), key=lambda k: (best[k], k))
    chosen: list[_Heading] = []
    while i >= 0:
        chosen.append(items[i])
        i = prev[i]
    return chosen[::-1]


def _section_text(blocks: list[Block]) -> str:
    """Section body without page numbers and without the running "PART II" headings."""
    return blocks_text(blocks, drop=lambda b: _part_heading(b.text.replace(" | ", " ")) is not None)


def sections_for(blocks: list[Block], form: str, exhibit: str = "", description: str = "") -> list[Section]:
    """The splitter for a form: 10-K/10-Q Items, 8-K item codes, or one section for an exhibit.

    `exhibit` is the exhibit number ("99.1") of an exhibit document, "" for a primary document.
    """
    if exhibit:
        section = exhibit_section(blocks, exhibit, description)
        return [section] if section.text.strip() else []
    if form.upper().startswith("8-K"):
        return split_8k_items(blocks)
    return split_items(blocks, form)


def split_items(blocks: list[Block], form: str) -> list[Section]:
    """Cut the block list into one Section per chosen Item heading (text up to the next one)."""
    quarterly = form.upper().startswith("10-Q")
    headings = _find_headings(blocks)
    chosen = _choose(headings, blocks, quarterly)
    sections: list[Section] = []
    for k, h in enumerate(chosen):
        start = h.index + 1
        end = chosen[k + 1].index if k + 1 < len(chosen) else len(blocks)
        body = blocks[start:end]
        rest = h.rest
        # Heading split over two blocks ("Item 1A." then "Risk Factors"): take the title along.
        if not rest and body and len(body[0].text) < 120 and not body[0].text.endswith("."):
            rest, body = body[0].text.replace(" | ", " "), body[1:]
        key = f"{h.number}{h.letter}"
        title = f"{h.word} {key}. {rest}".strip()  # uniform: "Item10.Directors" -> "Item 10. Directors"
        if quarterly:
            key = f"{h.part}-{key}"
            title = f"Part {h.part}, {title}"
        sections.append(Section(key=key, title=title, text=_section_text(body)))
    return sections


def ix_value(soup: BeautifulSoup, name: str) -> str:
    """Text of the first `ix:nonNumeric` tagged `name` (e.g. "dei:EntityRegistrantName"), or ""."""
    tag = soup.find("ix:nonnumeric", attrs={"name": name})
    return clean_text(tag.get_text(" ")) if tag is not None else ""


@dataclass(frozen=True)
class FilingMeta:
    """Who, what and when of one filing document."""

    ticker: str  # upper-case; "" if neither the name nor dei:TradingSymbol says
    form: str  # "10-K", "10-Q", "10-K/A", "8-K" (also for an 8-K's exhibit files), ...
    date: str  # filing date (ISO) from the file name; "" if absent
    company: str  # dei:EntityRegistrantName, else the ticker
    cik: str  # digits only; "" if absent
    accession: str  # "0000320193-24-000123" if the name or SGML header has one, else ""


def filing_meta(
    path: Path, raw: bytes, soup: BeautifulSoup, ticker: str | None = None, exhibit: bool = False
) -> FilingMeta:
    """EDGAR-style file names ("aapl-10-k-2024-11-01.html.gz") first, the inline XBRL cover second.

    An exhibit file (`exhibit=True`) without either counts as an 8-K's. Primary documents rarely
    carry their own accession number (a full submission's SGML header does), so `accession` is
    usually "".
    """
    m = FILE_NAME_RE.match(path.name)
    named = m or _NAME_RE.match(path.name)
    form = named.group("form").upper() + ("/A" if named.group("amend") else "") if named else ""
    form = form or ix_value(soup, "dei:DocumentType").upper() or ("8-K" if exhibit else "")
    if not form.startswith(("10-K", "10-Q", "8-K")):
        raise SourceError(
            f"{path}: cannot tell 10-K from 10-Q or 8-K (name it like aapl-10-k-2024-11-01.html or "
            "keep the inline XBRL dei:DocumentType)"
        )
    ticker = (
        ticker or (named.group("ticker") if named else "") or ix_value(soup, "dei:TradingSymbol")
    ).upper()
    acc = _ACCESSION_NAME_RE.search(path.name) or _ACCESSION_RE.search(raw[:20000].decode("latin-1"))
    return FilingMeta(
        ticker=ticker,
        form=form,
        date=m.group("date") if m else "",
        company=ix_value(soup, "dei:EntityRegistrantName") or ticker,
        cik=re.sub(r"\D", "", ix_value(soup, "dei:EntityCentralIndexKey")),
        accession=acc.group(1) if acc else "",
    )


# The last Item every complete filing has: 10-K Item 15 and 10-Q Part II Item 6 (exhibits).
_LAST_ITEM = {"10-K": (0, 15, ""), "10-Q": (1, 6, "")}


def _item_order(key: str) -> tuple[int, int, str]:
    """Section key -> sortable (part, number, letter): "9B" -> (0, 9, "B"), "II-1A" -> (1, 1, "A")."""
    part, _, item = key.rpartition("-")
    m = re.match(r"(\d+)([A-Z]?)", item)
    return (_PARTS.index(part) if part in _PARTS else 0, int(m.group(1)) if m else 0, m.group(2) if m else "")


def _note_truncation(raw: bytes, form: str, sections: list[Section]) -> None:
    """A cut-off download still parses, into fewer Items (or only the table of contents): say so
    through `skipped` instead of indexing it silently. Amendments and 8-Ks may stop anywhere."""
    last = _LAST_ITEM.get(form)
    if last is None:
        return
    reasons = []
    if b"</html" not in raw.rstrip()[-4096:].lower():
        reasons.append("no closing </html>")
    if max(_item_order(s.key) for s in sections) < last:
        expected = "Part II, Item 6" if last[0] else "Item 15"
        reasons.append(f"ends at {sections[-1].title[:60]!r}, before {expected}")
    if reasons:
        skipped(f"document looks truncated ({'; '.join(reasons)}): indexed the {len(sections)} Items found")


def parse_filing(path: Path, ticker: str | None = None) -> Document:
    """Read one 10-K/10-Q/8-K primary document (sections: its Items) or exhibit file (one section).

    Any unreadable input raises SourceError naming the file, so one bad download cannot crash
    an ingest run.
    """
    path = Path(path)
    raw_file = read_raw(path)
    raw = decompress(raw_file, path)
    soup = load_html(raw, path)
    try:
        blocks = html_blocks(soup)
    except RecursionError as e:
        raise SourceError(f"{path}: HTML nested too deeply to read") from e
    exhibit = "" if ix_value(soup, "dei:DocumentType") else exhibit_number(path.name, blocks)
    meta = filing_meta(path, raw, soup, ticker, exhibit=bool(exhibit))
    form = meta.form
    sections = sections_for(blocks, form, exhibit)
    if not sections:
        if exhibit:
            raise SourceError(f"{path}: exhibit {exhibit} has no text (images only?)")
        raise SourceError(
            f"{path}: no {form[:4]} Item headings found (is this a {form[:4]} primary document?)"
        )
    if not exhibit:
        _note_truncation(raw, form, sections)
        if why := incorporated_by_reference(sections, form):  # Item 8 only points to EX-13: no facts here
            skipped(f"financial statements incorporated by reference ({why}): {NO_STATEMENTS}")
    filed = date = meta.date
    if form.startswith("8-K"):  # dated by its event (XBRL cover, else "Date of Report"); title keeps filed
        filed = filed or report_date(blocks)
        date = event_date(blocks, ix_value(soup, "dei:DocumentPeriodEndDate")) or filed
    # EDGAR filing index when CIK and accession are known; else the file name.
    url = path.name
    if meta.cik and meta.accession:
        folder = f"{int(meta.cik)}/{meta.accession.replace('-', '')}"
        url = f"https://www.sec.gov/Archives/edgar/data/{folder}/{meta.accession}-index.htm"
    return Document(
        doc_id=f"filings:{path.name}",
        corpus="filings",
        ticker=meta.ticker,
        source="sec",
        form=form,
        date=date,
        filed=filed if filed != date else "",
        title=" ".join(
            w for w in (meta.company, form, exhibit and f"EX-{exhibit}", filed and f"filed {filed}") if w
        ),
        url=url,
        sections=sections,
        content_digest=digest(raw_file),
        path=str(path),
    )


def parse_filing_file(path: Path) -> list[Document]:
    """Registry adapter: one filing file -> a one-element list."""
    return [parse_filing(path)]


register(
    SourceSpec(
        name="filings",
        corpus="filings",
        patterns=("sec/filings/*.html", "sec/filings/*.html.gz", "sec/filings/*.htm", "sec/filings/*.htm.gz"),
        parse=parse_filing_file,
    )
)
