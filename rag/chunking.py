"""Documents -> passages sized for the embedder and for a 2,048-token prompt.

all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops the rest. Prose runs ~1.3
pieces per word, so passages are capped at 160 words; tables of numbers run up to 2.5 (`$(1,234)`
is 6 pieces), so passages are also capped at an estimated MAX_TOKENS pieces: at 160 words alone
180 of 2,594 passages of the shipped filings (7%) lost their tail to truncation. Passages
never cross a section boundary (a Risk Factors chunk must not carry Legal Proceedings text), and
they break at sentence or table-row boundaries, with one sentence of overlap for continuity.

A table cut over several passages repeats its header at the start of every continuation instead
of the overlap row: "Consolidated Balance Sheets ($ in millions) (cont.) As of June 30, | 2023 | 2022
Total current liabilities | 4,476 | 5,103". Without it a later passage is a list of figures with
no statement name and no years, which neither retriever can place and no reader can cite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.types import Document, Passage, digest

MAX_WORDS = 160
# Estimated word pieces (see estimate_tokens). On the shipped filings the real count is 1.00-1.39x
# the estimate (median 1.07x): 198 keeps every passage within the embedder's 256 (bench/ingest.py
# reports the distribution).
MAX_TOKENS = 198
MIN_WORDS = 8  # fragments shorter than this (page numbers, lone headings) carry no retrievable meaning

_PIECES = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$])")


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _para_units(para: str) -> list[str]:
    if " | " in para:
        return [line.strip() for line in para.splitlines() if line.strip()]
    flat = " ".join(para.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


def split_units(text: str) -> list[str]:
    """Sentences of prose paragraphs, whole rows of tables (lines holding ' | ')."""
    return [unit for para in _paragraphs(text) for unit in _para_units(para)]


# --- table headers -------------------------------------------------------------------------------
# A table is a paragraph of " | " rows. In PDFs one printed statement comes out as several such
# paragraphs split by in-table headings ("Liabilities", "Current liabilities:"), with the column
# header often a paragraph of its own ("As of June 30, | 2023 | 2022"), so a "table" here is a run
# of table paragraphs joined only by headings and row-label fragments (no prose), and a paragraph
# with header rows of its own starts a new one. Its caption is the headings right before it.
# Tuned by reading AMCOR/BESTBUY/Pfizer FinanceBench statement pages and SEC HTML statements.
_CAPTION_MAX_WORDS = 25  # of the repeated caption ("Amcor plc ... Consolidated Balance Sheets ($ in ...)")
_HEADING_MAX_WORDS = 20  # a paragraph this short that ends no sentence is a heading, not prose
_HEADER_CELL_MAX_WORDS = 12  # "Quoted Prices in Active Markets for Identical Assets (Level 1)" is 9
_FRAGMENT_MAX_WORDS = 40  # ... and one this long, between two tables, a row label (Pfizer's product table)
_CAPTION_MAX_WORDS_SEEN = 60  # headings walked back from a table to find its caption, in words
_MONTHS = set(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# Words of column headers that name periods: "Three Months Ended", "Fiscal Years Ended", "% Change".
_PERIOD_CORE = set(
    "week weeks month months quarter quarters year years fiscal ended ending change % ytd".split()
)
_PERIOD_GLUE = set(
    "as of at for the and to from through three six nine twelve first second third fourth half "
    "in $ millions thousands billions".split()  # "(MILLIONS) Three Months Ended"
)
_FIGURE = re.compile(r"^[(\-\u2212$]*\d[\d,.]*\)?%?\)?$|^[-\u2013\u2014]+$")
_UNITS_LINE = re.compile(r"\b(?:millions|thousands|billions)\b", re.I)


def _period_like(text: str) -> bool:
    """Only years, dates and period words: "2023", "As of June 30,", "Three Months Ended", "% Change"."""
    core = False
    for raw in text.lower().replace("%", " % ").split():
        tok = raw.strip(",.:;()[]")
        if not tok:
            continue
        if re.fullmatch(r"(?:19|20)\d\d|fy\d{2,4}|q[1-4]|%", tok) or tok in _MONTHS or tok in _PERIOD_CORE:
            core = True
        elif not (re.fullmatch(r"\d{1,2}|5[23]", tok) or tok in _PERIOD_GLUE):
            return False
    return core


def _period_head(line: str) -> str:
    """A heading that is column headers plus a row label the PDF printed on the same line, without the label.

    "Fiscal Years Ended January 28, 2023 January 29, 2022 Operating activities" -> "Fiscal Years Ended
    January 28, 2023 January 29, 2022": the label is the first row's, not every continuation's.
    """
    words = line.split()
    if _period_like(line) or len(words) < 4:
        return line
    k = max((k for k in range(3, len(words)) if _period_like(" ".join(words[:k]))), default=0)
    has_year = re.search(r"\b(?:19|20)\d\d\b", " ".join(words[:k]))
    return " ".join(words[:k]) if has_year and len(words) - k <= 4 else line


def _is_header_row(line: str) -> bool:
    """A column-header row: no figures other than years/periods ("| 2024 | 2023", "Family of Apps | Total").

    A lone label ("ASSETS:", "Inventories, net") is a row label, not a header; so is anything ending ':'.
    """
    cells = [c.strip() for c in line.strip(" |").split(" | ") if c.strip()]
    if line.endswith(":") or any(len(c.split()) > _HEADER_CELL_MAX_WORDS for c in cells):
        return False  # a row label, or text in a table (critical audit matters), not a column header
    if len(cells) <= 1:
        text = cells[0] if cells else ""
        return _period_like(text) or (bool(_UNITS_LINE.search(text)) and not re.search(r"\d", text))
    # "Level 1", "December 31, 2024" are words; "$689", "(862)", "12.5%", "—" are figures
    return not any(_FIGURE.match(c) and not re.fullmatch(r"(?:19|20)\d\d", c) for c in cells)


def _header_rows(rows: list[str]) -> int:
    """How many leading rows are column headers; a lone label counts when header cells follow it
    ("Incorporated by Reference" over "Exhibit Number | Exhibit Description")."""

    def spans(k: int) -> bool:
        label = " | " not in rows[k] and not re.search(r"\d|:$", rows[k])
        return label and k + 1 < len(rows) and " | " in rows[k + 1] and _is_header_row(rows[k + 1])

    k = 0
    while k < len(rows) and (_is_header_row(rows[k]) or spans(k)):
        k += 1
    return k


def _kind(para: str) -> str:
    """table | heading (short, ends no sentence: "Consolidated Balance Sheets", "Current liabilities:")
    | fragment (a row label the PDF printed apart from its figures) | prose."""
    n, sentence = len(para.split()), para.endswith((".", "!", "?"))
    if " | " in para:
        return "table"
    if n <= _HEADING_MAX_WORDS and (not sentence or n <= 4):
        return "heading"
    return "fragment" if n <= _FRAGMENT_MAX_WORDS and not sentence else "prose"


@dataclass(frozen=True)
class _Unit:
    text: str
    table: int = -1  # table whose header repeats before this unit in a continuation; -1: none
    lead: bool = False  # part of that header (caption or column-header row): kept with the rows after it


@dataclass(frozen=True)
class _Header:
    caption: str  # statement name and units: "Consolidated Balance Sheets ($ in millions)"
    columns: str  # period / column header rows: "As of June 30, | 2023 | 2022"

    def prefix(self, max_words: int, max_tokens: int) -> str:
        """ "caption (cont.) columns" within the budget; the caption shrinks first, then the columns."""
        cont = "(cont.)"
        max_words, max_tokens = max_words - 1, max_tokens - estimate_tokens(cont)
        if max_words <= 0 or max_tokens <= 0:
            return ""
        columns = _fit(self.columns, max_words, max_tokens)
        words, tokens = _size(columns) if columns else (0, 0)
        caption = _fit(self.caption, min(_CAPTION_MAX_WORDS, max_words - words), max_tokens - tokens)
        return " ".join(p for p in (caption, cont, columns) if p)


def _fit(text: str, max_words: int, max_tokens: int) -> str:
    """The leading words of text within both budgets."""
    if max_words <= 0 or max_tokens <= 0 or not text:
        return ""
    return _hard_split(text, max_words, max_tokens)[0]


def table_units(text: str) -> tuple[list[_Unit], dict[int, _Header]]:
    """`split_units` of a section, with each table's caption and column headers marked.

    Units outside a table, and tables with no caption and no header rows (nothing to repeat) or no
    rows of data, stay plain, so they pack exactly as before.
    """
    paras = _paragraphs(text)
    kind = [_kind(p) for p in paras]
    groups: list[tuple[list[int], list[int]]] = []  # (caption paragraphs, table paragraphs + between)
    last = -1  # paragraph index of the last table paragraph of the open group
    for i, para in enumerate(paras):
        if kind[i] != "table":
            continue
        rows = _para_units(para)
        between = range(last + 1, i)
        if groups and all(kind[j] != "prose" for j in between) and not _is_header_row(rows[0]):
            groups[-1][1].extend([*between, i])  # in-table headings, then more rows of the same table
        else:
            caption: list[int] = []
            j, seen = i - 1, 0
            while (
                j > last and kind[j] == "heading" and seen + len(paras[j].split()) <= _CAPTION_MAX_WORDS_SEEN
            ):
                caption.insert(0, j)
                seen += len(paras[j].split())
                j -= 1
            groups.append((caption, [i]))
        last = i
    units = [_Unit(u) for p in paras for u in _para_units(p)]
    starts = [0]
    for p in paras:
        starts.append(starts[-1] + len(_para_units(p)))
    headers: dict[int, _Header] = {}
    for caption, body in groups:
        rows = _para_units(paras[body[0]])
        n_head = _header_rows(rows)
        if n_head == len(rows) and len(body) == 1:
            continue  # header rows only ("Year ended June 30, | 2023" over prose): nothing to repeat them for
        lines = [_period_head(" ".join(paras[j].split())) for j in caption]
        split = next((k for k, line in enumerate(lines) if _period_like(line)), len(lines))
        header = _Header(" ".join(lines[:split]), " ".join(lines[split:] + rows[:n_head]))
        if not (header.caption or header.columns):
            continue
        tid = len(headers)
        headers[tid] = header
        lead = set(range(starts[caption[0]], starts[caption[-1] + 1])) if caption else set()
        lead |= set(range(starts[body[0]], starts[body[0]] + n_head))
        for k in range(starts[caption[0] if caption else body[0]], starts[body[-1] + 1]):
            units[k] = _Unit(units[k].text, tid, k in lead)
    return units, headers


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
    return _pack([_Unit(u) for u in units], {}, max_words, overlap, max_tokens)


def _split_oversized(
    units: list[_Unit], headers: dict[int, _Header], max_words: int, max_tokens: int
) -> list[_Unit]:
    """Units over either budget cut at word boundaries, each piece of a table row leaving room for
    the header that will open its chunk."""
    expanded: list[_Unit] = []
    for unit in units:
        words, tokens = _size(unit.text)
        if words > max_words or tokens > max_tokens:
            room_w, room_t = max_words, max_tokens
            if unit.table >= 0 and not unit.lead:  # leave each piece room for the header before it
                head_w, head_t = _size(headers[unit.table].prefix(max_words // 2, max_tokens // 2))
                room_w, room_t = room_w - head_w, room_t - head_t
            expanded.extend(_Unit(p, unit.table, unit.lead) for p in _hard_split(unit.text, room_w, room_t))
        else:
            expanded.append(unit)
    return expanded


def _pack(
    units: list[_Unit], headers: dict[int, _Header], max_words: int, overlap: int, max_tokens: int
) -> list[str]:
    """`pack` over marked units: a chunk that starts inside a table opens with that table's header.

    The header replaces the overlap there (every row appears once, next to its columns), takes at
    most half the budget, and counts toward it. A caption or header row left at the end of a chunk
    moves on with the rows it heads, and a row of such a table is not repeated as overlap into the
    text after the table. Plain units (no header to repeat) pack exactly as `pack` always did.
    """
    expanded = _split_oversized(units, headers, max_words, max_tokens)

    def fits(extra: list[_Unit], n: int, t: int) -> bool:
        sizes = [_size(u.text) for u in extra]
        return sum(w for w, _ in sizes) + n <= max_words and sum(x for _, x in sizes) + t <= max_tokens

    chunks: list[str] = []
    current: list[_Unit] = []
    count = tokens = 0
    for unit in expanded:
        n, t = _size(unit.text)
        if current and (count + n > max_words or tokens + t > max_tokens):
            k = len(current)
            while unit.table >= 0 and k > 0 and current[k - 1].table == unit.table and current[k - 1].lead:
                k -= 1
            if not (0 < k < len(current) and fits(current[k:], n, t)):
                k = len(current)
            chunks.append(" ".join(u.text for u in current[:k]))
            if k < len(current):
                keep = current[k:]  # the table's caption / header rows, moved to the chunk with its rows
            elif unit.table >= 0 and not unit.lead:
                half_w, half_t = min(max_words // 2, max_words - n), min(max_tokens // 2, max_tokens - t)
                head = headers[unit.table].prefix(half_w, half_t)
                keep = [_Unit(head)] if head else []
            else:
                keep = current[-overlap:] if overlap else []
                if not fits(keep, n, t) or any(u.table >= 0 and not u.lead for u in keep):
                    keep = []  # a table row without its header would be figures without columns
            current = list(keep)
            kept = [_size(u.text) for u in keep]
            count, tokens = sum(w for w, _ in kept), sum(x for _, x in kept)
        current.append(unit)
        count, tokens = count + n, tokens + t
    if current:
        chunks.append(" ".join(u.text for u in current))
    return chunks


def chunk_document(doc: Document, max_words: int = MAX_WORDS, max_tokens: int = MAX_TOKENS) -> list[Passage]:
    """Split every section of a document into citeable passages, in reading order."""
    passages: list[Passage] = []
    for section in doc.sections:
        units, headers = table_units(section.text)
        for text in _pack(units, headers, max_words, 1, max_tokens):
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
                    filed=doc.filed,
                )
            )
    return passages
