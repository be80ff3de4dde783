"""Exact XBRL facts -> the report's facts table and the text the model sees as a numbered source.

Numbers are shown exactly as reported: USD amounts in millions only when the reported value is a
whole number of millions (as large filers report), otherwise in full dollars; EPS in dollars and
cents; margins are derived (numerator / denominator, one decimal) and labelled as derived.
"""

from __future__ import annotations

from rag.statements import audited, standard_table
from rag.types import Fact
from reports.model import FactRow, FactsTable

# Fact.source -> how the facts table names its origin.
ORIGIN_LABELS = {
    "companyfacts": "SEC companyfacts",
    "inline-xbrl": "inline XBRL",
    "xbrl-instance": "XBRL instance",
}


def money(value: float) -> str:
    if value % 1_000_000 == 0:
        return f"${value / 1_000_000:,.0f} million"
    return f"${value:,.0f}"


def format_fact(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "USD":
        return ("-" if value < 0 else "") + money(abs(value))
    if unit == "USD/shares":
        return f"${value:,.2f}"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:,.0f} {unit}"


def facts_table(facts: list[Fact], years: int = 3) -> FactsTable | None:
    """The last `years` fiscal years of the standard lines; None when no annual line has a value."""
    table = standard_table(facts, years=years)
    rows = [r for r in table.rows if any(v is not None for v in r.values.values())]
    if not rows:
        return None
    kinds = sorted({f.source for f in audited(facts)})  # press-release figures never reach the table
    accessions = sorted({a for r in rows for a in r.sources.values()})
    origin = " + ".join(ORIGIN_LABELS.get(k, k) for k in kinds)
    ordered = sorted(table.years)
    return FactsTable(
        years=[str(y) for y in ordered],
        rows=[
            FactRow(
                line=r.line,
                label=r.label,
                unit=r.unit,
                values={str(y): r.values.get(y) for y in ordered},
                concept=r.concept or f"derived: {r.formula}",
            )
            for r in rows
        ],
        source=f"{origin}; filings {', '.join(accessions[:4])}" if accessions else origin,
    )


def facts_prompt_text(table: FactsTable) -> str:
    """One line per standard line, fiscal years oldest first, e.g. "Revenue: FY2023 $383,285 million; …"."""
    lines = []
    for row in table.rows:
        cells = "; ".join(f"FY{y} {format_fact(row.values.get(y), row.unit)}" for y in table.years)
        label = f"{row.label} (derived)" if row.concept.startswith("derived") else row.label
        lines.append(f"{label}: {cells}.")
    return " ".join(lines)
