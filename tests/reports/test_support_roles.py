"""The roles rule (reports/support_roles.py): a claim that keeps the passage's words but swaps who did what.

The real cases are sentences the demo's model wrote (var/reports/latest/*.md of a `make demo` run,
published as supported before this rule) against the passages they cited, as labelled in
tests/fixtures/support_labels.jsonl; no model is loaded here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.support import LEXICAL_THRESHOLD, is_supported, support_signals
from reports.support_roles import role_mismatches

LABELS = Path(__file__).resolve().parents[1] / "fixtures" / "support_labels.jsonl"
ROWS = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
PASSAGE = {r["source_id"].split(":")[1]: r["source"] for r in ROWS}
NVDA_GRAPHICS = PASSAGE["797bc3161262b4f1"]  # NVIDIA 10-K MD&A: segment operating income
APPLE_Q3 = PASSAGE["c104f4d82f8170c0"]  # Apple 10-Q MD&A: iPhone, Mac, iPad net sales
APPLE_FY = PASSAGE["567a6b2a7c1d5c0d"]  # Apple 10-K MD&A: iPad, Wearables, Services net sales
META_ADS = PASSAGE["50a556368eae80db"]  # Meta 10-K MD&A: advertising, other and RL revenue

# The four sentences of the defect report, word for word, with the passage each cited.
REAL_SWAPS = [
    (
        "NVIDIA CORP's revenue was driven by a 44% increase in segment operating expenses, partially "
        "offset by growth in revenue.",
        NVDA_GRAPHICS,
    ),
    (
        "Apple Inc. increased iPhone net sales during the third quarter and first nine months of 2025 "
        "compared to the same periods in 2024 due to higher net sales of both laptops and desktops.",
        APPLE_Q3,
    ),
    (
        "Apple Inc. has experienced a decline in revenue due to lower net sales of iPad Pro and the "
        "entry-level iPad models, partially offset by higher net sales of Wearables and Accessories.",
        APPLE_FY,
    ),
    (
        "The increase in ad impressions and revenue was partly offset by a higher number of ad "
        "impressions and revenue, which is driven by a combination of price and ad impressions delivered.",
        META_ADS,
    ),
]


def by_kind(kind: str) -> list[tuple[str, str]]:
    return [(r["sentence"], r["source"]) for r in ROWS if r["kind"] == kind]


def test_the_real_cases_are_labelled_unsupported():
    labelled = {r["sentence"]: r for r in ROWS}
    for sentence, source in REAL_SWAPS:
        row = labelled[sentence]
        assert row["source"] == source and row["supported"] is False and row["kind"] == "model_role_swap"


@pytest.mark.parametrize(("sentence", "source"), REAL_SWAPS + by_kind("model_role_swap"))
def test_real_model_swaps_are_flagged_and_not_published(sentence: str, source: str):
    assert role_mismatches(sentence, source) == ("roles",)
    (signals,) = support_signals([(sentence, source)])
    assert "roles" in signals.mismatches and signals.score < LEXICAL_THRESHOLD
    assert not is_supported(sentence, source)


@pytest.mark.parametrize(("sentence", "source"), by_kind("role_swap"))
def test_constructed_swaps_between_sentences_of_one_passage_are_flagged(sentence: str, source: str):
    assert role_mismatches(sentence, source) == ("roles",)


@pytest.mark.parametrize(("sentence", "source"), by_kind("causal_paraphrase"))
def test_faithful_causal_paraphrases_are_not_flagged(sentence: str, source: str):
    assert role_mismatches(sentence, source) == ()


def test_no_supported_row_of_the_labelled_set_is_flagged():
    flagged = [r["sentence"] for r in ROWS if r["supported"] and role_mismatches(r["sentence"], r["source"])]
    assert flagged == []


@pytest.mark.parametrize(
    ("sentence", "source"),
    [
        ("iPhone net sales increased during the third quarter of 2025.", APPLE_Q3),
        ("Mac net sales increased compared to the same periods in 2024.", APPLE_Q3),  # no connective
        ("Revenue was $1 billion, up from $2 billion.", APPLE_FY),
        ("", META_ADS),
    ],
)
def test_a_sentence_without_a_connective_is_unaffected(sentence: str, source: str):
    assert role_mismatches(sentence, source) == ()


@pytest.mark.parametrize(
    ("sentence", "source", "expected"),
    [
        # the same effect and cause in other words and order of clauses
        ("Due to higher net sales of Pro models, iPhone net sales increased in 2025.", APPLE_Q3, ()),
        ("Apple's Mac net sales increased because of higher net sales of laptops and desktops.", APPLE_Q3, ()),
        # the cause offered as an offset, or the offset as a cause: another family
        ("Mac net sales increased, partially offset by higher net sales of laptops and desktops.", APPLE_Q3, ("roles",)),
        (
            "iPad net sales decreased in the third quarter due to higher net sales of all other iPad models.",
            APPLE_Q3,
            ("roles",),
        ),
        # circular: the cause only repeats the effect, and the passage does not say it so
        ("Mac net sales increased due to higher Mac net sales.", APPLE_Q3, ("roles",)),
        # ... but the passage says a segment fell on its own lines' sales
        (
            "Wearables, Home and Accessories net sales decreased due to lower net sales of Wearables and "
            "Accessories.",
            APPLE_FY,
            (),
        ),
        # an anaphor in the passage ("The increase was primarily driven by") takes the sentence before
        ("FoA other revenue increased, primarily driven by WhatsApp Business Platform revenue.", META_ADS, ()),
        ("RL revenue increased, primarily driven by WhatsApp Business Platform revenue.", META_ADS, ("roles",)),
    ],
)
def test_roles_rule_cases(sentence: str, source: str, expected: tuple[str, ...]):
    assert role_mismatches(sentence, source) == expected
