"""The latest earnings release's figures (8-K EX-99, unaudited) as a table of their own.

Why a separate table: a company's Item 2.02 release prints the quarter weeks before the 10-Q or
10-K carries it in XBRL, so for those weeks the release is the only source of the latest figures.
But it is unaudited and not XBRL, so its rows never enter the audited annual or quarterly tables
(`rag.statements.audited`): they are shown apart, labelled as the company's release, with the
filing they came from. As soon as XBRL covers the release's period the XBRL figures win and the
release table is not built at all (see `release_table`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, timedelta

from rag.facts import ANNUAL_DAYS, QUARTER_DAYS, period_days
from rag.statements import INCOME_LINES, LABELS, UNAUDITED_SOURCES, audited, fiscal_quarter
from rag.types import Fact
from reports.facts_view import money
from reports.model import FactRow, FactsTable

RELEASE_LINES = INCOME_LINES  # what an earnings release's income statement prints
RELEASE_LABELS = {line: LABELS[line] for line in RELEASE_LINES}
_KINDS = ("quarter", "annual", "ytd")  # column groups, in the order the table shows them
_EXHIBIT_RE = re.compile(r"EX-?99[._-]?(\d{1,2})", re.I)


def _kind(f: Fact) -> str:
    """The period kind the release printed ("quarter", "annual", "ytd"); from its length if unset."""
    kind = f.extra.get("period") if isinstance(f.extra, dict) else None
    if kind in _KINDS:
        return kind
    days = period_days(f.period_start, f.period_end)
    if QUARTER_DAYS[0] <= days <= QUARTER_DAYS[1]:
        return "quarter"
    return "annual" if ANNUAL_DAYS[0] <= days <= ANNUAL_DAYS[1] else "ytd"


def latest_xbrl_end(facts: list[Fact]) -> str:
    """End of the latest period any audited (XBRL) duration fact reports; "" when there is none."""
    return max((f.period_end for f in audited(facts) if f.period_start), default="")


def _fye(release: list[Fact], facts: list[Fact]) -> date | None:
    """A fiscal year end (any year) to number the quarter: the release's own annual column end or
    the day before its year-to-date start, else the latest annual XBRL period's end."""
    for f in release:
        if _kind(f) == "annual":
            return date.fromisoformat(f.period_end)
    for f in release:
        if _kind(f) == "ytd":
            return date.fromisoformat(f.period_start) - timedelta(days=1)
    ends = [
        f.period_end
        for f in audited(facts)
        if f.period_start and ANNUAL_DAYS[0] <= period_days(f.period_start, f.period_end) <= ANNUAL_DAYS[1]
    ]
    return date.fromisoformat(max(ends)) if ends else None


def _column(kind: str, f: Fact, fye: date | None) -> str:
    """Column key, in the facts tables' own labels: "Q3 FY2025", "FY2025", "9M FY2025"."""

    if kind == "annual":
        return f"FY{f.fiscal_year}"
    if kind == "quarter":
        return f"Q{fiscal_quarter(f.period_end, fye)} FY{f.fiscal_year}" if fye else f"3M FY{f.fiscal_year}"
    months = round(period_days(f.period_start, f.period_end) / 30.44)
    return f"{months}M FY{f.fiscal_year}"


def exhibit(facts: list[Fact]) -> str:
    """ "EX-99.1" where the fact or its file name says which exhibit it is, else "EX-99"."""
    for f in facts:
        named = f.extra.get("exhibit") if isinstance(f.extra, dict) else None
        if named:
            return str(named)
        m = _EXHIBIT_RE.search(f.accession)
        if m:
            return f"EX-99.{m.group(1)}"
    return "EX-99"


def _latest_release(facts: list[Fact]) -> list[Fact]:
    """The facts of the release with the latest period (a later-filed copy of it wins)."""
    by_filing: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for f in facts:
        if (
            f.source in UNAUDITED_SOURCES
            and f.filed  # no filing date: it cannot be placed in time, so a point-in-time report skips it
            and f.line in RELEASE_LINES
            and f.period_start
        ):
            by_filing[(f.filed, f.accession)].append(f)
    if not by_filing:
        return []
    best = max(by_filing, key=lambda k: (max(f.period_end for f in by_filing[k]), k))
    return by_filing[best]


def release_table(facts: list[Fact]) -> FactsTable | None:
    """The latest release's current period(s) against the prior-year ones, exactly as printed.

    None when there is no release, or when XBRL already reports a period ending on or after the
    release's: the filed (audited/reviewed) XBRL figure wins over the release's, and the XBRL
    quarterly or annual table then shows that period, so the release would only repeat it.
    """
    release = _latest_release(facts)
    if not release:
        return None
    end = max(f.period_end for f in release)
    if end <= latest_xbrl_end(facts):
        return None  # XBRL covers the release's period: its figures win, no release table
    fye = _fye(release, facts)
    cols: list[tuple[str, str]] = []  # (column key, period end), oldest first within each kind
    cells: dict[tuple[str, str], Fact] = {}  # (line, column key) -> fact
    for kind in _KINDS:
        current = [f for f in release if _kind(f) == kind and f.period_end == end]
        if not current:
            continue
        prior_ends = [
            f.period_end
            for f in release
            if _kind(f) == kind
            and ANNUAL_DAYS[0] <= (date.fromisoformat(end) - date.fromisoformat(f.period_end)).days + 1
            <= ANNUAL_DAYS[1]
        ]
        ends = ([max(prior_ends)] if prior_ends else []) + [end]
        for e in ends:
            group = [f for f in release if _kind(f) == kind and f.period_end == e]
            key = _column(kind, group[0], fye)
            cols.append((key, e))
            for f in group:
                cells.setdefault((f.line, key), f)
    rows = []
    for line in RELEASE_LINES:
        values = {key: (cells[(line, key)].value if (line, key) in cells else None) for key, _ in cols}
        if all(v is None for v in values.values()):
            continue
        concept = next(cells[(line, k)].concept for k, _ in cols if (line, k) in cells)
        unit = "USD/shares" if line == "eps_diluted" else "USD"
        rows.append(FactRow(line=line, label=RELEASE_LABELS[line], unit=unit, values=values, concept=concept))
    filed, accession = release[0].filed, release[0].accession
    form = f"8-K {exhibit(release)}"
    printed = sorted({str(f.extra.get("table", "")) for f in release if isinstance(f.extra, dict)} - {""})
    where = f", its table {printed[0]!r}" if printed else ""
    return FactsTable(
        years=[k for k, _ in cols],
        labels={k: f"{k} (to {e})" for k, e in cols},
        rows=rows,
        source=(
            f"company earnings release, {form} filed {filed} ({accession}){where}; "
            "unaudited figures as printed, not XBRL"
        ),
        filed=filed,
        accession=accession,
        form=form,
        unaudited=True,
    )


# -- the sentence --------------------------------------------------------------------------------


def _end(table: FactsTable, key: str) -> str:
    return table.labels.get(key, "").split("to ")[-1].rstrip(")")


def _long(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d:%B} {d.day}, {d.year}"


def _amount(v: float) -> str:
    return ("-" if v < 0 else "") + money(abs(v))


def release_sentences(table: FactsTable | None) -> list[list[str]]:
    """One paragraph: the release's revenue and net income for its quarter (or fiscal year).

    Worded as the company's unaudited figures, with the column keys as period labels so
    `reports.numbers` checks each figure against the release's own `fact_refs` entries.
    """
    if table is None or not table.years:
        return []
    latest = max(_end(table, k) for k in table.years)
    cur = next((k for k in table.years if _end(table, k) == latest and not k[0].isdigit()), None)
    if cur is None:
        return []  # only a year-to-date column: the table shows it, no sentence names it
    i = table.years.index(cur)
    prev = table.years[i - 1] if i and _end(table, table.years[i - 1]) < latest else None
    what = "the fiscal year" if cur.startswith("FY") else "the quarter"
    val = {r.line: r.values for r in table.rows}
    parts = []
    for line, name in (("revenue", "revenue"), ("net_income", "net income")):
        v = val.get(line, {}).get(cur)
        if v is None:
            continue
        old = val.get(line, {}).get(prev) if prev else None
        against = f", against {_amount(old)} in {prev}" if old is not None else ""
        said = f"{name} was {_amount(v)}" if v >= 0 or line != "net_income" else f"net loss was {_amount(-v)}"
        parts.append(said + against)
    if not parts:
        return []
    return [
        [
            f"According to the company's earnings release (unaudited), filed {_long(table.filed)} and "
            f"not yet in XBRL filings, for {cur} ({what} ended {_long(latest)}) " + ", and ".join(parts) + "."
        ]
    ]
