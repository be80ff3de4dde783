"""Citation remapping, invalid markers and similarity attribution (table-driven)."""

from __future__ import annotations

import pytest

from reports.checks import check_section, split_sentences
from tests.fakes import HashEmbedder

SOURCE_MAP = {1: 4, 2: 7}  # local prompt numbers -> global report numbers
SOURCE_TEXTS = {
    1: "Apple relies on outsourcing partners in China mainland, India and Vietnam for manufacturing.",
    2: "iPhone net sales increased during 2024 compared to 2023 due to higher Pro model sales.",
}


@pytest.mark.parametrize(
    "text, expected_text, citations, invalid",
    [
        ("Apple uses partners in China [1].", "Apple uses partners in China [4].", [4], []),
        ("Sales rose [2]. Partners matter [1][2].", "Sales rose [7]. Partners matter [4][7].", [7, 4], []),
        ("Sales rose [1, 2].", "Sales rose [4, 7].", [4, 7], []),
        ("Sales rose [3].", "Sales rose.", [], [3]),
        ("Sales rose [2, 9].", "Sales rose [7].", [7], [9]),
    ],
)
def test_remap_and_invalid(text, expected_text, citations, invalid):
    [para] = check_section(text, SOURCE_MAP, SOURCE_TEXTS, encode=None)
    assert para.text == expected_text
    assert para.citations == citations
    assert para.invalid_citations == invalid
    assert para.cited == bool(citations)
    assert para.attributed == []


def test_attribution_marks_similar_sentences_only():
    text = (
        "Apple relies on outsourcing partners in China and Vietnam for manufacturing.\n\n"
        "The weather in Paris was pleasant all week long."
    )
    paras = check_section(text, SOURCE_MAP, SOURCE_TEXTS, encode=HashEmbedder().encode, threshold=0.5)
    assert paras[0].attributed == [4] and paras[0].citations == [4] and paras[0].cited
    assert paras[0].text.endswith("manufacturing [4].")
    assert paras[1].attributed == [] and not paras[1].cited


def test_model_citation_is_not_reattributed():
    paras = check_section(
        "iPhone net sales increased during 2024 [2].",
        SOURCE_MAP,
        SOURCE_TEXTS,
        encode=HashEmbedder().encode,
        threshold=0.1,
    )
    assert paras[0].citations == [7] and paras[0].attributed == []


def test_sentence_split_keeps_decimals_and_markers():
    assert split_sentences("Revenue was $391.0 billion in the U.S. market [1]. It grew. [2] Done") == [
        "Revenue was $391.0 billion in the U.S. market [1].",
        "It grew. [2]",
        "Done",
    ]


@pytest.mark.parametrize(
    "text, kept",
    [
        ("Revenue rose to $391.0 billion [1]. It grew [2][3]. The", "Revenue rose to $391.0 billion [1]. It grew [2][3]."),
        ("The", ""),
        ("Done. [4] And then", "Done. [4]"),
        ("First para.\n\nSales hit $391.0 bil", "First para."),
    ],
)
def test_text_cut_by_token_limit_ends_at_a_full_sentence(text, kept):
    from reports.assemble import drop_unfinished_sentence

    assert drop_unfinished_sentence(text) == kept


def test_paragraph_numbers_are_checked_against_refs():
    refs = [(391_035_000_000.0, False)]
    good, bad = check_section(
        "Revenue was $391.0 billion [1].\n\nRevenue was $381.0 billion [2].", SOURCE_MAP, SOURCE_TEXTS, number_refs=refs
    )
    assert (good.numbers_verified, good.numbers_unverified) == (1, [])
    assert (bad.numbers_verified, bad.numbers_unverified) == (0, ["$381.0 billion"])
    # citation markers are not figures, even in a list: "[4, 7]" holds no number to verify
    [para] = check_section("Sales rose [1, 2].", SOURCE_MAP, SOURCE_TEXTS, number_refs=refs)
    assert para.numbers_unverified == [] and para.numbers_verified == 0
