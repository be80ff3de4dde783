"""Number checks: figures in generated sentences against facts (by line and period) and cited passages."""

from __future__ import annotations

import math

import pytest

from reports.numbers import (
    FactRef,
    NumberCheck,
    check_sentence,
    find_numbers,
    line_family,
    sentence_lines,
    sentence_periods,
)

# Apple FY2024/FY2023 (companyfacts), a quarter, derived changes, and an operating income series
# with the wrong-year case from a real report.
FACTS = [
    FactRef("revenue", "FY2024", 391_035_000_000.0, "USD"),
    FactRef("revenue", "FY2023", 383_285_000_000.0, "USD"),
    FactRef("revenue", "Q3 FY2025", 94_036_000_000.0, "USD"),
    FactRef("net_income", "FY2024", 93_736_000_000.0, "USD"),
    FactRef("net_income", "FY2023", 96_995_000_000.0, "USD"),
    FactRef("eps_diluted", "FY2024", 6.08, "USD/shares"),
    FactRef("eps_diluted", "FY2023", 6.13, "USD/shares"),
    FactRef("gross_margin", "FY2024", 46.2067, "%"),
    FactRef("gross_margin", "FY2023", 44.1311, "%"),
    FactRef("revenue_change", "FY2024", 2.02, "%"),
    FactRef("net_income_change", "FY2024", -3.36, "%"),
    FactRef("operating_income", "FY2021", 5_632_831_000.0, "USD"),
    FactRef("operating_income", "FY2019", 4_100_000_000.0, "USD"),
]
# One MD&A table row and one sentence, as a cited passage would carry them
PASSAGES = ["Total net sales | 391,035 | 383,285 | 394,328", "iPhone net sales increased 2% compared to 2023."]


def outcome(check: NumberCheck) -> list[tuple[str, str]]:
    """(figure, status) in order of appearance, for compact assertions."""
    rows = [(m, "verified") for m in check.verified] + [(m, "unverified") for m in check.unverified]
    rows += [(m, "mismatch") for m, _ in check.mismatched]
    return [(m.text, s) for m, s in sorted(rows, key=lambda r: r[0].start)]


# --- the cases the module always handled: value at the precision written, any unit ---


@pytest.mark.parametrize(
    "text",
    [
        "Revenue was $391.0 billion.",
        "Revenue was $391,035 million.",
        "Revenue was $391,035,000,000.",
        "Revenue was $391 billion.",
        "Net income was $93.7 billion.",
        "Diluted EPS was $6.08.",
        "Gross margin was 46.2%.",
        "Gross margin was about 46%.",
        "iPhone sales rose 2 percent.",
        "Net sales were 383,285 in 2023.",  # bare table figure, as the passage prints it
        "The total was $93.7 billion.",  # no line, no period: any fact value still verifies
    ],
)
def test_correct_figures_verify_in_any_unit(text):
    check = check_sentence(text, FACTS, PASSAGES)
    assert (len(check.verified), check.unverified, check.mismatched) == (1, [], []), text


@pytest.mark.parametrize(
    "text, bad",
    [
        ("Revenue was $381.0 billion.", "$381.0 billion"),  # wrong revenue
        ("Revenue was $391.9 billion.", "$391.9 billion"),  # right magnitude, wrong at its precision
        ("Gross margin was 64.2%.", "64.2%"),
        ("Net income was $93,736 billion.", "$93,736 billion"),  # wrong scale
        ("Margin rose 391,035%.", "391,035%"),  # percent never matches a dollar figure
    ],
)
def test_wrong_figures_are_caught(text, bad):
    assert outcome(check_sentence(text, FACTS, PASSAGES)) == [(bad, "unverified")]


# --- line and period ---


@pytest.mark.parametrize(
    "text, expected, reason",
    [
        ("Revenue was $391.0 billion in fiscal 2024.", "verified", ""),
        ("Revenue was $391.0 billion in FY2023.", "mismatch", "matches Revenue FY2024, but the sentence says FY2023"),
        (
            "Net income was $391.0 billion in fiscal 2024.",
            "mismatch",
            "matches Revenue FY2024, but the sentence is about Net income",
        ),
        (
            "Operating income: FY2019 $5,632,831,000 [1]",
            "mismatch",
            "matches Operating income FY2021, but the sentence says FY2019",
        ),
        ("Revenue grew 2.0% in FY2024.", "verified", ""),  # revenue_change FY2024 = 2.02
        ("Revenue was up 2%.", "verified", ""),
        ("Revenue grew 2.0% in FY2023.", "mismatch", "matches Revenue change (%) FY2024, but the sentence says FY2023"),
        ("Net income fell 3.4% in 2024.", "verified", ""),  # magnitude of -3.36
        ("Diluted EPS was $6.08 in fiscal 2024.", "verified", ""),
        ("Earnings per share were $6.08 in fiscal year 2023.", "mismatch", "matches Diluted EPS FY2024"),
        ("Gross margin was 46.2% in FY2024.", "verified", ""),
        ("Operating margin was 46.2%.", "mismatch", "matches Gross margin FY2024, but the sentence is about"),
        ("Net sales were $391.0 billion in the fiscal year ended September 28, 2024.", "verified", ""),
        ("Revenue in the third quarter of fiscal 2025 was $94.0 billion.", "verified", ""),
        ("Revenue was $94.0 billion in Q3 FY2025.", "verified", ""),
        ("Revenue was $94.0 billion in Q2 2025.", "mismatch", "matches Revenue Q3 FY2025, but the sentence says Q2 FY2025"),
        (
            "Net income was $94.0 billion in Q2 2025.",
            "mismatch",
            "matches Revenue Q3 FY2025, but the sentence says Q2 FY2025 and is about Net income",
        ),
    ],
)
def test_facts_must_fit_the_sentence_line_and_period(text, expected, reason):
    check = check_sentence(text, FACTS, [])
    assert [s for _, s in outcome(check)] == [expected], text
    if reason:
        assert reason in check.mismatched[0][1]


def test_each_named_period_and_line_may_be_used():
    text = "Revenue was $391.0 billion in FY2024 and $383.3 billion in FY2023, and net income $97.0 billion."
    assert [s for _, s in outcome(check_sentence(text, FACTS, []))] == ["verified"] * 3


def test_malformed_number_never_verifies():
    text = "Operating income: FY2019 $5,632,831,000,00 [1]"
    facts = FACTS + [FactRef("operating_income", "FY2019", 5_632_831_000.0, "USD")]
    check = check_sentence(text, facts, ["Operating income: FY2019 $5,632,831,000."])
    assert outcome(check) == [("$5,632,831,000,00", "unverified")]
    assert check.unverified[0].malformed and math.isnan(check.unverified[0].value)


# --- passages: only cited ones count, at the precision written ---


@pytest.mark.parametrize(
    "text, passages, expected",
    [
        ("Services revenue was $96.2 billion in fiscal 2024.", ["Services net sales were $96.2 billion."], "verified"),
        ("Services revenue was $96.2 billion in fiscal 2024.", [], "unverified"),  # the passage is not cited
        ("Services revenue was $96.2 billion.", ["Services | 96,169 | 85,200"], "verified"),  # cell in millions
        ("Services revenue was $96,169 million.", ["Services were $96.2 billion."], "unverified"),  # too precise
        ("Wearables revenue fell 7%.", ["Wearables net sales decreased 7% compared to 2023."], "verified"),
    ],
)
def test_cited_passages(text, passages, expected):
    assert [s for _, s in outcome(check_sentence(text, [], passages))] == [expected]


def test_period_labelled_passage_numbers_count_for_their_period_only():
    source = "Operating income: FY2019 $4,100 million; FY2021 $5,632,831,000."  # as the facts source prints
    good = check_sentence("Operating income was $5,632,831,000 in FY2021 [1].", [], [source])
    bad = check_sentence("Operating income was $5,632,831,000 in FY2019 [1].", [], [source])
    assert outcome(good) == [("$5,632,831,000", "verified")]
    assert bad.mismatched[0][1] == "matches FY2021 in a cited passage, but the sentence says FY2019"
    with_fact = check_sentence("Operating income was $5,632,831,000 in FY2019 [1].", FACTS, [source])
    assert with_fact.mismatched[0][1].startswith("matches Operating income FY2021")  # the fact reason wins


# --- what is not a figure ---


@pytest.mark.parametrize(
    "label",
    [
        "2025-08-01", "08/01/2025", "September 28, 2024", "Sept. 28", "28 September 2024", "Dec 31",
        "Item 2", "Item 1A", "Items 7 and 7A", "Item 2.02", "Part I, Item 3", "Part 2",
        "10-K", "10-Q", "11-Q", "8-K", "20-F", "S-1", "DEF 14A", "10-K/A",
        "[3]", "[1, 2]", "[1-3]", "Note 4", "Notes 4 and 5", "Exhibit 31.1", "Section 13(a)",
        "Item 303", "COVID-19", "Rule 10b5-1", "a 2-for-1 split",
        "3rd", "22nd", "Q3", "3Q25", "FY2024", "FY 24", "fiscal '24", "2024", "2023-24",
    ],
)  # fmt: skip
def test_labels_are_not_figures(label):
    assert find_numbers(f"As noted in {label}, results held.") == [], label


def test_figures_next_to_labels_are_still_found():
    text = "On September 28, 2024, Item 7 of the 10-K [2] showed $5.0 billion, up 12% in May 5% more."
    assert [m.text for m in find_numbers(text)] == ["$5.0 billion", "12%", "5%"]


def test_years_labels_and_citations_are_not_figures():
    text = "In fiscal 2024 [3], the 10-K (Item 1A) for FY2023 and Q2 noted risks [1, 2]."
    assert find_numbers(text) == []


def test_mentions_carry_their_span():
    text = "Revenue rose 2.0% to $391.0 billion [1], and EPS was $6.08."
    spans = [(m.text, m.start, m.end) for m in find_numbers(text)]
    assert spans == [("2.0%", 13, 17), ("$391.0 billion", 21, 35), ("$6.08", 53, 58)]
    assert all(text[s:e] == t for t, s, e in spans)


# --- what a sentence names ---


@pytest.mark.parametrize(
    "text, periods",
    [
        ("FY2024 revenue", ["FY2024"]),
        ("in fiscal 2024", ["FY2024"]),
        ("in fiscal year 2024", ["FY2024"]),
        ("for the fiscal year ended September 28, 2024", ["FY2024"]),
        ("in Q3 FY2025", ["Q3 FY2025"]),
        ("in the third quarter of fiscal 2025", ["Q3 FY2025"]),
        ("in Q2 2025", ["Q2 FY2025"]),
        ("in 3Q25 and Q4 FY25", ["Q3 FY2025", "Q4 FY2025"]),
        ("in 2024", ["FY2024"]),
        ("fiscal years 2024 and 2023", ["FY2024", "FY2023"]),
        ("fiscal years ended September 28, 2024 and September 30, 2023", ["FY2024", "FY2023"]),
        ("FY24", ["FY2024"]),
        ("filed on August 1, 2025 (2025-08-01)", []),  # a date names no period
        ("up 2.0% year over year", []),
    ],
)
def test_sentence_periods(text, periods):
    assert sentence_periods(text) == periods


@pytest.mark.parametrize(
    "text, families",
    [
        ("Total net sales rose", ["revenue"]),
        ("Revenues and sales", ["revenue"]),
        ("net income and net earnings", ["net_income"]),
        ("profit rose", ["net_income"]),
        ("diluted EPS and earnings per share", ["eps_diluted"]),
        ("gross margin and gross profit", ["gross"]),
        ("operating income and operating margin", ["operating"]),
        ("net margin", ["net_margin"]),
        ("net income margin", ["net_margin"]),
        ("operating cash flow and cash from operations", ["operating_cash_flow"]),
        ("capital expenditures (capex)", ["capex"]),
        ("free cash flow", ["free_cash_flow"]),
        ("iPhone demand was strong", []),
    ],
)
def test_sentence_lines(text, families):
    assert list(sentence_lines(text)) == families


@pytest.mark.parametrize(
    "line, family",
    [
        ("revenue", "revenue"),
        ("revenue_change", "revenue"),
        ("gross_margin", "gross"),
        ("gross_profit", "gross"),
        ("operating_income_change_abs", "operating"),
        ("eps_diluted", "eps_diluted"),
    ],
)
def test_line_family(line, family):
    assert line_family(line) == family



_CHANGE_FACTS = [
    FactRef("revenue_change", "FY2023", 15.7, "%"),
    FactRef("revenue_change", "FY2024", 21.9, "%"),
    FactRef("revenue", "FY2024", 164501e6, "USD"),
]
_CHANGE_SOURCE = "Advertising | $160,633 | $131,948 | 22% | 16%"  # "2024 vs 2023 % change" cells: no period


@pytest.mark.parametrize(
    ("sentence", "verified", "mismatch"),
    [
        # the model moved the source's 2024 change to 2023: the facts table knows FY2023 was 15.7%
        (
            "The company's revenue increased by 22% in 2023 compared to 2022, driven by advertising.",
            0,
            "in a cited passage, but the facts table has Revenue change (%) FY2023 = 15.7%",
        ),
        ("Meta's revenue increased by 22% in 2023.", 0, "FY2023 = 15.7%"),
        ("Revenue increased by 22% in 2024 compared to 2023.", 1, ""),  # right year: the fact matches
        ("Meta's revenue increased by 16% in 2023.", 1, ""),
        ("Advertising revenue increased by 22% in 2023 compared to 2022.", 1, ""),  # a segment: no fact
        ("Revenue increased by 22%, driven by advertising.", 1, ""),  # no period named: nothing to contradict
    ],
)
def test_a_passage_figure_moved_to_the_wrong_year_contradicts_the_facts(sentence, verified, mismatch):
    check = check_sentence(sentence, _CHANGE_FACTS, [_CHANGE_SOURCE])
    assert len(check.verified) == verified
    assert len(check.mismatched) == (1 if mismatch else 0)
    if mismatch:
        assert mismatch in check.mismatched[0][1]


# -- bank and insurer lines, on real filings ---------------------------------------------------
# JPMorgan's companyfacts (FY2024 net income $58,471 million) and UnitedHealth's FY2024 10-K inline
# XBRL ("Investment and other income" $5,202 million FY2024, $4,089 million FY2023; net income
# $22,381 million FY2023). Provenance: tests/fixtures/companyfacts/README.md.
_FIX = __import__("pathlib").Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "companyfacts"


@pytest.fixture(scope="module")
def jpm_refs():
    from rag.facts import facts_from_companyfacts
    from reports.financials import fact_refs, report_facts

    return fact_refs(report_facts(facts_from_companyfacts(_FIX / "companyfacts_CIK0000019617_JPM.json.gz")))


@pytest.fixture(scope="module")
def unh_table():
    from rag.facts import facts_from_inline_xbrl
    from reports.financials import report_facts

    return report_facts(facts_from_inline_xbrl(_FIX / "unh-10-k-2025-02-27.html.gz"))


@pytest.mark.parametrize(
    ("text", "families"),
    [
        ("Net interest income rose", ["net_interest_income"]),
        ("net interest income and net income", ["net_interest_income", "net_income"]),
        ("Noninterest income and non-interest expense", ["noninterest_income", "noninterest_expense"]),
        ("the provision for credit losses", ["provision_for_credit_losses"]),
        ("The efficiency ratio", ["efficiency_ratio"]),
        ("Premiums earned were", ["premiums_earned"]),
        ("net investment income", ["net_investment_income"]),
        ("the loss ratio (policyholder benefits and claims as a share of premiums earned)",
         ["loss_ratio", "policyholder_benefits", "premiums_earned"]),
        ("Total benefits, losses and expenses", ["benefits_and_expenses"]),
        ("Net income was", ["net_income"]),  # unchanged for everyone else
    ],
)  # fmt: skip
def test_bank_and_insurer_lines_are_their_own_families(text, families):
    assert list(sentence_lines(text)) == families


def test_net_interest_income_is_not_checked_as_net_income(jpm_refs):
    assert FactRef("net_income", "FY2024", 58_471e6, "USD") in jpm_refs
    wrong = check_sentence("Net interest income was $58,471 million in FY2024.", jpm_refs)
    assert not wrong.verified and len(wrong.mismatched) == 1
    assert "matches Net income FY2024, but the sentence is about Net interest income" in wrong.mismatched[0][1]
    right = check_sentence("Net income was $58,471 million in FY2024.", jpm_refs)
    assert len(right.verified) == 1 and not right.mismatched


def test_net_investment_income_is_checked_as_its_own_line(unh_table):
    from reports.financials import fact_refs

    refs = fact_refs(unh_table)
    assert len(check_sentence("Net investment income was $4,089 million in FY2023.", refs).verified) == 1
    wrong = check_sentence("Net investment income was $22,381 million in FY2023.", refs)  # net income's
    assert not wrong.verified and "matches Net income FY2023" in wrong.mismatched[0][1]


def test_a_lookup_question_on_an_insurer_line_is_answered_from_the_facts(unh_table):
    from reports.answer import AskContext, facts_answer

    def never(*_):
        raise AssertionError("no retrieval, model or moderation for a facts lookup")

    ctx = AskContext(
        ticker="UNH", company="UnitedHealth Group", search=never, generate=never, screen_input=never,
        screen_output=never, facts=unh_table,
    )  # fmt: skip
    a = facts_answer("What was net investment income in fiscal 2024?", ctx)
    assert a is not None and a.from_facts
    assert a.text == "UnitedHealth Group's net investment income for FY2024 was $5,202 million [1]."
    b = facts_answer("What were premiums earned in fiscal 2023?", ctx)
    assert b.text == "UnitedHealth Group's premiums earned for FY2023 was $290,827 million [1]."
