"""Earnings press releases (8-K EX-99.x) -> `Fact`s read from their income-statement tables.

An Item 2.02 release prints the quarter's figures days or weeks before the 10-Q's XBRL exists,
so its tables are the first source of those numbers. They are not XBRL: every Fact here says
`source="press-release"`, `extra["unaudited"] = True` and names the printed row
(`concept="press-release:<label>"`) and table, so a report can tell them from filed XBRL.

Precision over recall: a table is read only when it is titled as a statement of income /
operations / earnings and prints its scale; a column only when its header gives both the period
length ("Thirteen Weeks Ended", "Three Months Ended") and the end date; a row only when its label
is one of the standard lines and each of its numbers sits under exactly one such column. Anything
else is dropped, and said so through `skipped(...)`, never guessed.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag

from rag.errors import SourceError
from rag.facts import LINES, _fiscal_year
from rag.sources import skipped
from rag.sources.current_reports import report_date
from rag.sources.filings import filing_meta
from rag.sources.html_text import clean_text, decompress, html_blocks, load_html, read_raw
from rag.sources.submissions import (
    _gunzip,
    _unwrap,
    read_header,
    split_documents,
    submission_ticker,
)
from rag.types import Fact

_EXHIBIT_RE = re.compile(r"^EX-99\b")
_HTML_RE = re.compile(rb"<(html|body|table)\b", re.I)
_TITLE_RE = re.compile(
    r"statements?\s+of\s+(?:consolidated\s+)?(?:income|operations|earnings)|income\s+statements?", re.I
)
_NOT_GAAP_RE = re.compile(r"pro\s*forma|non-?\s*gaap|reconciliation|segment", re.I)
_SCALE_RE = re.compile(
    r"\bin\s+(thousands|millions|billions)\b|\b(thousands|millions|billions)\s+of\s+", re.I
)
_SCALES = {"thousands": 3, "millions": 6, "billions": 9}
_NUMBER_RE = re.compile(r"^\(?\$?\s*\(?\s*(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?\s*\)?$")
_DASH_RE = re.compile(r"^\$?\s*[-\u2013\u2014]+$")
_WORDS = {"three": 3, "six": 6, "nine": 9, "twelve": 12, "thirteen": 13, "fourteen": 14, "sixteen": 16}
_WORDS |= {"twenty-six": 26, "twenty-seven": 27, "thirty-nine": 39, "forty": 40}
_WORDS |= {"fifty-two": 52, "fifty-three": 53}
_NUM = (
    r"(\d{1,2}|three|six|nine|twelve|thirteen|fourteen|sixteen|twenty[- ]six|twenty[- ]seven|"
    r"thirty[- ]nine|forty|fifty[- ]two|fifty[- ]three)"
)
_WEEKS_RE = re.compile(rf"\b{_NUM}[- ]weeks?\b", re.I)
_MONTHS_RE = re.compile(rf"\b{_NUM}[- ]months?\b", re.I)
_QUARTER_RE = re.compile(r"\bquarters?\s+ended\b|\b(?:first|second|third|fourth)\s+quarter\b", re.I)
_YEAR_ENDED_RE = re.compile(r"\b(?:fiscal\s+)?years?\s+ended\b", re.I)
_MONTH_NAMES = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTH_NAMES |= {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m} | {"sept": 9}
_MONTH_DAY_RE = re.compile(
    rf"\b({'|'.join(sorted(_MONTH_NAMES, key=len, reverse=True))})\.?\s+(\d{{1,2}})\b", re.I
)
_YEAR_RE = re.compile(r"\b((?:19|20)\d{2})\b")
_CONTEXT_CHARS = 1200  # text read before a table for its title and scale


@dataclass(frozen=True)
class _Cell:
    first: int  # first grid column the cell covers
    last: int
    text: str


@dataclass(frozen=True)
class _Column:
    """What a header says about one grid column; `bad` when two header cells disagree."""

    length: tuple[int, str] | None = None  # (count, "weeks"|"months")
    month_day: tuple[int, int] | None = None
    year: int | None = None
    bad: bool = False


@dataclass(frozen=True)
class _Source:
    ticker: str
    filed: str
    accession: str
    exhibit: str = ""  # "EX-99.1" when the submission names the part's type


def _grid(table: Tag) -> list[list[_Cell]]:
    """Rows of cells placed on grid columns (colspan and rowspan honoured), empty cells left out."""
    rows: list[list[_Cell]] = []
    taken: dict[tuple[int, int], bool] = {}
    for r, tr in enumerate(table.find_all("tr")):
        if tr.find_parent("table") is not table:
            continue  # a row of a nested table
        cells: list[_Cell] = []
        col = 0
        for td in tr.find_all(["td", "th"], recursive=False):
            while taken.get((r, col)):
                col += 1
            span = _int(td.get("colspan"))
            down = _int(td.get("rowspan"))
            for dr in range(down):
                for dc in range(span):
                    taken[(r + dr, col + dc)] = True
            text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", clean_text(td.get_text(" "))))
            if text:
                cells.append(_Cell(col, col + span - 1, text))
            col += span
        rows.append(cells)
    return rows


def _int(value: object) -> int:
    try:
        return max(1, min(int(str(value)), 100))
    except (TypeError, ValueError):
        return 1


def _number(text: str) -> Decimal | None:
    """ "$293,618" -> 293618, "(365,241)" -> -365241, "—" -> 0; None for anything else."""
    if _DASH_RE.match(text):
        return Decimal(0)
    m = _NUMBER_RE.match(text)
    if not m or not (m.group(1) or m.group(2)):
        return None
    try:
        value = Decimal((m.group(1) or "0").replace(",", "") + (m.group(2) or ""))
    except InvalidOperation:
        return None
    return -value if text.startswith(("(", "$(", "$ (")) else value


def _values(row: list[_Cell]) -> list[tuple[_Cell, Decimal]]:
    """Number cells of a row; a "(" number closed by a ")" cell is negative, "%" cells void it."""
    out: list[tuple[_Cell, Decimal]] = []
    for k, cell in enumerate(row):
        text = cell.text
        after = row[k + 1].text if k + 1 < len(row) else ""
        if text.startswith("(") and not text.endswith(")") and after.startswith(")"):
            text += ")"
        value = _number(text)
        if value is None or after.lstrip(")").startswith("%") or text.endswith("%"):
            continue
        out.append((cell, value))
    return out


def _length(text: str) -> tuple[int, str] | None:
    """The period length a header cell prints, when it prints exactly one."""
    found = {(_count(m.group(1)), "weeks") for m in _WEEKS_RE.finditer(text)}
    found |= {(_count(m.group(1)), "months") for m in _MONTHS_RE.finditer(text)}
    if _QUARTER_RE.search(text):
        found.add((3, "months"))
    if _YEAR_ENDED_RE.search(text):
        found.add((12, "months"))
    return found.pop() if len(found) == 1 else None


def _count(word: str) -> int:
    word = word.lower().replace(" ", "-")
    return int(word) if word.isdigit() else _WORDS[word]


def _columns(header: list[list[_Cell]], width: int) -> list[_Column]:
    """Per grid column: the length, month/day and year that the header cells above it print."""
    cols = [_Column() for _ in range(width)]
    for row in header:
        for cell in row:
            length = _length(cell.text)
            md = _MONTH_DAY_RE.search(cell.text)
            month_day = (_MONTH_NAMES[md.group(1).lower()], int(md.group(2))) if md else None
            years = set(_YEAR_RE.findall(cell.text))
            year = int(years.pop()) if len(years) == 1 else None
            for c in range(cell.first, min(cell.last, width - 1) + 1):
                cols[c] = _merge(cols[c], length, month_day, year)
    return cols


def _merge(col: _Column, length, month_day, year) -> _Column:  # noqa: ANN001
    bad = col.bad
    for old, new in ((col.length, length), (col.month_day, month_day), (col.year, year)):
        bad = bad or (old is not None and new is not None and old != new)
    return _Column(col.length or length, col.month_day or month_day, col.year or year, bad)


def _period(col: _Column) -> tuple[str, str, str] | None:
    """(start, end, kind) of a complete column, or None when its start cannot be known.

    Weeks count back exactly (13 weeks = 91 days). Months count back from a month end
    (three months to June 30 start April 1). A month-based label on a date that is not a month
    end is a 52/53-week calendar whose quarter may be 13 or 14 weeks: not derivable, dropped.
    """
    if col.bad or not (col.length and col.month_day and col.year):
        return None
    try:
        end = date(col.year, *col.month_day)
    except ValueError:
        return None
    n, unit = col.length
    if unit == "weeks":
        start = end - timedelta(days=7 * n - 1)
        kind = "quarter" if n in (12, 13, 14, 16) else "annual" if n in (52, 53) else "ytd"
    else:
        if (end + timedelta(days=1)).day != 1 or n not in (3, 6, 9, 12):
            return None
        first = end + timedelta(days=1)
        month = first.month - n
        start = date(first.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
        kind = {3: "quarter", 12: "annual"}.get(n, "ytd")
    return start.isoformat(), end.isoformat(), kind


def _norm(label: str) -> str:
    label = re.sub(r"\(\d\)|\[\d\]|\*", " ", label.lower())  # footnote marks
    return re.sub(r"[^a-z()]+", " ", label.replace("\u2019", "'")).strip()


_EXCLUDE_RE = re.compile(r"adjusted|non gaap|pro forma|continuing|discontinued|weighted|shares used")
_LINE_RES: dict[str, re.Pattern] = {
    "revenue": re.compile(
        r"^(total )?(net )?(sales|revenues?)( net)?( of returns and allowances)?$|"
        r"^(total )?net sales and revenues?$"
    ),
    "gross_profit": re.compile(r"^(total )?gross (profit|margin)$"),
    "operating_income": re.compile(
        r"^(total )?(operating income|income from operations|operating income \(loss\)|"
        r"income \(loss\) from operations|operating profit)$"
    ),
    "net_income": re.compile(
        r"^net (income|earnings)( \(loss\))?( attributable to (?!.*(non ?controlling|minority|common|"
        r"preferred|participating|redeemable)).+)?$|^net \(loss\) income$"
    ),
    "eps_diluted": re.compile(
        r"^(diluted|basic and diluted)( (net )?(earnings|income)( \(loss\))? per (common )?share)?$|"
        r"^(earnings|net income|income)( \(loss\))? per (common )?share (diluted|basic and diluted)$|"
        r"^diluted (net )?(earnings|income)( \(loss\))? per (common )?share$"
    ),
}
_PER_SHARE_RE = re.compile(r"per (common )?share|^earnings per share")


def _line(label: str, heading: str) -> str | None:
    """The standard line a row label names, within the row's group heading ("EARNINGS PER SHARE:")."""
    text = _norm(label)
    if _EXCLUDE_RE.search(text) or _EXCLUDE_RE.search(_norm(heading)):
        return None
    for line, pattern in _LINE_RES.items():
        if line in LINES and pattern.match(text):
            if line == "eps_diluted" and text.startswith(("diluted", "basic")) and " share" not in text:
                return line if _PER_SHARE_RE.search(_norm(heading)) else None
            return line
    return None


def _context(table: Tag) -> list[str]:
    """The text pieces printed just before the table (title, scale, "(Unaudited)"), in order."""
    parts: list[str] = []
    size = 0
    for el in table.previous_elements:
        if isinstance(el, Tag) and el.name == "table" and _values_in(el) >= 3:
            break  # the previous statement: its title and scale are not ours
        if isinstance(el, NavigableString):
            text = clean_text(str(el))
            if text and el.find_parent(["script", "style", "ix:header"]) is None:
                parts.append(text)
                size += len(text)
                if size > _CONTEXT_CHARS:
                    break
    return parts[::-1]


def _values_in(table: Tag) -> int:
    return sum(
        1 for td in table.find_all("td", limit=400) if _number(clean_text(td.get_text(" "))) is not None
    )


@dataclass(frozen=True)
class _Row:
    line: str
    label: str
    values: dict[tuple[str, str, str], Decimal]  # (start, end, kind) -> value


def _read_rows(rows: list[list[_Cell]], cols: list[_Column], notes: list[str]) -> list[_Row]:
    heading = ""
    out: list[_Row] = []
    for row in rows:
        values = _values(row)
        label_cell = next((c for c in row if re.search(r"[A-Za-z]", c.text)), None)
        if label_cell is None:
            continue
        if not values:
            heading = label_cell.text
            continue
        line = _line(label_cell.text, heading)
        if line is None:
            continue
        label = (
            f"{heading} {label_cell.text}"
            if _norm(label_cell.text) in ("diluted", "basic and diluted")
            else label_cell.text
        )
        got: dict[tuple[str, str, str], Decimal] = {}
        clash = False
        for cell, value in values:
            periods = {_period(cols[c]) for c in range(cell.first, min(cell.last, len(cols) - 1) + 1)}
            periods.discard(None)
            if len(periods) != 1:
                continue
            period = periods.pop()
            clash = clash or (period in got and got[period] != value)
            got[period] = value
        if clash:
            notes.append(f"row {label_cell.text!r} has two numbers under one period column; dropped")
        elif got:
            out.append(_Row(line, label, got))
    return out


def _table_rows(table: Tag, notes: list[str]) -> tuple[list[_Row], int, str] | None:
    """(rows, scale exponent, title) of an income-statement table; None for any other table."""
    rows = _grid(table)
    first = next(
        (i for i, r in enumerate(rows) if _values(r) and any(re.search("[A-Za-z]", c.text) for c in r)), None
    )
    if first is None:
        return None
    header = rows[:first]
    pieces = _context(table) + [c.text for r in header for c in r]
    at = next((i for i in range(len(pieces) - 1, -1, -1) if _TITLE_RE.search(pieces[i])), None)
    if at is None or _NOT_GAAP_RE.search(pieces[at]):
        return None
    title = pieces[at][:120]
    scales = [m for piece in pieces[at:] for m in _SCALE_RE.finditer(piece)]
    if not scales:
        notes.append(f"table {title!r} prints no scale (in thousands / in millions); not read")
        return None
    scale = _SCALES[(scales[0].group(1) or scales[0].group(2)).lower()]
    width = max((c.last + 1 for r in rows for c in r), default=0)
    cols = _columns(header, width)
    if not any(_period(c) for c in cols):
        notes.append(f"table {title!r}: no column header gives both period length and end date; not read")
        return None
    return _read_rows(rows[first:], cols, notes), scale, title


def _fye(rows: list[_Row]) -> tuple[int, int] | None:
    """Fiscal year end (month, day): an annual column's end, else the day before a ytd start."""
    periods = {p for r in rows for p in r.values}
    ends = sorted(e for _, e, k in periods if k == "annual")
    if ends:
        d = date.fromisoformat(ends[-1])
        return d.month, d.day
    starts = sorted(s for s, _, k in periods if k == "ytd")
    if starts:
        d = date.fromisoformat(starts[-1]) - timedelta(days=1)
        return d.month, d.day
    return None


def facts_from_html(soup: BeautifulSoup, source: _Source, where: str) -> list[Fact]:
    """Facts of every income-statement table in one release; notes go to `skipped`."""
    notes: list[str] = []
    found: list[tuple[_Row, int, str]] = []
    for table in soup.find_all("table"):
        got = _table_rows(table, notes)
        if got:
            found += [(row, got[1], got[2]) for row in got[0]]
    fye = _fye([row for row, _, _ in found])
    facts: dict[tuple[str, str, str], Fact] = {}
    clashes: set[tuple[str, str, str]] = set()
    for row, scale, title in found:
        per_share = row.line == "eps_diluted"
        for (start, end, kind), value in row.values.items():
            key = (row.line, start, end)
            scaled = value if per_share else value * Decimal(10) ** scale
            fact = Fact(
                ticker=source.ticker,
                line=row.line,
                concept=f"press-release:{row.label}",
                value=float(scaled),
                unit="USD/shares" if per_share else "USD",
                fiscal_year=_fiscal_year(end, kind, fye),
                period_start=start,
                period_end=end,
                form="8-K",
                filed=source.filed,
                accession=source.accession,
                source="press-release",
                extra={"period": kind, "unaudited": True, "table": title}
                | ({"exhibit": source.exhibit} if source.exhibit else {}),
            )
            if key in facts and facts[key].value != fact.value:
                clashes.add(key)
            facts.setdefault(key, fact)
    for key in sorted(clashes):
        notes.append(f"{key[0]} {key[1]}..{key[2]} printed with two different values; dropped")
        del facts[key]
    if not found:
        notes.append("no income-statement table with readable period columns; no facts")
    for note in notes:
        skipped(f"{where}: {note}")
    return sorted(facts.values(), key=lambda f: (f.line, f.period_end, f.period_start))


def _from_submission(raw: bytes, path: Path, ticker: str | None) -> list[Fact]:
    header = read_header(raw, path)
    source = _Source(
        (ticker or submission_ticker(path, header)).upper(), header.filed, header.accession or path.name
    )
    facts: list[Fact] = []
    exhibits = [p for p in split_documents(raw) if _EXHIBIT_RE.match(p.type) and p.text]
    if not exhibits:
        skipped(f"{path.name}: no EX-99 exhibit (press release) in the submission; no facts")
    for part in exhibits:
        where = f"{part.type} {part.filename or part.sequence}"
        text = _unwrap(part.text)
        if not _HTML_RE.search(text[:5000]):
            skipped(f"{where}: plain-text exhibit; its tables are not read for facts")
            continue
        try:
            soup = load_html(text, Path(f"{path}#{part.filename}"))
            facts += facts_from_html(soup, replace(source, exhibit=part.type.upper()), where)
        except SourceError as e:
            skipped(f"{where}: {e}")
    return facts


def facts_from_press_release(path: Path, ticker: str | None = None) -> list[Fact]:
    """Facts from an EX-99.x release file (.htm/.html, optionally gzipped) or from the EX-99.x
    parts of a full EDGAR submission (.txt/.txt.gz). [] (with a note) when none can be read."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".txt"):
        raw = _gunzip(read_raw(path), path)
        if b"<DOCUMENT>" not in raw[:2_000_000]:
            raise SourceError(
                f"{path}: not an EDGAR full submission (no <DOCUMENT>); pass the EX-99 HTML file"
            )
        return _from_submission(raw, path, ticker)
    raw = decompress(read_raw(path), path)
    soup = load_html(raw, path)
    meta = filing_meta(path, raw, soup, ticker, exhibit=True)
    if not meta.form.startswith("8-K"):
        raise SourceError(
            f"{path}: a {meta.form} is not a press release; read its XBRL with facts_from_inline_xbrl"
        )
    try:
        filed = meta.date or report_date(html_blocks(soup))
    except RecursionError as e:
        raise SourceError(f"{path}: HTML nested too deeply to read") from e
    return facts_from_html(soup, _Source(meta.ticker, filed, meta.accession or path.name), path.name)
