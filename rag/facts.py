"""XBRL financial facts -> one tidy table of `Fact`s for a few standard statement lines.

Reports must take numbers from XBRL, not from the model, so we keep exact reported values with
their concept, period and accession. Two inputs give the same table: EDGAR companyfacts JSON
(every filing's facts, re-reported periods included) and the inline XBRL of a single 10-K/10-Q.
Only consolidated totals are kept (contexts with dimension members are segment breakdowns), and
only the period length the form is about: fiscal years for 10-K, fiscal quarters for 10-Q.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from rag.atomic import atomic_path
from rag.errors import SourceError
from rag.sources.filings import filing_meta, ix_value
from rag.sources.html_text import decompress, load_html, read_raw
from rag.types import Fact

# Standard line -> concepts companies actually use, in order of preference. `Revenues` comes
# first: when a filer tags both and they differ, `Revenues` is the income-statement total, while
# RevenueFromContractWithCustomer... leaves out lease and other non-ASC 606 revenue.
# `RevenuesNetOfInterestExpense` is last here because only banks and broker-dealers tag it (JPM's
# "Total net revenue", GS's "Net revenues"); `rag.statements` moves it first for those companies.
# Every concept name below is a us-gaap element as filers spell it. The bank and insurer ones were
# checked against JPM's 2024 10-K presentation linkbase (InterestIncomeExpenseNet, NoninterestIncome,
# ProvisionForLoanLeaseAndOtherLosses, NoninterestExpense, RevenuesNetOfInterestExpense), the
# income-statement concepts edgartools found across 130 bank and 84 insurer filings, and UNH's
# FY2024 inline XBRL (PremiumsEarnedNet, PolicyholderBenefitsAndClaimsIncurredNet,
# InvestmentIncomeInterestAndDividend).
LINES: dict[str, tuple[str, ...]] = {
    "revenue": (
        "us-gaap:Revenues",
        "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax",
        "us-gaap:SalesRevenueNet",
        "us-gaap:RevenueFromContractWithCustomerIncludingAssessedTax",
        "us-gaap:RevenuesNetOfInterestExpense",  # banks, broker-dealers: revenue net of interest expense
    ),
    "gross_profit": ("us-gaap:GrossProfit",),
    "operating_income": ("us-gaap:OperatingIncomeLoss",),
    "net_income": ("us-gaap:NetIncomeLoss", "us-gaap:ProfitLoss"),
    "eps_diluted": ("us-gaap:EarningsPerShareDiluted", "us-gaap:EarningsPerShareBasicAndDiluted"),
    "operating_cash_flow": (
        "us-gaap:NetCashProvidedByUsedInOperatingActivities",
        "us-gaap:NetCashProvidedByUsedInOperatingActivitiesContinuingOperations",
    ),
    "capex": (
        "us-gaap:PaymentsToAcquirePropertyPlantAndEquipment",
        "us-gaap:PaymentsToAcquireProductiveAssets",
        "us-gaap:PaymentsForCapitalImprovements",
    ),
    # --- banks -------------------------------------------------------------------------------
    "net_interest_income": ("us-gaap:InterestIncomeExpenseNet",),  # "Net interest income"
    "noninterest_income": ("us-gaap:NoninterestIncome",),  # "Total noninterest income"
    "provision_for_credit_losses": (
        "us-gaap:ProvisionForLoanLeaseAndOtherLosses",  # "Provision for credit losses" (JPM, BAC)
        "us-gaap:ProvisionForLoanAndLeaseLosses",  # pre-CECL element
        "us-gaap:FinancingReceivableCreditLossExpenseReversal",  # CECL-era element some banks use
    ),
    "noninterest_expense": ("us-gaap:NoninterestExpense",),  # "Total noninterest expense"
    # --- insurers ----------------------------------------------------------------------------
    "premiums_earned": ("us-gaap:PremiumsEarnedNet",),  # "Net premiums earned" / UNH "Premiums"
    "policyholder_benefits": (
        "us-gaap:PolicyholderBenefitsAndClaimsIncurredNet",  # "Losses and loss adjustment expenses"
    ),
    "net_investment_income": (
        "us-gaap:NetInvestmentIncome",  # P&C and life insurers (TRV, ALL, MET)
        "us-gaap:InvestmentIncomeInterestAndDividend",  # health insurers (UNH "Investment and other income")
    ),
    "benefits_and_expenses": ("us-gaap:BenefitsLossesAndExpenses",),  # insurers' "Total expenses"
}
_CONCEPT_LINE = {c: line for line, concepts in LINES.items() for c in concepts}
ANNUAL_DAYS = (350, 380)  # 52/53-week fiscal years included
QUARTER_DAYS = (80, 100)
_DASHES = r"[-\u2013\u2014\s]*"  # a dash in a number cell means zero
_MAX_SCALE = 30  # inline XBRL scales in practice: -2 (percent) .. 12; anything beyond is corrupt
_CF_FILE_RE = re.compile(r"companyfacts_CIK\d+_(?P<ticker>[A-Za-z0-9.\-]+)\.json", re.I)
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
# ixt-sec:numwordsen: "five" (years), "no" (impairment); compound numbers are left unread.
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_WORDS |= {"no": 0, "none": 0}


def period_days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def _period_kind(form: str, start: str, end: str) -> str | None:
    """Period kind the form is about: "annual" (fiscal years) for 10-K, "quarter" for 10-Q, else None."""
    if not start or not end:
        return None
    n = period_days(start, end)
    if form.startswith("10-K") and ANNUAL_DAYS[0] <= n <= ANNUAL_DAYS[1]:
        return "annual"
    if form.startswith("10-Q") and QUARTER_DAYS[0] <= n <= QUARTER_DAYS[1]:
        return "quarter"
    return None


def _fiscal_year(end: str, kind: str, fye: tuple[int, int] | None) -> int:
    """Annual: year of the period end (NVDA's year to Jan 2025 is FY2025). Quarter: the fiscal
    year whose end (month, day `fye`) follows it, so Apple's December quarter is next year's Q1."""
    d = date.fromisoformat(end)
    if kind == "annual" or fye is None:
        return d.year
    year_end = date(d.year, fye[0], min(fye[1], 28))
    return d.year if d <= year_end + timedelta(days=10) else d.year + 1


# --- companyfacts JSON ---------------------------------------------------------------------------


def facts_from_companyfacts(path: Path, ticker: str | None = None) -> list[Fact]:
    """Standard-line facts from an EDGAR companyfacts file (.json or .json.gz).

    A period is re-reported by every later filing; the latest filed value wins (restatements).
    """
    path = Path(path)
    try:
        data = json.loads(decompress(read_raw(path), path))
        groups = data["facts"]
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # RecursionError: deep nesting (fuzz)
        raise SourceError(f"{path}: not EDGAR companyfacts JSON ({type(e).__name__}: {e})") from e
    m = _CF_FILE_RE.search(path.name)
    ticker = (ticker or (m.group("ticker") if m else "")).upper()
    try:
        rows: list[tuple[str, str, dict, str]] = []  # (concept, unit, record, period kind)
        for concept in _CONCEPT_LINE:
            prefix, name = concept.split(":")
            for unit, records in groups.get(prefix, {}).get(name, {}).get("units", {}).items():
                for r in records:
                    kind = _period_kind(str(r.get("form", "")), r.get("start", ""), r.get("end", ""))
                    # NaN/Infinity are legal in Python's JSON but are no reported value
                    if kind and r.get("val") is not None and math.isfinite(float(r["val"])):
                        rows.append((concept, unit, r, kind))
        annual_ends = [r["end"] for _, _, r, k in rows if k == "annual"]
        last = date.fromisoformat(max(annual_ends)) if annual_ends else None
        fye = (last.month, last.day) if last else None  # latest fiscal year end: (month, day)
        latest: dict[tuple[str, str, str, str], Fact] = {}
        for concept, unit, r, kind in rows:
            fact = Fact(
                ticker=ticker,
                line=_CONCEPT_LINE[concept],
                concept=concept,
                value=float(r["val"]),
                unit=unit,
                fiscal_year=_fiscal_year(r["end"], kind, fye),
                period_start=r["start"],
                period_end=r["end"],
                form=r["form"],
                filed=str(r.get("filed", "")),
                accession=str(r.get("accn", "") or path.name),
                source="companyfacts",
                extra={"period": kind, **({"frame": r["frame"]} if r.get("frame") else {})},
            )
            # Later filings repeat earlier periods. Keep the FIRST filing of each distinct value, and
            # restatements (a new value) as their own rows: a point-in-time report (as_of) must see
            # only what had been filed by then; `standard_table` picks the latest-filed among those.
            key = (concept, unit, fact.period_start, fact.period_end, fact.value)
            old = latest.get(key)
            if old is None or (fact.filed, fact.accession) < (old.filed, old.accession):
                latest[key] = fact
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise SourceError(f"{path}: unexpected companyfacts layout ({type(e).__name__}: {e})") from e
    return sorted(latest.values(), key=lambda f: (f.line, f.period_end, f.concept))


# --- inline XBRL ---------------------------------------------------------------------------------


def _ix_number(text: str, fmt: str) -> Decimal | None:
    """Apply the inline XBRL transformation named in `format`; None when we cannot read it."""
    fmt = fmt.split(":")[-1].lower().replace("-", "")
    text = text.strip()
    if fmt in ("fixedzero", "zerodash") or (fmt.startswith("num") and re.fullmatch(_DASHES, text)):
        return Decimal(0)
    if fmt == "numwordsen":
        n = _WORDS.get(text.lower())
        return Decimal(n) if n is not None else None
    if fmt in ("numcommadecimal",):
        text = text.replace(".", "").replace(" ", "").replace(",", ".")
    elif fmt in ("", "numdotdecimal", "numdotdecimalapos"):
        text = re.sub(r"[^\d.]", "", text)
    else:
        return None
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _contexts(soup: BeautifulSoup) -> dict[str, tuple[str, str]]:
    """Context id -> (start, end) for consolidated contexts; instants as ("", date).

    Contexts with a segment or scenario carry dimension members (a product line, a region); we
    want the consolidated totals only, so those are left out.
    """
    out: dict[str, tuple[str, str]] = {}
    for ctx in soup.find_all("xbrli:context"):
        if ctx.find(["xbrli:segment", "xbrli:scenario"]) is not None:
            continue
        start, end, instant = (ctx.find(f"xbrli:{t}") for t in ("startdate", "enddate", "instant"))
        if start is not None and end is not None:
            out[ctx.get("id", "")] = (start.get_text(strip=True), end.get_text(strip=True))
        elif instant is not None:
            out[ctx.get("id", "")] = ("", instant.get_text(strip=True))
    return out


def _units(soup: BeautifulSoup) -> dict[str, str]:
    """Unit id -> "USD", "shares", "USD/shares" (measure local names, divide as a/b)."""

    def measure(tag: Tag | None) -> str:
        return tag.get_text(strip=True).split(":")[-1] if tag is not None else ""

    out: dict[str, str] = {}
    for unit in soup.find_all("xbrli:unit"):
        div = unit.find("xbrli:divide")
        if div is not None:
            num = measure(div.find("xbrli:unitnumerator"))
            den = measure(div.find("xbrli:unitdenominator"))
            out[unit.get("id", "")] = f"{num}/{den}"
        else:
            out[unit.get("id", "")] = measure(unit.find("xbrli:measure"))
    return out


def _canonical_prefixes(soup: BeautifulSoup) -> dict[str, str]:
    """Map the document's namespace prefixes to "us-gaap"/"dei" by namespace URI, not by spelling."""
    root = soup.find("html")
    out: dict[str, str] = {}
    for attr, uri in root.attrs.items() if root is not None else []:
        if attr.startswith("xmlns:"):
            if "fasb.org/us-gaap/" in uri:
                out[attr[6:]] = "us-gaap"
            elif "xbrl.sec.gov/dei/" in uri:
                out[attr[6:]] = "dei"
    return out or {"us-gaap": "us-gaap", "dei": "dei"}


def _parse_fye(text: str) -> tuple[int, int] | None:
    """dei:CurrentFiscalYearEndDate as printed: "--09-27", "1/25", "12-31", "September 28"."""
    month = day = 0
    m = re.search(r"(\d{1,2})\s*[-/]\s*(\d{1,2})\s*$", text)
    if m:
        month, day = int(m.group(1)), int(m.group(2))
    elif m := re.search(r"([A-Za-z]{3})[A-Za-z]*\.?\s*(\d{1,2})", text):
        month, day = _MONTHS.get(m.group(1).lower(), 0), int(m.group(2))
    return (month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None


def facts_from_inline_xbrl(path: Path, ticker: str | None = None) -> list[Fact]:
    """Standard-line facts from the `ix:nonFraction` tags of one 10-K/10-Q inline XBRL document.

    The same fact is usually tagged several times (statement, MD&A, notes); one is kept per
    concept, context and unit. Primary documents carry no accession number, so `accession`
    is the file name unless the name contains one.
    """
    path = Path(path)
    raw = decompress(read_raw(path), path)
    soup = load_html(raw, path)
    meta = filing_meta(path, raw, soup, ticker)
    form = meta.form
    tags = soup.find_all("ix:nonfraction")
    if not tags:
        raise SourceError(f"{path}: no ix:nonFraction tags (is this an inline XBRL 10-K/10-Q?)")
    contexts, units, prefixes = _contexts(soup), _units(soup), _canonical_prefixes(soup)
    fye = _parse_fye(ix_value(soup, "dei:CurrentFiscalYearEndDate"))
    seen: set[tuple[str, str, str]] = set()
    facts: list[Fact] = []
    for tag in tags:
        prefix, _, name = (tag.get("name") or "").partition(":")
        concept = f"{prefixes.get(prefix, prefix)}:{name}"
        line = _CONCEPT_LINE.get(concept)
        ctx, unit_id = tag.get("contextref", ""), tag.get("unitref", "")
        if line is None or ctx not in contexts or tag.get("xsi:nil") == "true":
            continue
        start, end = contexts[ctx]
        try:
            kind = _period_kind(form, start, end)
        except ValueError:  # malformed date in a context
            continue
        if kind is None or (concept, ctx, unit_id) in seen:
            continue
        value = _ix_number(tag.get_text(""), tag.get("format", ""))
        if value is None:
            continue
        try:
            scale = int(tag.get("scale") or 0)
        except ValueError:
            continue
        if abs(scale) > _MAX_SCALE:
            continue
        value *= Decimal(10) ** scale
        seen.add((concept, ctx, unit_id))
        facts.append(
            Fact(
                ticker=meta.ticker,
                line=line,
                concept=concept,
                value=float(-value if tag.get("sign") == "-" else value),
                unit=units.get(unit_id, unit_id),
                fiscal_year=_fiscal_year(end, kind, fye),
                period_start=start,
                period_end=end,
                form=form,
                filed=meta.date,
                accession=meta.accession or path.name,
                source="inline-xbrl",
                extra={"period": kind, "context": ctx, "decimals": tag.get("decimals", "")},
            )
        )
    return sorted(facts, key=lambda f: (f.line, f.period_end, f.concept))


# --- parquet -------------------------------------------------------------------------------------

_COLUMNS = [f for f in Fact.__dataclass_fields__]


def write_facts(facts: list[Fact], path: Path) -> Path:
    """Write facts as parquet (pyarrow), atomically; `extra` is stored as a JSON string column."""
    import pandas as pd  # late: keeps `import rag.facts` cheap for callers that only parse

    rows = [{**asdict(f), "extra": json.dumps(f.extra, sort_keys=True)} for f in facts]
    dtypes = {c: "str" for c in _COLUMNS} | {"value": "float64", "fiscal_year": "int64"}
    df = pd.DataFrame(rows, columns=_COLUMNS).astype(dtypes)
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=False)
    return path


def read_facts(path: Path, ticker: str | None = None) -> list[Fact]:
    """Read a table written by `write_facts` back into `Fact`s; `ticker`: only that company's rows,
    filtered inside the parquet read (a report run reads once per ticker: at 500 tickers the whole
    table is 107,600 rows, one company's a few hundred)."""
    import pandas as pd

    path = Path(path)
    try:
        filters = [("ticker", "==", ticker)] if ticker else None
        df = pd.read_parquet(path, engine="pyarrow", filters=filters)
    except (OSError, ValueError) as e:
        raise SourceError(f"{path}: cannot read facts parquet ({type(e).__name__}: {e})") from e
    missing = set(_COLUMNS) - set(df.columns)
    if missing:
        raise SourceError(f"{path}: not a facts table (missing columns {sorted(missing)})")
    # Column lists, not `to_dict("records")`: ingest reads whole tables; at 500 tickers (107,600
    # rows) records took 5.2 s a read, columns 1.4 s (bench/load.py).
    # `extra` holds a few dozen distinct JSON strings: each is parsed once, every row gets a copy.
    cols = {c: df[c].tolist() for c in _COLUMNS}
    cols["value"] = [float(v) for v in cols["value"]]
    cols["fiscal_year"] = [int(v) for v in cols["fiscal_year"]]
    parsed: dict[str, dict] = {}
    for text in set(cols["extra"]):
        parsed[text] = json.loads(text) if text else {}
    cols["extra"] = [dict(parsed[text]) for text in cols["extra"]]
    return [Fact(*row) for row in zip(*(cols[c] for c in _COLUMNS), strict=True)]
