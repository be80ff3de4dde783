"""Query understanding (rag/query.py) on FinanceBench-style questions written out in full."""

from __future__ import annotations

import pytest

from rag.query import (
    BALANCE,
    CASH_FLOW,
    EXPANSIONS,
    INCOME,
    QueryIntent,
    keywords,
    named_companies,
    statements_on,
    strip_instructions,
    understand,
)

# ---- strip_instructions ----------------------------------------------------------------------

QUICK_RATIO_CAVEAT = (
    "If the quick ratio is not something that a financial analyst would ask about a company like this, "
    "then state that and explain why."
)


@pytest.mark.parametrize(
    "question, expected",
    [
        (
            "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the "
            "question by relying on the details shown in the cash flow statement.",
            "What is the FY2018 capital expenditure amount (in USD millions) for 3M?",
        ),
        (
            "Using the cash flow statement, answer the following question to the best of your abilities: "
            "how much did X spend on dividends in FY2019?",
            "how much did X spend on dividends in FY2019?",
        ),
        (
            "Does AMCOR have an improving quick ratio in FY2023? " + QUICK_RATIO_CAVEAT,
            "Does AMCOR have an improving quick ratio in FY2023?",
        ),
        (
            "What is the FY2019 - FY2021 total dividends paid? Calculate using the cash flow statement.",
            "What is the FY2019 - FY2021 total dividends paid?",
        ),
        (
            "What is the net margin for FY2022? Round your answer to one decimal place. "
            "Use the income statement. Please provide the answer in percent.",
            "What is the net margin for FY2022?",
        ),
        (  # a question sentence that opens with an instruction keeps all of it (it holds the "?")
            "Based on the income statement, what is the net margin? Round to one decimal.",
            "Based on the income statement, what is the net margin?",
        ),
        (  # a colon-separated instruction clause is dropped, the question after it kept
            "Use the balance sheet: What is the inventory? Then compute turnover.",
            "What is the inventory? Then compute turnover.",
        ),
        (  # no instruction at all: unchanged
            "What drove revenue growth in fiscal 2022?",
            "What drove revenue growth in fiscal 2022?",
        ),
        (
            "Is 3M a capital-intensive business based on FY2022 data?",
            "Is 3M a capital-intensive business based on FY2022 data?",
        ),
        ("  What\n is   revenue?  ", "What is revenue?"),  # whitespace normalised
        # only instructions: the whole (whitespace-normalised) text, never empty
        (QUICK_RATIO_CAVEAT, QUICK_RATIO_CAVEAT),
        ("Round your answer to two decimal places.", "Round your answer to two decimal places."),
        ("Answer in USD millions.  Use the balance sheet.", "Answer in USD millions. Use the balance sheet."),
        ("", ""),
    ],
)
def test_strip_instructions(question, expected):
    assert strip_instructions(question) == expected


@pytest.mark.parametrize(
    "instruction",
    [
        "Give a response to the question by relying on the details shown in the balance sheet.",
        "Answer the question assuming you only had access to the P&L statement.",
        "Round your answer to two decimal places.",
        "Please provide the answer in USD billions.",
        "Calculate what was asked by utilizing the line items clearly shown in the cash flow statement.",
        "Utilize the statement of financial position.",
        "Assume that the company has no preferred stock.",
        "Do not round intermediate steps.",
        "You may use the notes as well.",
        "The answer should be expressed in percent.",
        "Express the answer as a ratio.",
        "Consider only continuing operations.",
        QUICK_RATIO_CAVEAT,
    ],
)
def test_each_instruction_sentence_is_dropped_after_a_question(instruction):
    question = "What was Costco's FY2021 gross margin?"
    assert strip_instructions(f"{question} {instruction}") == question
    assert strip_instructions(f"{instruction} {question}") == question


def test_a_sentence_starting_with_a_word_that_only_begins_like_an_instruction_is_kept():
    q = "Users of the platform grew in FY2022. Why did they grow?"
    assert strip_instructions(q) == q


# ---- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, years, quarters",
    [
        ("What is the FY2018 capex?", (2018,), ()),
        ("What drove revenue in fiscal 2022?", (2022,), ()),
        ("Revenue in fiscal year 2021", (2021,), ()),
        ("Gross margin in FY22", (2022,), ()),
        ("Gross margin in FY 2023", (2023,), ()),
        ("Gross margin in FY'23", (2023,), ()),
        ("Revenue in Q2 2023", (2023,), ("2023Q2",)),
        ("Revenue in 2023Q2", (2023,), ("2023Q2",)),
        ("Revenue in 2023 Q2", (2023,), ("2023Q2",)),
        ("Revenue in Q2'2023", (2023,), ("2023Q2",)),
        ("Revenue in Q2'23", (2023,), ("2023Q2",)),
        ("Revenue in Q2 FY2023", (2023,), ("2023Q2",)),
        ("Revenue in q3fy24", (2024,), ("2024Q3",)),
        ("Revenue in Q22023", (2023,), ("2023Q2",)),
        ("Revenue in Q4 FY 2023 and Q1 2024", (2023, 2024), ("2023Q4", "2024Q1")),
        # years in order of mention, each once
        ("Change between FY2023 and FY2022", (2023, 2022), ()),
        ("Dividends in 2019 and 2021 and FY2019", (2019, 2021), ()),
        ("10-K for 2022", (2022,), ()),
        # not periods
        ("Revenue in Q5 2023", (2023,), ()),  # no fifth quarter; the year is still a year
        ("Store count in 1979", (), ()),
        ("Target for 2050", (), ()),
        ("What is the quick ratio?", (), ()),
    ],
)
def test_understand_periods(question, years, quarters):
    intent = understand(question)
    assert (intent.years, intent.quarters) == (years, quarters)


@pytest.mark.parametrize("question", ["Revenue in FY99", "Revenue in fiscal 99"])
def test_two_digit_year_in_the_nineties(question):
    assert understand(question).years == (1999,)


@pytest.mark.parametrize("question", ["Revenue in FY23 Q2", "Revenue in FY2023Q2"])
def test_year_first_quarter(question):
    assert understand(question).quarters == ("2023Q2",)


# ---- statements --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, statements",
    [
        # named outright, in the question or in its instruction
        ("What is total equity? Use the balance sheet.", (BALANCE,)),
        ("Based on the statement of financial position, what is total equity?", (BALANCE,)),
        ("Using the P&L, what was net income?", (INCOME,)),
        ("From the profit and loss statement, what was net income?", (INCOME,)),
        ("What does the statement of operations show for FY2022?", (INCOME,)),
        ("Using the statement of cash flows, what is capex?", (CASH_FLOW,)),
        ("What is X? Answer using the cash flow statement.", (CASH_FLOW,)),
        ("Using the income statement and balance sheet, what is ROA?", (BALANCE, INCOME)),
        # named beats implied: quick ratio implies the balance sheet, the P&L is named
        ("Using the P&L, what is the quick ratio?", (INCOME,)),
        ("Based on the statement of cash flows, what is the gross margin?", (CASH_FLOW,)),
        # implied by the metric
        ("What is the quick ratio?", (BALANCE,)),
        ("What is working capital in FY2022?", (BALANCE,)),
        ("What is the gross margin?", (INCOME,)),
        ("What is diluted EPS?", (INCOME,)),
        ("What is FY2018 capex?", (CASH_FLOW,)),
        ("What were dividends paid?", (CASH_FLOW,)),
        ("What were dividends paid and total debt?", (BALANCE, CASH_FLOW)),
        # revenue alone implies nothing (its breakdown lives in the notes)
        ("What is revenue in FY2022?", ()),
        ("What drove revenue growth by segment?", ()),
        ("Who is the CEO?", ()),
    ],
)
def test_understand_statements(question, statements):
    assert understand(question).statements == statements


def test_implied_statement_is_read_from_the_question_not_its_instruction():
    # the instruction mentions "working capital" but is stripped; the question names no metric
    q = "What drove revenue growth? If working capital is not relevant, then state that."
    assert understand(q).statements == ()


@pytest.mark.parametrize("question", ["What steps did management take?", "How many sales reps are there?"])
def test_words_ending_in_eps_imply_no_statement(question):
    assert understand(question).statements == ()


# ---- companies -------------------------------------------------------------------------------

KNOWN = {
    "BESTBUY_2023_10K": ["Best Buy Co., Inc.", "BBY"],
    "AMCOR_2023_10K": ["AMCOR", "AMCR"],
    "3M_2018_10K": ["3M", "MMM"],
    "PG_2022_10K": ["Procter & Gamble", "PG"],
    "GENERIC": ["The Co."],  # all legal words: never matches anything
}


@pytest.mark.parametrize(
    "question, companies",
    [
        ("What is Best Buy's FY2023 gross margin?", ("BESTBUY_2023_10K",)),
        ("What is best buy co revenue?", ("BESTBUY_2023_10K",)),
        ("What is BBY's revenue?", ("BESTBUY_2023_10K",)),
        ("What is AMCOR's quick ratio?", ("AMCOR_2023_10K",)),
        ("What is AMCOR\u2019s quick ratio?", ("AMCOR_2023_10K",)),
        ("Is AMCOR.", ("AMCOR_2023_10K",)),
        ("What is amcorp revenue?", ()),  # whole words only
        ("What is AMCORS revenue?", ()),
        ("What was 3M capex in FY2018?", ("3M_2018_10K",)),
        ("What was 3MM capex?", ()),
        ("Procter & Gamble margin", ("PG_2022_10K",)),
        ("Compare BBY and MMM revenue", ("BESTBUY_2023_10K", "3M_2018_10K")),  # in `known` order
        ("What is the company's revenue?", ()),
        ("", ()),
    ],
)
def test_named_companies(question, companies):
    assert named_companies(question, KNOWN) == companies
    assert understand(question, KNOWN).companies == companies


def test_no_known_names_routes_nowhere():
    assert understand("What is AMCOR's quick ratio?").companies == ()
    assert named_companies("What is AMCOR's quick ratio?", {}) == ()


# ---- keywords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, known, expected",
    [
        (
            "What is AMCOR's FY2023 quick ratio?",
            {"AMCR": ["AMCOR"]},
            "What is quick ratio? current assets inventories current liabilities cash receivables",
        ),
        (
            "What was 3M capex in FY2018? Give a response by relying on the cash flow statement.",
            {"MMM": ["3M", "MMM"]},
            "What was capex in ? purchases of property plant and equipment capital expenditures",
        ),
        ("Compare BBY and MMM FY22 revenue", {"B": ["BBY"], "M": ["MMM"]}, "Compare and revenue"),
        ("Q2 2023 and 2023Q2 and FY2022 revenue", {}, "and and revenue"),
        ("What drove revenue growth in fiscal 2022?", {}, "What drove revenue growth in ?"),
    ],
)
def test_understand_keywords(question, known, expected):
    assert understand(question, known).keywords == expected


@pytest.mark.parametrize(
    "text, names, expected",
    [
        (
            "AMCOR's quick ratio",
            ["AMCOR"],
            "quick ratio current assets inventories current liabilities cash receivables",
        ),
        ("AMCOR\u2019s revenue", ["AMCOR"], "revenue"),
        ("amcor revenue", ["AMCOR"], "revenue"),  # case-insensitive
        ("amcorp revenue", ["AMCOR"], "amcorp revenue"),  # whole words only
        ("MICROSOFT CORP business overview", ["MICROSOFT CORP", "MSFT"], "business overview"),
        # the longer name goes first, so a short name cannot leave half of a long one behind
        ("Meta Platforms business", ["Meta", "Meta Platforms"], "business"),
        ("a revenue", ["a"], "a revenue"),  # one-letter names are never removed
        ("revenue", [], "revenue"),
        ("", [], ""),
    ],
)
def test_keywords(text, names, expected):
    assert keywords(text, names) == expected


METRICS = [
    "quick ratio",
    "acid-test ratio",
    "current ratio",
    "working capital",
    "gross margin",
    "gross profit",
    "operating margin",
    "net profit margin",
    "capital expenditures",
    "capex",
    "free cash flow",
    "operating cash flow",
    "debt-to-equity",
    "return on assets",
    "ROE",
    "inventory turnover",
    "DPO",
    "days sales outstanding",
    "interest coverage",
    "dividend payout",
    "EBITDA",
    "effective tax rate",
    "asset turnover",
]


@pytest.mark.parametrize("metric", METRICS)
def test_keywords_add_the_metrics_definition(metric):
    matching = [words for pattern, words in EXPANSIONS if pattern.search(metric)]
    assert matching, metric
    got = keywords(f"What is the FY2022 {metric}?")
    assert got.startswith(f"What is the {metric}?")
    for words in matching:
        assert words in got


def test_every_expansion_is_exercised():
    assert all(any(p.search(m) for m in METRICS) for p, _ in EXPANSIONS)


def test_revenue_alone_adds_no_expansion():
    assert keywords("What was FY2022 revenue?") == "What was revenue?"


@pytest.mark.parametrize(
    "text, names",
    [
        ("Apple Inc. net sales revenue", ["Apple Inc.", "AAPL"]),
        ("Meta Platforms, Inc. business overview", ["Meta Platforms, Inc.", "META"]),
    ],
)
def test_keywords_remove_names_ending_in_a_period(text, names):
    got = keywords(text, names)
    assert "Inc" not in got and got.endswith(("net sales revenue", "business overview"))


def test_keywords_drop_a_company_routed_by_its_short_name():
    intent = understand("What is Best Buy's FY2023 gross margin?", {"BBY": ["Best Buy Co., Inc."]})
    assert intent.companies == ("BBY",)
    assert "Best" not in intent.keywords


# ---- the whole intent ---------------------------------------------------------------------------


def test_understand_a_full_financebench_question():
    q = (
        "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the "
        "question by relying on the details shown in the cash flow statement."
    )
    assert understand(q, {"3M_2018_10K": ["3M", "MMM"]}) == QueryIntent(
        text="What is the FY2018 capital expenditure amount (in USD millions) for 3M?",
        keywords="What is the capital expenditure amount (in USD millions) for ? "
        "purchases of property plant and equipment capital expenditures",
        companies=("3M_2018_10K",),
        years=(2018,),
        quarters=(),
        statements=(CASH_FLOW,),
    )


# ---- statements_on -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, statements",
    [
        ("CONSOLIDATED STATEMENTS OF EARNINGS (in millions)", {INCOME}),
        ("Consolidated Statements of Earnings", {INCOME}),
        ("Consolidated Statements of Operations", {INCOME}),
        ("Consolidated Statements of Comprehensive Income", {INCOME}),
        ("Statement of Consolidated Income", {INCOME}),
        ("Income Statements", {INCOME}),
        ("Consolidated Balance Sheets", {BALANCE}),
        ("Statement of Financial Position", {BALANCE}),
        ("Consolidated statements of financial condition", {BALANCE}),
        ("CONSOLIDATED STATEMENTS OF CASH FLOWS", {CASH_FLOW}),
        ("Statement of Consolidated Cash Flows", {CASH_FLOW}),
        ("Cash flow statements", {CASH_FLOW}),
        (
            "Index: Consolidated Statements of Operations 45, Consolidated Balance Sheets 47, "
            "Consolidated Statements of Cash Flows 48",
            {BALANCE, INCOME, CASH_FLOW},
        ),
        ("We describe our liquidity and capital resources below; cash flows improved.", set()),
        ("Net income increased 12% on higher operating income.", set()),
        ("", set()),
    ],
)
def test_statements_on(text, statements):
    assert statements_on(text) == frozenset(statements)
