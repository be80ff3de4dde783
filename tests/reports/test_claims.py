"""What a unit's answer must pass before it is published: support, figures, echo, completeness."""

from __future__ import annotations

import pytest

from models.types import Completion
from reports.claims import check_unit
from reports.compose import CLAIM_SYSTEM, SYSTEM_PROMPT, UnitPlan
from reports.numbers import FactRef

SOURCE = (
    "Total net sales increased 2% or $7.8 billion during 2024 compared to 2023. The increase was driven by "
    "higher net sales of Services, partially offset by lower net sales of iPhone and Wearables."
)
OTHER = "Apple relies on outsourcing partners in China mainland, India and Vietnam for manufacturing."
QUESTION = "What drove the change in Apple Inc.'s revenue or profit?"


def claim(text: str, reason: str = "stop", source: str = SOURCE) -> tuple:
    unit = UnitPlan(
        request_id="r:AAPL:financials:0",
        mode="claim",
        source_map={1: 5},
        source_texts={1: source},
        system=CLAIM_SYSTEM,
        user=f"{source}\n\nQuestion: {QUESTION}\nAnswer in one sentence.",
        question=QUESTION,
        max_new_tokens=72,
        allowed_numbers=[],
        allowed_citations=[],
    )
    return check_unit(unit, Completion(unit.request_id, text, finish_reason=reason))


def test_a_supported_claim_is_cited_to_its_source_by_code():
    out = claim(
        "Net sales increased 2% during 2024 compared to 2023, driven by higher net sales of Services."
    )
    assert out.sentences == [
        "Net sales increased 2% during 2024 compared to 2023, driven by higher net sales of Services [5]."
    ]
    assert out.citations == [5] and out.numbers_verified == 1 and not out.dropped


def test_meta_lead_in_is_stripped_and_only_the_first_sentence_kept():
    out = claim("According to the source, net sales increased 2% driven by Services. It also rained.")
    assert out.sentences == ["Net sales increased 2% driven by Services [5]."]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Its flagship product is the Apple I, a personal computer designed by Steve Jobs.", "not supported"),
        ("The company has a strong track record of innovation and growth.", "not supported"),
        (
            "Net sales increased 12% during 2024, driven by higher net sales of Services.",
            "12%: not in its source",
        ),
        (
            "Net sales increased 2% during 2024 compared to 2023 [3], driven by Services and",
            "no complete sentence",
        ),
        ("Task: Summarise Apple Inc.'s financial performance over the last fiscal years.", "prompt label"),
        ("2024, 2023, 2019, 2009, 2108, 2030, 2040, 2050.", ""),
        ("", "empty answer"),
    ],
)
def test_failing_claims_are_dropped_with_the_reason(text, reason):
    out = claim(text, reason="length" if text.endswith("and") else "stop")
    assert out.sentences == [] and len(out.dropped) == 1
    assert reason in out.dropped[0].reason


def paragraph(text: str, facts=None):
    unit = UnitPlan(
        request_id="r:AAPL:risks",
        mode="paragraph",
        source_map={1: 4, 2: 7},
        source_texts={1: OTHER, 2: SOURCE},
        system=SYSTEM_PROMPT,
        user=f"Sources:\n[1] 10-K, Item 1A: {OTHER}\n[2] 10-K, Item 7: {SOURCE}\n\nTask: Summarise.",
        question="Summarise.",
        max_new_tokens=180,
        allowed_numbers=[],
        allowed_citations=[1, 2],
    )
    return check_unit(unit, Completion(unit.request_id, text), facts=facts)


def test_paragraph_citations_map_to_the_report_and_must_support_the_sentence():
    out = paragraph(
        "Apple relies on outsourcing partners in China, India and Vietnam for manufacturing [1]. "
        "Total net sales increased 2% during 2024 [2]. "
        "Apple relies on partners in China for manufacturing [2]. "  # wrong source cited
        "Apple sells cars [3]."  # invalid marker, unsupported
    )
    assert out.sentences[:2] == [
        "Apple relies on outsourcing partners in China, India and Vietnam for manufacturing [4].",
        "Total net sales increased 2% during 2024 [7].",
    ]
    assert out.citations == [4, 7] and out.invalid == [3]
    assert [d.reason.split(" (")[0] for d in out.dropped] == [
        "not supported by its cited source",
        "not supported by any source of the section",
    ]


def test_uncited_sentence_is_attributed_not_cited():
    out = paragraph(
        "Apple relies on outsourcing partners in China mainland, India and Vietnam for manufacturing."
    )
    assert out.sentences == [
        "Apple relies on outsourcing partners in China mainland, India and Vietnam for manufacturing [4]."
    ]
    assert out.citations == [] and out.attributed == [4] and out.attributed_sentences == 1


def test_a_figure_must_be_in_the_source_the_sentence_cites():
    out = paragraph("Total net sales increased 2% during 2024 compared to 2023 [1].")
    assert out.sentences == [] and "not supported" in out.dropped[0].reason or "2%" in out.dropped[0].reason
    facts = [FactRef("revenue", "FY2024", 391_035e6, "USD")]
    wrong_year = paragraph("Net sales were $391,035 million in fiscal 2023, up 2% from 2023 [2].", facts)
    assert wrong_year.sentences == [] and "FY2024" in wrong_year.dropped[0].reason


def test_an_answer_ending_in_an_abbreviation_is_not_a_sentence():
    out = claim("Net sales increased 2% during 2024 driven by Services sold in the U.S.")
    assert out.sentences == [] and out.dropped[0].reason == "no complete sentence"


def test_meta_lead_ins_about_the_text_are_stripped():
    out = claim("The text above suggests that net sales increased 2% during 2024, driven by higher net sales of Services.")
    assert out.sentences == ["Net sales increased 2% during 2024, driven by higher net sales of Services [5]."]


def test_sentences_run_together_are_not_one_claim():
    words = (
        "total net sales increased during the year compared with the prior period driven by services "
        "advertising cloud app store licensing wearables home accessories iphone mac ipad partially offset "
        "by weaker demand in greater china europe japan rest of asia pacific americas while foreign currency "
        "headwinds pricing promotions channel inventory supply constraints component costs tariffs freight "
        "logistics marketing research development and general administrative expenses rose as well"
    ).split()
    run_on = "Net " + " ".join(words) + "."
    assert len(run_on.split()) > 60
    out = claim(run_on)
    assert out.sentences == [] and "too long" in out.dropped[0].reason


def test_a_dropped_claim_names_the_rule_it_broke():
    """The real NVDA case from the demo: every word is in the passage, the effect is not."""
    source = (
        "The year over year decrease in Graphics segment operating income was driven by an increase of "
        "44% in segment operating expenses, partially offset by growth in revenue."
    )
    unit = UnitPlan(
        request_id="r:NVDA:financials",
        mode="paragraph",
        source_map={1: 4},
        source_texts={1: source},
        system=SYSTEM_PROMPT,
        user=f"Sources:\n[1] 10-K, Item 7: {source}\n\nTask: Summarise.",
        question="Summarise.",
        max_new_tokens=180,
        allowed_numbers=["44"],
        allowed_citations=[1],
    )
    wrong = "NVIDIA CORP's revenue was driven by a 44% increase in segment operating expenses, partially offset by growth in revenue [1]."
    out = check_unit(unit, Completion(unit.request_id, wrong))
    assert out.sentences == []
    assert out.dropped[0].reason.startswith("not supported by its cited source (support ")
    assert out.dropped[0].reason.endswith("; changes what the source says caused what)")
