"""Bank and insurer statement lines, on real filings: JPMorgan's companyfacts (a bank: revenue is
RevenuesNetOfInterestExpense) and UnitedHealth's FY2024 10-K inline XBRL (an insurer: premiums,
medical costs as PolicyholderBenefitsAndClaimsIncurredNet). Provenance: tests/fixtures/companyfacts/README.md.

Values checked by hand: JPM "Total net revenue" FY2024 $177,556 million and net income $58,471
million (2024 Form 10-K); UNH FY2024 premiums $308,810 million, medical costs $264,185 million
(its reported medical care ratio, 85.5%), "Investment and other income" $5,202 million.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag.facts import facts_from_companyfacts, facts_from_inline_xbrl
from rag.statements import BANK, GENERAL, INDUSTRY_LINES, INSURER, industry, standard_table
from rag.types import Fact
from reports.facts_view import facts_table
from reports.financials import annual_sentences, fact_refs, quarter_sentences, report_facts
from reports.numbers import check_sentence

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "companyfacts"
DATA = ROOT / "data" / "sec"
M = 1_000_000


@pytest.fixture(scope="module")
def jpm() -> list[Fact]:
    return facts_from_companyfacts(FIX / "companyfacts_CIK0000019617_JPM.json.gz")


@pytest.fixture(scope="module")
def unh() -> list[Fact]:
    return facts_from_inline_xbrl(FIX / "unh-10-k-2025-02-27.html.gz")


@pytest.fixture(scope="module")
def aapl() -> list[Fact]:
    return facts_from_companyfacts(next((DATA / "companyfacts").glob("*AAPL*")))


def test_industry_is_decided_by_the_reported_concepts(jpm, unh, aapl):
    assert industry(jpm) == BANK  # RevenuesNetOfInterestExpense: banks and broker-dealers only
    assert industry(unh) == INSURER  # PremiumsEarnedNet, no GrossProfit
    assert industry(aapl) == GENERAL  # GrossProfit
    # AMZN and META report no GrossProfit either, and still are not banks or insurers
    for name in ("amzn-10-k-2025-02-07", "meta-10-k-2025-01-30"):
        assert industry(facts_from_inline_xbrl(DATA / "filings" / f"{name}.html.gz")) == GENERAL
    # an industrial that tags InterestIncomeExpenseNet (net interest, non-operating) is no bank
    net_interest = dataclasses.replace(aapl[0], line="net_interest_income", concept="us-gaap:InterestIncomeExpenseNet")
    assert industry([f for f in aapl if f.concept != "us-gaap:GrossProfit"] + [net_interest]) == GENERAL


def test_jpm_bank_table_uses_net_revenue_and_has_no_gross_margin(jpm):
    table = standard_table(jpm)
    assert (table.industry, table.years) == (BANK, [2025, 2024, 2023])
    # JPM tags Revenues (10-K only) and RevenuesNetOfInterestExpense (10-K and 10-Q) with the same
    # annual values; the bank row uses the latter, the concept its quarters are reported under.
    rev = table.row("revenue")
    assert rev.concept == "us-gaap:RevenuesNetOfInterestExpense"
    assert rev.values == {2025: 182_447 * M, 2024: 177_556 * M, 2023: 158_104 * M}
    assert table.value("net_income", 2024) == 58_471 * M  # the DEF 14A's rounded 58,500 is not used
    assert table.value("net_margin", 2024) == pytest.approx(58_471 / 177_556 * 100)
    lines = [r.line for r in table.rows]
    assert "gross_profit" not in lines and "gross_margin" not in lines
    assert lines[: len(INDUSTRY_LINES[BANK])] == list(INDUSTRY_LINES[BANK])
    shown = facts_table(jpm)
    assert [r.line for r in shown.rows] == ["revenue", "net_income", "net_margin"]  # no empty rows
    assert shown.source.startswith("SEC companyfacts; filings ")


def test_jpm_report_sentences_and_quarter(jpm):
    table = report_facts(jpm)
    assert table.quarterly.years == ["Q2 FY2025", "Q2 FY2026"]
    q = {r.line: r.values for r in table.quarterly.rows}
    assert q["revenue"] == {"Q2 FY2025": 44_912 * M, "Q2 FY2026": 57_347 * M}
    assert "gross_margin" not in q
    paras = annual_sentences(table, "JPMorgan Chase") + quarter_sentences(table.quarterly)
    text = " ".join(s for p in paras for s in p)
    assert "reported revenue of $182,447 million, up 2.8% from $177,556 million in FY2024." in text
    assert "Gross margin" not in text and "gross margin" not in text
    refs = fact_refs(table)
    for sentence in (s for p in paras for s in p):
        check = check_sentence(sentence, refs)
        assert check.verified and not check.unverified and not check.mismatched, sentence


def test_unh_insurer_table(unh):
    table = standard_table(unh)
    assert (table.industry, table.years) == (INSURER, [2024, 2023, 2022])
    assert table.row("premiums_earned").concept == "us-gaap:PremiumsEarnedNet"
    assert table.value("premiums_earned", 2024) == 308_810 * M
    assert table.value("policyholder_benefits", 2024) == 264_185 * M
    assert table.row("net_investment_income").concept == "us-gaap:InvestmentIncomeInterestAndDividend"
    assert table.value("net_investment_income", 2024) == 5_202 * M
    assert round(table.value("loss_ratio", 2024), 1) == 85.5  # UNH's medical care ratio
    assert table.value("revenue", 2024) == 400_278 * M and table.value("operating_income", 2024) == 32_287 * M
    labels = {r.line: r.label for r in facts_table(unh).rows}
    assert labels["policyholder_benefits"] == "Policyholder benefits and claims"
    assert "gross_margin" not in labels and "benefits_and_expenses" not in labels  # UNH tags no total
    report = report_facts(unh)
    paras = annual_sentences(report, "UnitedHealth")
    text = " ".join(s for p in paras for s in p)
    assert "Premiums earned were $308,810 million in FY2024, up 6.2% from $290,827 million in FY2023." in text
    assert "as a share of premiums earned) was 85.5% in FY2024 (83.2% in FY2023)." in text
    refs = fact_refs(report)
    for sentence in (s for p in paras for s in p):
        check = check_sentence(sentence, refs)
        assert check.verified and not check.unverified and not check.mismatched, sentence


def _synthetic(concept: str, line: str, year: int, value: float) -> Fact:
    """SYNTHETIC VALUES (no real bank record with these lines is in the repository's fixtures):
    real us-gaap concept names on a companyfacts-shaped annual fact."""
    return Fact(
        "BANKX", line, concept, value, "USD", year, f"{year}-01-01", f"{year}-12-31", "10-K",
        f"{year + 1}-02-15", f"synthetic-{year}", "companyfacts", {"period": "annual"},
    )


def test_bank_lines_on_a_labelled_synthetic_structure():
    rows = {
        ("us-gaap:Revenues", "revenue"): (120, 100),
        ("us-gaap:RevenuesNetOfInterestExpense", "revenue"): (110, 100),
        ("us-gaap:InterestIncomeExpenseNet", "net_interest_income"): (60, 50),
        ("us-gaap:NoninterestIncome", "noninterest_income"): (50, 50),
        ("us-gaap:ProvisionForLoanLeaseAndOtherLosses", "provision_for_credit_losses"): (10, 8),
        ("us-gaap:NoninterestExpense", "noninterest_expense"): (66, 62),
        ("us-gaap:NetIncomeLoss", "net_income"): (25, 22),
    }
    facts = [
        _synthetic(concept, line, year, v * M)
        for (concept, line), values in rows.items()
        for year, v in zip((2024, 2023), values, strict=True)
    ]
    table = standard_table(facts)
    assert table.industry == BANK
    # both revenue concepts reported and different: the bank's net revenue wins, for every year
    assert table.row("revenue").concept == "us-gaap:RevenuesNetOfInterestExpense"
    assert table.value("revenue", 2024) == 110 * M
    assert table.value("provision_for_credit_losses", 2024) == 10 * M
    assert table.value("efficiency_ratio", 2024) == pytest.approx(60.0)  # 66 / 110
    shown = report_facts(facts)
    labels = [r.label for r in shown.rows]
    assert labels[:6] == [
        "Revenue",
        "Net interest income",
        "Noninterest income",
        "Provision for credit losses",
        "Noninterest expense",
        "Net income",
    ]
    paras = annual_sentences(shown, "Bank X")
    text = " ".join(s for p in paras for s in p)
    assert "Net interest income was $60 million in FY2024, up 20.0% from $50 million in FY2023." in text
    assert "The efficiency ratio was 60.0% in FY2024 (62.0% in FY2023)." in text
    refs = fact_refs(shown)
    for sentence in (s for p in paras for s in p):
        assert check_sentence(sentence, refs).verified, sentence


def _press(f: Fact, **changes) -> Fact:
    """An unaudited earnings-release copy of a real fact (what the 8-K EX-99.1 reader adds)."""
    return dataclasses.replace(f, source="press-release", form="8-K", accession="press-release-test", **changes)


def test_press_release_facts_never_change_the_tables(aapl):
    known = [f for f in aapl if f.filed <= "2025-06-01"]
    before = report_facts(known)
    rev24 = next(f for f in known if f.line == "revenue" and f.fiscal_year == 2024 and f.extra["period"] == "annual")
    q = max((f for f in known if f.line == "revenue" and f.extra["period"] == "quarter"), key=lambda f: f.period_end)
    extra = [
        _press(rev24, value=1.0, filed="2025-05-30"),  # a later-filed, different FY2024 value
        _press(rev24, fiscal_year=2025, period_start="2024-09-29", period_end="2025-09-27", filed="2025-05-31"),
        _press(q, value=2.0, period_start="2025-03-30", period_end="2025-06-28", filed="2025-05-31"),  # a newer quarter
    ]
    after = report_facts(known + extra)
    assert after.model_copy(update={"release": None}) == before  # the audited tables are unchanged
    assert after.release is not None and after.release.unaudited  # the later release is its own table
    assert standard_table(known + extra) == standard_table(known)
    assert industry(extra) == GENERAL  # press-release concepts do not decide the industry


def test_origin_labels_name_each_xbrl_source():
    facts = facts_from_inline_xbrl(DATA / "filings" / "aapl-10-k-2024-11-01.html.gz")
    instance = [dataclasses.replace(f, source="xbrl-instance") for f in facts]
    assert facts_table(instance).source.startswith("XBRL instance; filings ")
    assert facts_table(facts).source.startswith("inline XBRL; filings ")
    assert facts_table(facts + [_press(facts[0])]).source.startswith("inline XBRL; filings ")
