"""Facts -> the financial section's sentences: exact, derived figures in the table, checked by line and period."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag.facts import facts_from_companyfacts, facts_from_inline_xbrl
from rag.types import Fact
from reports.financials import annual_sentences, fact_refs, quarter_sentences, report_facts
from reports.numbers import check_sentence

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def aapl():
    path = next((DATA / "sec" / "companyfacts").glob("*AAPL*"))
    facts = [f for f in facts_from_companyfacts(path) if f.filed <= "2025-06-01"]
    return report_facts(facts), path


@pytest.fixture(scope="module")
def tsla():
    files = ("tsla-10-k-2025-01-30.html.gz", "tsla-10-q-2025-07-24.html.gz")
    return report_facts(
        [f for name in files for f in facts_from_inline_xbrl(DATA / "sec" / "filings" / name)]
    )


def _raw(path: Path, concept: str, start: str, end: str) -> float:
    """A value read straight from the companyfacts JSON, not through rag.facts."""
    data = json.loads(gzip.open(path).read())
    rows = data["facts"]["us-gaap"][concept]["units"]["USD"]
    return next(r["val"] for r in rows if r.get("start") == start and r["end"] == end)


def test_annual_and_quarter_sentences_for_apple(aapl):
    table, path = aapl
    paras = annual_sentences(table, "Apple Inc.") + quarter_sentences(table.quarterly)
    text = " ".join(s for p in paras for s in p)
    assert "reported revenue of $391,035 million, up 2.0% from $383,285 million in FY2023." in text
    assert "Net income was $93,736 million in FY2024, down 3.4% from $96,995 million in FY2023" in text
    assert "Diluted earnings per share were $6.08 in FY2024 versus $6.13 in FY2023." in text
    assert "free cash flow was $108,807 million" in text
    assert (
        "Q2 FY2025 (ended March 29, 2025), revenue was $95,359 million, up 5.1% from $90,753 million in Q2 FY2024"
        in text
    )
    q = {r.line: r.values for r in table.quarterly.rows}
    concept = "RevenueFromContractWithCustomerExcludingAssessedTax"
    assert q["revenue"]["Q2 FY2025"] == _raw(path, concept, "2024-12-29", "2025-03-29")
    assert q["revenue"]["Q2 FY2024"] == _raw(path, concept, "2023-12-31", "2024-03-30")


def test_every_stated_figure_is_a_row_of_the_table_and_verifies_by_line_and_period(aapl, tsla):
    for table, company in ((aapl[0], "Apple Inc."), (tsla, "Tesla, Inc.")):
        refs = fact_refs(table)
        lines = {r.line for r in table.rows} | {r.line for r in table.quarterly.rows}
        assert {"revenue_change", "net_income_change", "free_cash_flow"} <= lines  # derived rows shown
        for para in annual_sentences(table, company) + quarter_sentences(table.quarterly):
            for sentence in para:
                check = check_sentence(sentence, refs)
                assert check.verified and not check.unverified and not check.mismatched, sentence


def test_tesla_quarter_comes_from_its_10q(tsla):
    assert tsla.quarterly.years == ["Q2 FY2024", "Q2 FY2025"]
    (para,) = quarter_sentences(tsla.quarterly)
    assert para[0] == (
        "In the latest reported quarter, Q2 FY2025 (ended June 30, 2025), revenue was $22,496 million, "
        "down 11.8% from $25,500 million in Q2 FY2024."
    )


CONCEPTS = {"revenue": "us-gaap:Revenues", "net_income": "us-gaap:NetIncomeLoss"}


def _fact(line: str, year: int, value: float, unit: str = "USD") -> Fact:
    return Fact(
        "XYZ",
        line,
        CONCEPTS[line],
        value,
        unit,
        year,
        f"{year}-01-01",
        f"{year}-12-31",
        "10-K",
        f"{year + 1}-02-01",
        "acc",
        "inline-xbrl",
    )


def test_a_loss_and_a_missing_prior_year_read_plainly():
    facts = [_fact("revenue", 2024, 500e6), _fact("net_income", 2024, -20e6), _fact("revenue", 2023, 400e6)]
    table = report_facts(facts)
    text = " ".join(s for p in annual_sentences(table, "XYZ Corp") for s in p)
    assert "revenue of $500 million, up 25.0% from $400 million in FY2023" in text
    assert "The company reported a net loss of $20 million in FY2024, a net margin of -4.0%." in text
    assert "change" not in text.split("loss")[1]  # no change against a year that has no value


def test_apple_has_no_release_table_and_its_refs_are_unchanged(aapl):
    """No press-release facts: no release table, and fact_refs is the annual + quarterly figures only."""
    table, _ = aapl
    assert table.release is None
    periods = {r.period for r in fact_refs(table)}
    assert periods == {f"FY{y}" for y in table.years} | set(table.quarterly.years)
