"""Facts -> the standard annual statement table: one concept per line, margins derived.

Separate from `rag/facts.py` (which reads XBRL into facts) because it answers a different
question: which of the reported values a report shows for each fiscal year.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.facts import ANNUAL_DAYS, LINES, period_days
from rag.types import Fact

LABELS = {line: line.replace("_", " ").capitalize() for line in LINES} | {
    "eps_diluted": "Diluted EPS",
    "capex": "Capital expenditures",
}

# Derived rows: (line, label, numerator, denominator), value = numerator / denominator * 100.
MARGINS = (
    ("gross_margin", "Gross margin", "gross_profit", "revenue"),
    ("operating_margin", "Operating margin", "operating_income", "revenue"),
    ("net_margin", "Net margin", "net_income", "revenue"),
)


@dataclass(frozen=True)
class StandardRow:
    """One line of the table: value per fiscal year (None where not reported)."""

    line: str
    label: str
    unit: str
    concept: str  # XBRL concept used for every year of this row; "" for derived rows
    values: dict[int, float | None]
    sources: dict[int, str] = field(default_factory=dict)  # fiscal year -> accession / file name
    formula: str = ""  # derived rows: how the value is computed


@dataclass(frozen=True)
class StandardTable:
    """Annual standard lines for one ticker, most recent fiscal year first."""

    ticker: str
    years: list[int]
    rows: list[StandardRow]

    def row(self, line: str) -> StandardRow:
        for r in self.rows:
            if r.line == line:
                return r
        raise KeyError(line)

    def value(self, line: str, year: int) -> float | None:
        return self.row(line).values.get(year)

    def to_markdown(self) -> str:
        """Exact figures for a prompt or a report: USD in millions, EPS in USD, margins in %."""
        head = "| Line | " + " | ".join(f"FY{y}" for y in self.years) + " |"
        out = [head, "|" + "---|" * (len(self.years) + 1)]
        for r in self.rows:
            cells = [_fmt(r.values.get(y), r.unit) for y in self.years]
            label = f"{r.label} ({_unit_label(r.unit)})"
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(out)


def _unit_label(unit: str) -> str:
    return {"USD": "USD m", "USD/shares": "USD"}.get(unit, unit)


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "USD":
        return f"{v / 1e6:,.0f}"
    return f"{v:,.2f}" if unit == "USD/shares" else f"{v:.1f}"


def _annual(f: Fact) -> bool:
    try:
        days = period_days(f.period_start, f.period_end) if f.period_start else 0
    except ValueError:
        return False
    return ANNUAL_DAYS[0] <= days <= ANNUAL_DAYS[1]


def standard_table(facts: list[Fact], years: int = 3, ticker: str | None = None) -> StandardTable:
    """Per standard line, the value for each of the last `years` fiscal years, plus margins.

    Each line uses one concept for all years (the first variant with data for the most years) so
    a row never mixes definitions; where companyfacts and inline XBRL both report a year, the
    later-filed value wins.
    """
    tickers = {f.ticker for f in facts}
    if ticker is None and len(tickers) > 1:
        raise ValueError(f"facts for several tickers {sorted(tickers)}; pass ticker=")
    ticker = ticker.upper() if ticker else (tickers.pop() if tickers else "")
    annual = [f for f in facts if f.ticker == ticker and f.line in LINES and _annual(f)]
    fys = sorted({f.fiscal_year for f in annual}, reverse=True)[:years]
    best: dict[tuple[str, int], Fact] = {}  # (concept, fiscal year) -> fact
    for f in annual:
        if f.fiscal_year in fys:
            old = best.get((f.concept, f.fiscal_year))
            if old is None or (f.filed, f.period_end) > (old.filed, old.period_end):
                best[(f.concept, f.fiscal_year)] = f
    rows: list[StandardRow] = []
    for line, concepts in LINES.items():
        counts = [sum((c, y) in best for y in fys) for c in concepts]
        concept = concepts[counts.index(max(counts))] if counts and max(counts) else ""
        chosen = {y: best.get((concept, y)) for y in fys}
        unit = next((f.unit for f in chosen.values() if f), "USD/shares" if line == "eps_diluted" else "USD")
        rows.append(
            StandardRow(
                line=line,
                label=LABELS[line],
                unit=unit,
                concept=concept,
                values={y: (f.value if f else None) for y, f in chosen.items()},
                sources={y: f.accession for y, f in chosen.items() if f},
            )
        )
    by_line = {r.line: r for r in rows}
    for line, label, num, den in MARGINS:
        n, d = by_line[num].values, by_line[den].values
        values = {y: (n[y] / d[y] * 100 if n[y] is not None and d[y] else None) for y in fys}
        rows.append(StandardRow(line, label, "%", "", values, formula=f"{num} / {den} * 100"))
    return StandardTable(ticker=ticker, years=fys, rows=rows)
