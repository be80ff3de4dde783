"""XBRL facts on the real shipped companyfacts JSON and inline-XBRL filings; values checked by hand
against the statements in the filings (e.g. Apple FY2024 "Total net sales | 391,035")."""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from rag.errors import SourceError
from rag.facts import (
    _ix_number,
    facts_from_companyfacts,
    facts_from_inline_xbrl,
    read_facts,
    write_facts,
)
from rag.statements import standard_table
from rag.types import Fact

DATA = Path(__file__).resolve().parents[2] / "data" / "sec"
CF = {
    "AAPL": DATA / "companyfacts" / "companyfacts_CIK0000320193_AAPL.json.gz",
    "NVDA": DATA / "companyfacts" / "companyfacts_CIK0001045810_NVDA.json.gz",
}
INLINE = [
    "aapl-10-k-2024-11-01",
    "amzn-10-k-2025-02-07",
    "meta-10-k-2025-01-30",
    "nvda-10-k-2025-02-26",
    "tsla-10-k-2025-01-30",
    "aapl-10-q-2025-08-01",
    "nvda-10-q-2025-08-27",
]
B = 1_000_000_000


@pytest.fixture(scope="module")
def companyfacts() -> dict[str, list[Fact]]:
    return {t: facts_from_companyfacts(p) for t, p in CF.items()}


@pytest.fixture(scope="module")
def inline() -> dict[str, list[Fact]]:
    """Each sample filing's inline XBRL read once for the module."""
    return {n: facts_from_inline_xbrl(DATA / "filings" / f"{n}.html.gz") for n in INLINE}


def pick(facts: list[Fact], line: str, fy: int, concept: str | None = None, period: str = "annual") -> Fact:
    found = [
        f
        for f in facts
        if f.line == line
        and f.fiscal_year == fy
        and f.extra["period"] == period
        and (concept is None or f.concept == concept)
    ]
    assert len(found) == 1, found
    return found[0]


def test_apple_companyfacts_fy2024(companyfacts):
    facts = companyfacts["AAPL"]
    rev = pick(facts, "revenue", 2024)
    assert rev.value == 391_035_000_000 and rev.unit == "USD"
    assert rev.concept == "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax"
    assert (rev.period_start, rev.period_end, rev.ticker, rev.source) == (
        "2023-10-01",
        "2024-09-28",
        "AAPL",
        "companyfacts",
    )
    assert pick(facts, "net_income", 2024).value == 93_736_000_000
    eps = pick(facts, "eps_diluted", 2024)
    assert (eps.value, eps.unit) == (6.08, "USD/shares")
    # FY2022 is re-reported unchanged by the FY2023 and FY2024 10-Ks: one fact remains, dated by the
    # filing that first reported it (point in time: it was known from 2022-10-28 on).
    fy22 = pick(facts, "revenue", 2022)
    assert (fy22.value, fy22.filed, fy22.accession) == (394_328_000_000, "2022-10-28", "0000320193-22-000108")
    assert all(f.concept.startswith(("us-gaap:", "dei:")) for f in facts)


def test_nvda_companyfacts_fy2025_first_filing(companyfacts):
    rev = pick(companyfacts["NVDA"], "revenue", 2025)
    assert rev.value == 130_497_000_000 and rev.concept == "us-gaap:Revenues"
    assert (rev.period_start, rev.period_end) == ("2024-01-29", "2025-01-26")  # FY2025 ends Jan 2025
    # re-reported unchanged in the FY2026 10-K; the fact keeps the filing that first made it public
    assert (rev.filed, rev.accession) == ("2025-02-26", "0001045810-25-000023")


def test_companyfacts_point_in_time_table(companyfacts):
    """Filtering by filing date before building the table gives what an analyst could know then."""
    known = [f for f in companyfacts["AAPL"] if f.filed <= "2025-06-01"]
    table = standard_table(known, years=3)
    assert table.years == [2024, 2023, 2022]
    assert table.value("revenue", 2024) == 391_035_000_000
    assert standard_table(companyfacts["AAPL"], years=1).years == [2025]


def test_companyfacts_quarters_use_fiscal_years(companyfacts):
    # Apple's December quarter opens the next fiscal year; NVDA's July quarter is in FY(calendar+1).
    q1 = [f for f in companyfacts["AAPL"] if f.line == "revenue" and f.period_end == "2024-12-28"]
    assert [(f.fiscal_year, f.extra["period"], f.value) for f in q1] == [(2025, "quarter", 124_300_000_000)]
    q2 = [f for f in companyfacts["NVDA"] if f.line == "revenue" and f.period_end == "2025-07-27"]
    assert [(f.fiscal_year, f.value) for f in q2] == [(2026, 46_743_000_000)]


@pytest.mark.parametrize(
    ("name", "line", "fy", "value"),
    [
        ("aapl-10-k-2024-11-01", "revenue", 2024, 391_035_000_000),
        ("aapl-10-k-2024-11-01", "net_income", 2024, 93_736_000_000),
        ("aapl-10-k-2024-11-01", "capex", 2024, 9_447_000_000),
        ("nvda-10-k-2025-02-26", "revenue", 2025, 130_497_000_000),
        ("nvda-10-k-2025-02-26", "net_income", 2025, 72_880_000_000),
        ("tsla-10-k-2025-01-30", "revenue", 2024, 97_690_000_000),
        ("amzn-10-k-2025-02-07", "revenue", 2024, 637_959_000_000),
        ("amzn-10-k-2025-02-07", "capex", 2024, 82_999_000_000),  # PaymentsToAcquireProductiveAssets
        ("amzn-10-k-2025-02-07", "net_income", 2022, -2_722_000_000),  # sign="-"
        ("meta-10-k-2025-01-30", "revenue", 2024, 164_501_000_000),
        ("meta-10-k-2025-01-30", "eps_diluted", 2024, 23.86),
    ],
)
def test_inline_xbrl_values(inline, name, line, fy, value):
    facts = [f for f in inline[name] if f.line == line and f.fiscal_year == fy]
    assert facts and {f.value for f in facts} == {value}
    assert {f.source for f in facts} == {"inline-xbrl"}


def test_inline_apple_is_consolidated_annual_only(inline):
    facts = inline["aapl-10-k-2024-11-01"]
    revenue = [f for f in facts if f.line == "revenue"]
    # 54 revenue tags in the file (products, segments, repeats); 3 consolidated fiscal years remain.
    assert [(f.fiscal_year, f.value) for f in revenue] == [
        (2022, 394_328_000_000),
        (2023, 383_285_000_000),
        (2024, 391_035_000_000),
    ]
    assert {f.extra["period"] for f in facts} == {"annual"}
    f = revenue[-1]
    assert (f.ticker, f.form, f.filed, f.accession) == (
        "AAPL",
        "10-K",
        "2024-11-01",
        "aapl-10-k-2024-11-01.html.gz",
    )


def test_inline_10q_keeps_three_month_quarters(inline):
    nvda = [f for f in inline["nvda-10-q-2025-08-27"] if f.line == "revenue"]
    assert [(f.fiscal_year, f.period_end, f.value) for f in nvda] == [
        (2025, "2024-07-28", 30_040_000_000),
        (2026, "2025-07-27", 46_743_000_000),
    ]
    aapl = pick(inline["aapl-10-q-2025-08-01"], "revenue", 2025, period="quarter")
    assert (aapl.value, aapl.form) == (94_036_000_000, "10-Q")


def test_inline_and_companyfacts_agree(companyfacts, inline):
    table_cf = standard_table(companyfacts["AAPL"], years=3)
    table_ix = standard_table(inline["aapl-10-k-2024-11-01"], years=3)
    for line in (
        "revenue",
        "gross_profit",
        "operating_income",
        "net_income",
        "eps_diluted",
        "operating_cash_flow",
        "capex",
    ):
        assert table_cf.value(line, 2024) == table_ix.value(line, 2024), line


def test_standard_table(companyfacts, inline):
    table = standard_table(companyfacts["NVDA"], years=3)
    assert table.ticker == "NVDA" and table.years == [2026, 2025, 2024]
    assert table.row("revenue").concept == "us-gaap:Revenues"
    assert table.value("revenue", 2025) == 130_497_000_000
    assert table.row("capex").concept == "us-gaap:PaymentsToAcquireProductiveAssets"
    gm = table.row("gross_margin")
    assert gm.unit == "%" and gm.formula == "gross_profit / revenue * 100" and gm.concept == ""
    assert gm.values[2025] == pytest.approx(97_858 / 130_497 * 100)
    assert table.row("revenue").sources[2025] == "0001045810-25-000023"
    amzn = standard_table(inline["amzn-10-k-2025-02-07"], years=2)
    assert amzn.years == [2024, 2023]
    assert amzn.value("gross_profit", 2024) is None and amzn.value("gross_margin", 2024) is None
    assert amzn.value("operating_margin", 2024) == pytest.approx(68_593 / 637_959 * 100)
    md = standard_table(inline["aapl-10-k-2024-11-01"]).to_markdown()
    assert "| Revenue (USD m) | 391,035 | 383,285 | 394,328 |" in md
    with pytest.raises(ValueError, match="several tickers"):
        standard_table(companyfacts["AAPL"] + companyfacts["NVDA"])
    assert standard_table(companyfacts["AAPL"] + companyfacts["NVDA"], ticker="aapl").ticker == "AAPL"


@pytest.mark.parametrize(
    ("text", "fmt", "value"),
    [
        ("391,035", "ixt:num-dot-decimal", Decimal("391035")),
        ("6.08", "", Decimal("6.08")),
        ("1.234,5", "ixt:num-comma-decimal", Decimal("1234.5")),
        ("—", "ixt:fixed-zero", Decimal(0)),
        ("—", "ixt:num-dot-decimal", Decimal(0)),
        ("-", "ixt:zerodash", Decimal(0)),
        ("five", "ixt-sec:numwordsen", Decimal(5)),
        ("twenty-one", "ixt-sec:numwordsen", None),
        ("no", "ixt-sec:numwordsen", Decimal(0)),
        ("1,2", "ixt:date-monthname-day-en", None),
        ("abc", "ixt:num-dot-decimal", None),
    ],
)
def test_ix_number_formats(text, fmt, value):
    assert _ix_number(text, fmt) == value


def test_parquet_round_trip(tmp_path, inline):
    facts = inline["nvda-10-k-2025-02-26"]
    path = write_facts(facts, tmp_path / "out" / "facts.parquet")
    assert read_facts(path) == facts
    assert read_facts(write_facts([], tmp_path / "empty.parquet")) == []


def test_reading_one_tickers_facts_filters_in_the_read(tmp_path, inline):
    from dataclasses import replace

    nvda = inline["nvda-10-k-2025-02-26"]
    other = [replace(f, ticker="ZZZ") for f in nvda[:7]]
    path = write_facts(other + nvda, tmp_path / "facts.parquet")
    assert read_facts(path, ticker="NVDA") == nvda
    assert read_facts(path, ticker="ZZZ") == other
    assert read_facts(path, ticker="AAPL") == []


def _write(name: str, data: bytes):
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    return make


def _truncated(src: Path, name: str):
    return lambda tmp_path: _write(name, src.read_bytes()[:20_000])(tmp_path)


BAD_COMPANYFACTS = [
    (_truncated(CF["AAPL"], "companyfacts_CIK0000320193_AAPL.json.gz"), "corrupt or truncated gzip"),
    (_write("companyfacts_CIK1_X.json", random.Random(0).randbytes(3000)), "not EDGAR companyfacts JSON"),
    (_write("companyfacts_CIK1_X.json", b""), "not EDGAR companyfacts JSON"),
    (_write("companyfacts_CIK1_X.json", b'{"cik": 1}'), "not EDGAR companyfacts JSON"),
    (
        _write(
            "companyfacts_CIK1_X.json.gz",
            gzip.compress(
                json.dumps(
                    {
                        "facts": {
                            "us-gaap": {
                                "Revenues": {
                                    "units": {
                                        "USD": [{"start": "2024", "end": "x", "form": "10-K", "val": 1}]
                                    }
                                }
                            }
                        }
                    }
                ).encode()
            ),
        ),
        "unexpected companyfacts layout",
    ),
]
BAD_INLINE = [
    (
        _truncated(DATA / "filings" / "nvda-10-k-2025-02-26.html.gz", "nvda-10-k-2025-02-26.html.gz"),
        "truncated gzip",
    ),
    (_write("nvda-10-k-2025-02-26.html", random.Random(1).randbytes(3000)), "not HTML"),
    (_write("nvda-10-k-2025-02-26.html", b""), "empty file"),
    (
        _write("nvda-10-k-2025-02-26.html", b"<html><body><p>Item 1. Business</p></body></html>"),
        "no ix:nonFraction tags",
    ),
]


@pytest.mark.parametrize(
    ("make", "reason"), BAD_COMPANYFACTS, ids=["truncated", "random", "empty", "no-facts", "bad-date"]
)
def test_bad_companyfacts_raise_source_error(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(SourceError) as err:
        facts_from_companyfacts(path)
    assert path.name in str(err.value) and reason in str(err.value)


@pytest.mark.parametrize(("make", "reason"), BAD_INLINE, ids=["truncated", "random", "empty", "no-ix"])
def test_bad_inline_xbrl_raises_source_error(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(SourceError) as err:
        facts_from_inline_xbrl(path)
    assert path.name in str(err.value) and reason in str(err.value)


def test_bad_parquet_raises_source_error(tmp_path):
    path = tmp_path / "facts.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(SourceError, match="facts.parquet"):
        read_facts(path)
    with pytest.raises(SourceError, match="missing.parquet"):
        read_facts(tmp_path / "missing.parquet")
