"""Exact facts -> the sentences about numbers in "Financial performance" (data-to-text, no model).

Why code and not the model: a 135M model miscopies and invents figures even with the facts in
its prompt, and a 20B one still slips on years. Automated earnings stories (AP with Automated
Insights) solved the same problem with templates over structured results; so do we. Every
sentence here cites the facts source, and every figure it states — including derived ones
(year-on-year changes, margins, free cash flow) — stands in the report's facts table, so a
reader can check each number where it is stated, and `reports.numbers` verifies it by line and
period like any other sentence.

Periods: the latest fiscal year against the one before; where 10-Q facts exist, the latest
fiscal quarter against the same quarter a year earlier (quarters are labelled "Q3 FY2025" by
the fiscal year they belong to, as `rag.facts` assigns them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from rag.facts import QUARTER_DAYS, period_days
from rag.statements import INCOME_LINES, LABELS, audited, fiscal_quarter
from rag.types import Fact
from reports.facts_view import money
from reports.model import FactRow, FactsTable
from reports.numbers import FactRef
from reports.release import release_sentences, release_table

# Lines with a year-on-year change row: (line, label of the change row). The first three are also
# the quarter's change rows. The bank and insurer lines exist only in those companies' tables.
CHANGES = (
    ("revenue", "Revenue change"),
    ("net_income", "Net income change"),
    ("eps_diluted", "Diluted EPS change"),
    ("operating_cash_flow", "Operating cash flow change"),
    ("net_interest_income", "Net interest income change"),
    ("premiums_earned", "Premiums earned change"),
)
# Industry lines the annual paragraph states with their change: (line, subject and verb).
_INDUSTRY_SENTENCES = (
    ("net_interest_income", "Net interest income was"),
    ("premiums_earned", "Premiums earned were"),
)
# Industry ratios (derived rows of `rag.statements`): (line, how the sentence names it).
_INDUSTRY_RATIOS = (
    # "revenue" stays out of the wording: `reports.numbers` would then check the ratio as a revenue figure
    ("efficiency_ratio", "the efficiency ratio"),  # noninterest expense / revenue, as the facts table says
    ("loss_ratio", "the loss ratio (policyholder benefits and claims as a share of premiums earned)"),
)
QUARTER_LINES = INCOME_LINES
QUARTER_LABELS = {line: LABELS[line] for line in QUARTER_LINES}
_FLAT = 0.05  # |change| below this (percent) reads "unchanged": 0.0% would look like a bug


def _pct(a: float | None, b: float | None) -> float | None:
    """Change from b to a in percent; None when it would mislead (missing, zero or negative base)."""
    if a is None or b is None or b <= 0:
        return None
    return (a - b) / b * 100


def _row(table: FactsTable, line: str) -> FactRow | None:
    return next((r for r in table.rows if r.line == line), None)


def extend_annual(table: FactsTable) -> FactsTable:
    """Add the derived rows the sentences state: year-on-year changes and free cash flow."""
    rows = list(table.rows)
    years = table.years
    for line, label in CHANGES:
        row = _row(table, line)
        if row is None:
            continue
        values = {
            y: _pct(row.values.get(y), row.values.get(years[i - 1])) if i else None
            for i, y in enumerate(years)
        }
        if any(v is not None for v in values.values()):
            rows.append(
                FactRow(
                    line=f"{line}_change",
                    label=label,
                    unit="%",
                    values=values,
                    concept=f"derived: ({line} - prior year) / prior year * 100",
                )
            )
    ocf, capex = _row(table, "operating_cash_flow"), _row(table, "capex")
    if ocf and capex:
        fcf = {
            y: ocf.values[y] - capex.values[y]
            if ocf.values.get(y) is not None and capex.values.get(y) is not None
            else None
            for y in years
        }
        if any(v is not None for v in fcf.values()):
            rows.append(
                FactRow(
                    line="free_cash_flow",
                    label="Free cash flow",
                    unit="USD",
                    values=fcf,
                    concept="derived: operating_cash_flow - capex",
                )
            )
    return table.model_copy(update={"rows": rows})


@dataclass(frozen=True)
class _Quarter:
    fiscal_year: int
    q: int
    end: str

    @property
    def label(self) -> str:
        return f"Q{self.q} FY{self.fiscal_year}"


def quarterly_table(facts: list[Fact]) -> FactsTable | None:
    """Latest fiscal quarter vs the same quarter a year earlier, with changes and margins.

    Only audited XBRL facts: an earnings release's unaudited quarter (`source == "press-release"`)
    must not become the "latest reported quarter" (`rag.statements.audited`).
    """
    facts = audited(facts)
    annual_ends = [
        f.period_end for f in facts if f.period_start and period_days(f.period_start, f.period_end) > 300
    ]
    quarter = [
        f
        for f in facts
        if f.line in QUARTER_LINES
        and f.period_start
        and QUARTER_DAYS[0] <= period_days(f.period_start, f.period_end) <= QUARTER_DAYS[1]
    ]
    if not quarter or not annual_ends:
        return None
    fye = date.fromisoformat(max(annual_ends))
    latest_end = max(f.period_end for f in quarter)
    if latest_end <= max(annual_ends):  # the latest quarter is already inside a reported year
        return None
    cur = _Quarter(
        max(f.fiscal_year for f in quarter if f.period_end == latest_end),
        fiscal_quarter(latest_end, fye),
        latest_end,
    )
    prev_end = [
        f.period_end
        for f in quarter
        if 350 <= (date.fromisoformat(latest_end) - date.fromisoformat(f.period_end)).days <= 380
    ]
    prev = _Quarter(cur.fiscal_year - 1, cur.q, max(prev_end)) if prev_end else None
    cols = [q for q in (prev, cur) if q]

    def value(line: str, q: _Quarter) -> float | None:
        found = [f for f in quarter if f.line == line and f.period_end == q.end]
        return max(found, key=lambda f: f.filed).value if found else None

    rows: list[FactRow] = []
    for line in QUARTER_LINES:
        values = {q.label: value(line, q) for q in cols}
        if values[cur.label] is None:
            continue
        unit = "USD/shares" if line == "eps_diluted" else "USD"
        rows.append(
            FactRow(
                line=line,
                label=QUARTER_LABELS[line],
                unit=unit,
                values=values,
                concept=next(f.concept for f in quarter if f.line == line),
            )
        )
    by = {r.line: r for r in rows}
    for line, label, num in (
        ("gross_margin", "Gross margin", "gross_profit"),
        ("operating_margin", "Operating margin", "operating_income"),
        ("net_margin", "Net margin", "net_income"),
    ):
        if num in by and "revenue" in by:
            vals = {
                q.label: (
                    by[num].values[q.label] / by["revenue"].values[q.label] * 100
                    if by[num].values[q.label] is not None and by["revenue"].values[q.label]
                    else None
                )
                for q in cols
            }
            rows.append(
                FactRow(
                    line=line, label=label, unit="%", values=vals, concept=f"derived: {num} / revenue * 100"
                )
            )
    if prev:
        for line, label in CHANGES[:3]:
            if line in by:
                vals = {
                    prev.label: None,
                    cur.label: _pct(by[line].values[cur.label], by[line].values[prev.label]),
                }
                if vals[cur.label] is not None:
                    rows.append(
                        FactRow(
                            line=f"{line}_change",
                            label=label,
                            unit="%",
                            values=vals,
                            concept=f"derived: ({line} - year-ago quarter) / year-ago quarter * 100",
                        )
                    )
    sources = sorted({f.accession for f in quarter if f.period_end in (cur.end, prev.end if prev else "")})
    return FactsTable(
        years=[q.label for q in cols],
        labels={q.label: f"{q.label} (to {q.end})" for q in cols},
        rows=rows,
        source=f"10-Q XBRL facts; filings {', '.join(sources[:3])}",
    )


def report_facts(facts: list[Fact]) -> FactsTable | None:
    """The report's facts table: annual lines + derived rows, and the latest quarter when reported."""
    from reports.facts_view import facts_table

    annual = facts_table(facts)
    if annual is None:  # no XBRL year: no report table, and a release alone does not make one
        return None
    update = {"quarterly": quarterly_table(facts), "release": release_table(facts)}
    return extend_annual(annual).model_copy(update=update)


def fact_refs(table: FactsTable | None) -> list[FactRef]:
    """Every figure of the annual, quarterly and release tables with its line and period, for the
    checker. Release columns keep their own labels ("Q3 FY2025", "9M FY2025"): a period no XBRL
    table has, so a release figure verifies only for the release's period."""
    out: list[FactRef] = []
    extra = (table.quarterly, table.release) if table else ()
    for t, annual in ((table, True), *((t, False) for t in extra)):
        if t is None:
            continue
        for row in t.rows:
            for col, v in row.values.items():
                if v is not None:
                    out.append(FactRef(row.line, f"FY{col}" if annual else col, v, row.unit))
    return out


# -- sentences ---------------------------------------------------------------------------------


def _amount(v: float) -> str:
    return ("-" if v < 0 else "") + money(abs(v))


def _change(pct: float | None, prior: str) -> str:
    if pct is None:
        return ""
    if abs(pct) < _FLAT:
        return f", unchanged from {prior}"
    return f", {'up' if pct > 0 else 'down'} {abs(pct):.1f}% from {prior}"


def _income(label: str, v: float) -> str:
    """ "Net income was $X" or, for a negative value, "the company reported a net loss of $X"."""
    if v >= 0:
        return f"{label} was {_amount(v)}"
    return f"the company reported a {label.lower().replace(' income', '')} loss of {money(-v)}"


Lookup = Callable[[str, str | None], float | None]  # (line, column key) -> value


def _lookup(table: FactsTable) -> Lookup:
    val = {r.line: r.values for r in table.rows}
    return lambda line, col: val.get(line, {}).get(col) if col else None


def _versus(get: Lookup, line: str, cur: str, prev: str | None, prev_label: str) -> str:
    """ ", up 2.0% from $383,285 million in FY2023" (or "" when the prior period has no value)."""
    old = get(line, prev)
    return _change(get(f"{line}_change", cur), f"{_amount(old)} in {prev_label}") if old is not None else ""


def _net_income(get: Lookup, cur: str, prev: str | None, cur_label: str, prev_label: str, tail: str) -> str:
    """The net income sentence both the annual and the quarterly paragraph state."""
    s = _income("Net income", get("net_income", cur)) + f" in {cur_label}"
    s += _versus(get, "net_income", cur, prev, prev_label) + tail
    return s[0].upper() + s[1:] + "."


def annual_sentences(table: FactsTable, company: str, release: bool = True) -> list[list[str]]:
    """Paragraphs (lists of sentences, no citation markers) about the latest fiscal year, and, with
    `release`, the one about a later earnings release (`reports.release.release_sentences`)."""
    years = table.years
    if not years:
        return release_sentences(table.release) if release else []
    y = years[-1]
    p = years[-2] if len(years) > 1 else None
    get = _lookup(table)
    first: list[str] = []
    rev = get("revenue", y)
    if rev is not None:
        first.append(
            f"In fiscal {y} (FY{y}), {company} reported revenue of {_amount(rev)}"
            f"{_versus(get, 'revenue', y, p, f'FY{p}')}."
        )
    first += _industry_lines(get, y, p)
    if get("net_income", y) is not None:
        nm = get("net_margin", y)
        margin = f", a net margin of {nm:.1f}%" if nm is not None else ""
        first.append(_net_income(get, y, p, f"FY{y}", f"FY{p}", margin))
    eps = get("eps_diluted", y)
    if eps is not None:
        prior = f" versus ${get('eps_diluted', p):,.2f} in FY{p}" if get("eps_diluted", p) is not None else ""
        first.append(f"Diluted earnings per share were ${eps:,.2f} in FY{y}{prior}.")
    second: list[str] = []
    margins = [
        (lbl, get(line, y), get(line, p))
        for line, lbl in (("gross_margin", "gross margin"), ("operating_margin", "operating margin"))
        if get(line, y) is not None
    ]
    if margins:
        parts = [
            f"{lbl} was {cur:.1f}%" + (f" ({old:.1f}% in FY{p})" if old is not None else "")
            for lbl, cur, old in margins
        ]
        s = " and ".join(parts) + f" in FY{y}."
        second.append(s[0].upper() + s[1:])
    second += _industry_ratios(get, y, p)
    ocf = get("operating_cash_flow", y)
    if ocf is not None:
        prior = f"FY{p}" if get("operating_cash_flow", p) is not None else ""
        s = f"Operating cash flow was {_amount(ocf)} in FY{y}" + (
            _change(get("operating_cash_flow_change", y), prior) if prior else ""
        )
        capex, fcf = get("capex", y), get("free_cash_flow", y)
        if capex is not None and fcf is not None:
            s += f"; after capital expenditures of {_amount(capex)}, free cash flow was {_amount(fcf)}"
        second.append(s + ".")
    later = release_sentences(table.release) if release else []
    return [para for para in (first, second) if para] + later


def _industry_lines(get: Lookup, y: str, p: str | None) -> list[str]:
    """Banks' net interest income and insurers' premiums, with the change from the prior year."""
    return [
        f"{label} {_amount(v)} in FY{y}{_versus(get, line, y, p, f'FY{p}')}."
        for line, label in _INDUSTRY_SENTENCES
        if (v := get(line, y)) is not None
    ]


def _industry_ratios(get: Lookup, y: str, p: str | None) -> list[str]:
    """The bank's and insurer's own yardsticks, in place of the gross margin they do not have."""
    out = []
    for line, name in _INDUSTRY_RATIOS:
        cur, old = get(line, y), get(line, p)
        if cur is not None:
            prior = f" ({old:.1f}% in FY{p})" if old is not None else ""
            out.append(f"{name[0].upper()}{name[1:]} was {cur:.1f}% in FY{y}{prior}.")
    return out


def quarter_sentences(q: FactsTable | None) -> list[list[str]]:
    """One paragraph on the latest fiscal quarter against the year-ago quarter."""
    if q is None or not q.years:
        return []
    cur = q.years[-1]
    prev = q.years[-2] if len(q.years) > 1 else None
    get = _lookup(q)
    out: list[str] = []
    end = q.labels.get(cur, cur).split("to ")[-1].rstrip(")")
    rev = get("revenue", cur)
    if rev is not None:
        out.append(
            f"In the latest reported quarter, {cur} (ended {_long_date(end)}), revenue was {_amount(rev)}"
            f"{_versus(get, 'revenue', cur, prev, str(prev))}."
        )
    if get("net_income", cur) is not None:
        eps = get("eps_diluted", cur)
        tail = f", with diluted earnings per share of ${eps:,.2f}" if eps is not None else ""
        out.append(_net_income(get, cur, prev, cur, str(prev), tail))
    gm = get("gross_margin", cur)
    if gm is not None:
        old = get("gross_margin", prev)
        out.append(
            f"Gross margin in {cur} was {gm:.1f}%"
            + (f", against {old:.1f}% in {prev}" if old is not None else "")
            + "."
        )
    return [out] if out else []


def _long_date(iso: str) -> str:
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d:%B} {d.day}, {d.year}"
