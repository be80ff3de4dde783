"""Facts -> the standard annual statement table: one concept per line, margins derived.

Separate from `rag/facts.py` (which reads XBRL into facts) because it answers a different
question: which of the reported values a report shows for each fiscal year.

Banks and insurers do not have an industrial income statement: no gross profit, and their top
line is net revenue (banks) or premiums (insurers). `industry` tells them apart from the concepts
a company reports itself, and each industry has its own rows, so a bank's table shows net
interest income and the provision for credit losses instead of a gross margin that cannot exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from rag.facts import ANNUAL_DAYS, LINES, period_days
from rag.types import Fact

LABELS = {line: line.replace("_", " ").capitalize() for line in LINES} | {
    "eps_diluted": "Diluted EPS",
    "capex": "Capital expenditures",
    "provision_for_credit_losses": "Provision for credit losses",
    "policyholder_benefits": "Policyholder benefits and claims",
    "benefits_and_expenses": "Total benefits, losses and expenses",
}

# The income lines a 10-Q quarter and an earnings release both print: the quarter tables show these.
INCOME_LINES = ("revenue", "gross_profit", "operating_income", "net_income", "eps_diluted")
# Rows per industry, in the order a report shows them. "general" is the industrial/consumer table
# every existing report has; it must not change, so it lists exactly the original lines.
GENERAL = "general"
BANK = "bank"
INSURER = "insurer"
INDUSTRY_LINES: dict[str, tuple[str, ...]] = {
    GENERAL: (
        "revenue",
        "gross_profit",
        "operating_income",
        "net_income",
        "eps_diluted",
        "operating_cash_flow",
        "capex",
    ),
    BANK: (
        "revenue",
        "net_interest_income",
        "noninterest_income",
        "provision_for_credit_losses",
        "noninterest_expense",
        "operating_income",
        "net_income",
        "eps_diluted",
        "operating_cash_flow",
        "capex",
    ),
    INSURER: (
        "revenue",
        "premiums_earned",
        "net_investment_income",
        "policyholder_benefits",
        "benefits_and_expenses",
        "operating_income",
        "net_income",
        "eps_diluted",
        "operating_cash_flow",
        "capex",
    ),
}

# Concept preference that differs from `LINES` for an industry. A bank that tags both `Revenues`
# and `RevenuesNetOfInterestExpense` (JPM tags `Revenues` in its 10-K only, with the same annual
# values) gets RevenuesNetOfInterestExpense: it is the bank's income-statement total ("Total net
# revenue") and the one it also reports for quarters, so annual and quarterly revenue are one
# concept. Industrials keep `Revenues` first (see `rag.facts.LINES`).
_PREFERENCE: dict[str, dict[str, tuple[str, ...]]] = {
    BANK: {
        "revenue": ("us-gaap:RevenuesNetOfInterestExpense",)
        + tuple(c for c in LINES["revenue"] if c != "us-gaap:RevenuesNetOfInterestExpense"),
    },
}

# Derived rows: (line, label, numerator, denominator), value = numerator / denominator * 100.
MARGINS = (
    ("gross_margin", "Gross margin", "gross_profit", "revenue"),
    ("operating_margin", "Operating margin", "operating_income", "revenue"),
    ("net_margin", "Net margin", "net_income", "revenue"),
)
INDUSTRY_MARGINS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    GENERAL: MARGINS,
    # Gross margin has no meaning without cost of goods sold: banks and insurers leave it out.
    BANK: MARGINS[1:] + (("efficiency_ratio", "Efficiency ratio", "noninterest_expense", "revenue"),),
    INSURER: MARGINS[1:] + (("loss_ratio", "Loss ratio", "policyholder_benefits", "premiums_earned"),),
}
LABELS |= {line: label for margins in INDUSTRY_MARGINS.values() for line, label, _, _ in margins}

# Concepts that identify an industry (see `industry`).
_BANK_REVENUE = "us-gaap:RevenuesNetOfInterestExpense"
_NET_INTEREST = "us-gaap:InterestIncomeExpenseNet"
_BANK_NONINTEREST = ("us-gaap:NoninterestIncome", "us-gaap:NoninterestExpense")
_PREMIUMS = "us-gaap:PremiumsEarnedNet"
_GROSS_PROFIT = "us-gaap:GrossProfit"

# Facts that are NOT audited XBRL and must never enter a statement row: "press-release" facts are
# figures read from 8-K EX-99.1 earnings releases (unaudited, often non-GAAP-adjacent). This is the
# one place that filter lives; `standard_table` and `reports.financials.quarterly_table` use it.
UNAUDITED_SOURCES = frozenset({"press-release"})


def audited(facts: Iterable[Fact]) -> list[Fact]:
    """The facts a statement row may use: XBRL (companyfacts, inline XBRL, XBRL instance) only."""
    return [f for f in facts if f.source not in UNAUDITED_SOURCES]


def industry(facts: Iterable[Fact]) -> str:
    """"bank", "insurer" or "general", decided by the concepts the company itself reports.

    Deterministic rules, first match wins:
    1. it reports `GrossProfit` -> "general" (a seller of goods, whatever else it tags);
    2. it reports `RevenuesNetOfInterestExpense` (only banks and broker-dealers use that element),
       or `InterestIncomeExpenseNet` together with `NoninterestIncome` or `NoninterestExpense`
       (the bank income statement; an industrial may tag net interest, never "noninterest") -> "bank";
    3. it reports `PremiumsEarnedNet` -> "insurer";
    4. otherwise "general".
    Press-release facts do not count: only what the company filed in XBRL decides.
    """
    concepts = {f.concept for f in audited(facts)}
    if _GROSS_PROFIT in concepts:
        return GENERAL
    if _BANK_REVENUE in concepts or (
        _NET_INTEREST in concepts and any(c in concepts for c in _BANK_NONINTEREST)
    ):
        return BANK
    if _PREMIUMS in concepts:
        return INSURER
    return GENERAL


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
    industry: str = GENERAL  # which row set: "general", "bank" or "insurer"

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
    later-filed value wins. The rows are the company's industry's (`industry`); press-release
    facts are never used (`audited`).
    """
    facts = audited(facts)
    tickers = {f.ticker for f in facts}
    if ticker is None and len(tickers) > 1:
        raise ValueError(f"facts for several tickers {sorted(tickers)}; pass ticker=")
    ticker = ticker.upper() if ticker else (tickers.pop() if tickers else "")
    own = [f for f in facts if f.ticker == ticker]
    kind = industry(own)
    lines = INDUSTRY_LINES[kind]
    annual = [f for f in own if f.line in lines and _annual(f)]
    fys = sorted({f.fiscal_year for f in annual}, reverse=True)[:years]
    best: dict[tuple[str, int], Fact] = {}  # (concept, fiscal year) -> fact
    for f in annual:
        if f.fiscal_year in fys:
            old = best.get((f.concept, f.fiscal_year))
            if old is None or (f.filed, f.period_end) > (old.filed, old.period_end):
                best[(f.concept, f.fiscal_year)] = f
    rows: list[StandardRow] = []
    for line in lines:
        concepts = _PREFERENCE.get(kind, {}).get(line, LINES[line])
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
    for line, label, num, den in INDUSTRY_MARGINS[kind]:
        n, d = by_line[num].values, by_line[den].values
        values = {y: (n[y] / d[y] * 100 if n[y] is not None and d[y] else None) for y in fys}
        rows.append(StandardRow(line, label, "%", "", values, formula=f"{num} / {den} * 100"))
    return StandardTable(ticker=ticker, years=fys, rows=rows, industry=kind)


def fiscal_quarter(end: str, fye: date) -> int:
    """1..4: quarters since the fiscal year end before `end` (FYE ~ Sept 28 -> Dec quarter is Q1)."""
    d = date.fromisoformat(end)
    months = (d.year - fye.year) * 12 + d.month - fye.month + (1 if d.day - fye.day > 15 else 0)
    return (round(months / 3) - 1) % 4 + 1
