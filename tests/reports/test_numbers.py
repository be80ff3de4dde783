"""Number checks: figures in generated text against exact facts and cited passages (hand-written cases)."""

from __future__ import annotations

import pytest

from reports.numbers import check_numbers, find_numbers, reference_values

# Apple FY2024 (companyfacts) and one MD&A table row as a cited passage would carry it
FACTS = [(391_035_000_000.0, False), (93_736_000_000.0, False), (6.08, False), (46.2067, True)]
PASSAGES = ["Total net sales | 391,035 | 383,285 | 394,328", "iPhone net sales increased 2% compared to 2023."]
REFS = reference_values(FACTS, PASSAGES)


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
    ],
)
def test_correct_figures_verify_in_any_unit(text):
    verified, unverified = check_numbers(text, REFS)
    assert (verified, unverified) == (1, []), text


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
    assert check_numbers(text, REFS) == (0, [bad])


def test_years_labels_and_citations_are_not_figures():
    text = "In fiscal 2024 [3], the 10-K (Item 1A) for FY2023 and Q2 noted risks [1, 2]."
    assert find_numbers(text) == []
