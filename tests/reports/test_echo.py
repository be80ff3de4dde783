"""Echo of the prompt and self-repetition in generated text (reports/echo.py), table-driven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.echo import is_echo, is_repetitive

ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "tests" / "fixtures" / "support_labels.jsonl"

# A real source of the shipped sample (Apple's 10-Q, MD&A), as a prompt carries it.
SOURCE_LABEL = "Apple Inc. 10-Q filed 2025-08-01, Part I, Item 2. Management’s Discussion and Analysis"
SOURCE_TEXT = (
    "As of June 28, 2025, the Company had manufacturing purchase obligations of $44.1 billion, with "
    "$43.8 billion payable within 12 months. During the first nine months of 2025, the Company released "
    "from escrow €14.2 billion, or $15.4 billion, to Ireland in connection with the State Aid Decision, "
    "which fully settled the obligation."
)
INSTRUCTION = "Summarise Apple Inc.'s financial performance over the last fiscal years, using the figures."
# The prompts as the pipeline writes them (reports' build_user_prompt and system prompt), spelled
# out here so the test does not follow their wording when it changes.
SYSTEM_PROMPT = (
    "You are an equity research analyst writing one section of a research report. "
    "Use only facts stated in the numbered sources. After each sentence, cite the source it comes "
    "from as [n]. Copy numbers exactly as the sources give them; never invent a number. "
    "Write plain prose paragraphs without headings or lists."
)
USER = "\n".join(
    [
        "Company: Apple Inc. (AAPL)",
        "Section: Financial performance",
        "",
        "Sources:",
        f"[1] {SOURCE_LABEL}: {SOURCE_TEXT}",
        "",
        f"Task: {INSTRUCTION} Write one short paragraph. End every sentence with the number of the "
        "source it comes from in brackets, like [1].",
    ]
)
CLAIM_USER = f"{SOURCE_TEXT}\n\nQuestion: What were Apple's purchase obligations?\nAnswer in one sentence."
PROMPT_PARTS = [SYSTEM_PROMPT, USER]  # the whole user prompt: its source line counts for its label only

ECHOES = [
    ("Task: Summarise Alphabet Inc.'s financial performance over the last fiscal years", "Task"),
    (
        "Apple Inc. 10-Q filed 2025-08-01, Part I, Item 2, and [1] Apple Inc. 11-Q filed 12-Q, Item 3",
        "source label",
    ),
    ("[1] Apple Inc. 10-Q filed 2025-08-01, Part I, Item 2: the Company had obligations.", "source label"),
    ("Sources: [1] Tesla, Inc. 10-K filed 2025-01-30, ITEM 7.", "Sources"),
    ("Company: Meta Platforms, Inc. (META) Section: Risks", "Company"),
    ("News 2025-05-23: Trump says Apple to pay 25% tariff on iPhones", "news source label"),
    ("Write two short paragraphs about Apple's capital return program and cite the sources.", "prompt"),
    ("According to the numbered sources, Apple is a technology company.", "prompt"),
    # 8+ consecutive words of the system prompt
    ("Use only facts stated in the numbered sources and copy numbers exactly.", "prompt"),
    ("Apple says: copy numbers exactly as the sources give them; never invent a number.", "instruction"),
    # 8+ consecutive words of the task line (the instruction, not a source)
    (
        "Apple summarises its financial performance over the last fiscal years, using the figures.",
        "instruction",
    ),
]

NOT_ECHOES = [
    "Apple's manufacturing purchase obligations were $44.1 billion as of June 28, 2025 [1].",
    # a source sentence quoted verbatim is quoting, not echo
    "During the first nine months of 2025, the Company released from escrow €14.2 billion, or $15.4 billion, "
    "to Ireland in connection with the State Aid Decision, which fully settled the obligation.",
    "Apple's 10-K for fiscal 2024 describes iPhone, Mac, iPad, wearables and services.",
    "The company's section of the market grew, and its sources of revenue widened.",
    "Meta's Reality Labs segment reported an operating loss of $17.7 billion in 2024.",
    "Tesla, Inc. designs, develops, manufactures and sells electric vehicles and energy storage products.",
    "NVIDIA's gross margin increased to 75.0% in fiscal year 2025 from 72.7% in fiscal year 2024.",
]


@pytest.mark.parametrize(("text", "why"), ECHOES)
def test_echoes_are_flagged_with_a_reason(text: str, why: str):
    reason = is_echo(text, PROMPT_PARTS)
    assert reason is not None, text
    assert why.lower() in reason.lower(), reason


@pytest.mark.parametrize("text", NOT_ECHOES)
def test_ordinary_sentences_are_not_echo(text: str):
    assert is_echo(text, PROMPT_PARTS) is None


def test_label_given_as_a_prompt_part_is_echo_even_without_the_filed_pattern():
    label = "Wikipedia: Nvidia"
    assert is_echo("As Wikipedia: Nvidia says, the company was founded in 1993.", [f"[1] {label}: text"])
    assert is_echo("Nvidia was founded in 1993 by Jensen Huang.", [f"[1] {label}: text"]) is None


def test_long_quote_of_a_source_given_as_a_prompt_part_is_not_echo():
    """A caller may pass the whole prompt; a passage inside it is quoted, never echoed."""
    assert is_echo(SOURCE_TEXT, [USER]) is None
    # a passage continued on further lines (a table) is still a passage
    multi = f"Sources:\n[1] {SOURCE_LABEL}: {SOURCE_TEXT}\nNet sales | 2025 | 2024 | up in every region and every quarter\n\nTask: x"
    assert is_echo("Net sales 2025 2024 up in every region and every quarter.", [multi]) is None
    # the claim prompt carries its passage bare: the passage given as a source makes it a quote
    assert is_echo(SOURCE_TEXT, [CLAIM_USER], sources=[SOURCE_TEXT]) is None
    assert is_echo("Question: What were Apple's purchase obligations?", [CLAIM_USER], [SOURCE_TEXT])
    assert "instruction" in (
        is_echo(
            "What were Apple's purchase obligations? Answer in one sentence.", [CLAIM_USER], [SOURCE_TEXT]
        )
        or ""
    )


REPETITIVE = [
    ("2024, 2023, 2019, 2009, 2108, 2030, 2040", "bare numbers"),
    ("Revenue in the years 2024, 2023, 2019, 2009, 2108, 2030, 2040 was strong.", "bare numbers"),
    ("Apple sells iPhones. Apple sells iPhones.", "same sentence"),
    (
        "Apple's revenue increased in 2024. Apple's revenue increased in 2023. Apple's revenue increased "
        "in 2022. Apple's revenue increased in 2021.",
        "times with other numbers",
    ),
    ("The company the the the the revenue.", "times in a row"),
    ("revenue revenue revenue revenue", "times in a row"),
    (
        "The company reported strong results in 2024 and the company reported strong results in 2023 "
        "and the company reported strong results in 2022, and the company reported strong results.",
        "4-grams",
    ),
]

NOT_REPETITIVE = [
    "Meta's total revenue increased 19%, 17%, and 16% between the third and fourth quarters of 2024, 2023, and 2022.",
    "Automotive regulatory credits revenue decreased $451 million, or 51%, in the three months ended June 30, "
    "2025. Automotive regulatory credits revenue decreased $298 million, or 22%, in the six months ended June 30, 2025.",
    "The weighted-average remaining lives of the Notes were 15.4, 15.2, 16.5, 14.2, 12.8, and 4.6 years, respectively.",
    "Apple designs, manufactures and markets smartphones, personal computers, tablets, wearables and accessories.",
    "Revenue grew. Margins held.",
    "",
]


@pytest.mark.parametrize(("text", "why"), REPETITIVE)
def test_repetition_is_flagged_with_a_reason(text: str, why: str):
    reason = is_repetitive(text)
    assert reason is not None, text
    assert why in reason, reason


@pytest.mark.parametrize("text", NOT_REPETITIVE)
def test_ordinary_text_is_not_repetitive(text: str):
    assert is_repetitive(text) is None


def test_labelled_supported_sentences_are_neither_echo_nor_repetitive():
    """Every sentence an analyst judged supported in the support set passes both checks."""
    rows = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
    for row in rows:
        if row["supported"]:
            parts = [SYSTEM_PROMPT, f"[1] {row['label']}: {row['source']}"]
            assert is_echo(row["sentence"], parts) is None, row["sentence"]
            assert is_repetitive(row["sentence"]) is None, row["sentence"]
    echoes = [r for r in rows if r["kind"] == "echo"]
    assert echoes and all(is_echo(r["sentence"], [SYSTEM_PROMPT]) for r in echoes)


def test_repetition_limits_sit_above_the_shipped_prose():
    """The sample's Wikipedia and news passages, chunked as ingest does: no Wikipedia passage is
    flagged, and the few news passages flagged (8 of ~780 when measured) each print their
    headline twice, once in capitals: a real repeat. (On all 3,199 prose passages including the
    filings, 16 were flagged when the limits were set, each a real repeat.)
    """
    from rag.chunking import chunk_document
    from rag.sources.news import parse_news_csv
    from rag.sources.wikipedia import parse_wikipedia_jsonl

    wiki = parse_wikipedia_jsonl(ROOT / "data" / "wikipedia" / "companies.jsonl.gz")
    news = [d for path in sorted((ROOT / "data" / "news").glob("*.csv.gz")) for d in parse_news_csv(path)]
    wiki_passages = [p.text for d in wiki for p in chunk_document(d) if " | " not in p.text]
    news_passages = [(d.title, p.text) for d in news for p in chunk_document(d)]
    assert len(wiki_passages) > 300 and len(news_passages) > 700
    assert [p for p in wiki_passages if is_repetitive(p)] == []
    flagged = [(title, text) for title, text in news_passages if is_repetitive(text)]
    assert len(flagged) <= 0.015 * len(news_passages)
    for title, text in flagged:
        head = " ".join(_tokens_of(title)[3:7])  # "NIKE: CO IS ..." drops a word of "Nike Says Co Is"
        assert " ".join(_tokens_of(text)).count(head) >= 2, title


def _tokens_of(text: str) -> list[str]:
    return [w.lower() for w in text.replace("’", "'").split()]
