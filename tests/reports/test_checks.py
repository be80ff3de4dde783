"""Citation remapping, invalid markers and sentence splitting (table-driven)."""

from __future__ import annotations

import pytest

from reports.checks import remap_citations, split_sentences

SOURCE_MAP = {1: 4, 2: 7}  # local prompt numbers -> global report numbers
@pytest.mark.parametrize(
    "text, expected_text, citations, invalid",
    [
        ("Apple uses partners in China [1].", "Apple uses partners in China [4].", [4], []),
        ("Partners matter [1][2].", "Partners matter [4][7].", [4, 7], []),
        ("Sales rose [1, 2].", "Sales rose [4, 7].", [4, 7], []),
        ("Sales rose [3].", "Sales rose.", [], [3]),
        ("Sales rose [2, 9].", "Sales rose [7].", [7], [9]),
    ],
)
def test_remap_and_invalid(text, expected_text, citations, invalid):
    assert remap_citations(text, SOURCE_MAP) == (expected_text, citations, invalid)


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
    from reports.claims import drop_unfinished_sentence

    assert drop_unfinished_sentence(text) == kept


@pytest.mark.parametrize(
    "text, first",
    [
        ("Amazon.com, Inc. (AMZN) is a retailer. It grew.", "Amazon.com, Inc. (AMZN) is a retailer."),
        ("Sales in the U.S. Market rose. Then fell.", "Sales in the U.S. Market rose."),
        ("Apple Inc. designs phones.", "Apple Inc. designs phones."),
    ],
)
def test_abbreviations_do_not_end_a_sentence(text, first):
    assert split_sentences(text)[0] == first
