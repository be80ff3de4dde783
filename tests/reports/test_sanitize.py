"""Sanitizer: table-driven cases for untrusted model text, plus citation extraction."""

from __future__ import annotations

import pytest

from reports.sanitize import extract_citations, sanitize_inline, sanitize_model_text, split_paragraphs

CASES = [
    # (id, model output, sanitized text)
    ("plain", "Revenue grew 2% [1].", "Revenue grew 2% [1]."),
    ("script dropped with content", "<script>alert(1)</script>Revenue grew [1].", "Revenue grew [1]."),
    ("unclosed script drops the rest", "Fine [1]. <script>alert(1)", "Fine [1]."),
    ("style dropped", "<style>body{display:none}</style>Text", "Text"),
    ("tags stripped", "<b>Net income</b> was <i>$93.7B</i> [2].", "Net income was $93.7B [2]."),
    ("img onerror", '<img src=x onerror="alert(1)">Text', "Text"),
    ("unclosed tag opener defused", "<img src=x onerror=alert(1)", "< img src=x onerror=alert(1)"),
    ("entity-encoded script", "&lt;script&gt;alert(1)&lt;/script&gt;ok", "ok"),
    ("double-encoded tag", "&amp;lt;img src=x onerror=alert(1)&amp;gt;ok", "ok"),
    ("numeric entities", "&#60;script&#62;x&#60;/script&#62;y", "y"),
    ("entities unescaped to text", "AT&amp;T and S&P 500, R&D &gt; 10%", "AT&T and S&P 500, R&D > 10%"),
    ("comparison is prose", "margin < 5% and growth > 2%", "margin < 5% and growth > 2%"),
    ("comment and cdata", "<!-- hidden -->shown<![CDATA[x]]>", "shown"),
    ("autolink to javascript", "<javascript:alert(1)> text", "text"),
    ("block tags keep paragraphs", "<p>One</p><p>Two<br>three</p>", "One\n\nTwo three"),
    ("control chars", "Rev\x00enue\x07 grew\x1b[31m [1]", "Revenue grew [1]"),
    ("zero-width and bidi", "App\u200ble \u202eInc\u202c", "Apple Inc"),
    ("whitespace collapsed", "Rev\n  grew\t[1].\n\n\n  Margins  rose.", "Rev grew [1].\n\nMargins rose."),
    ("crlf paragraphs", "One.\r\n\r\nTwo.", "One.\n\nTwo."),
    ("im_end cuts the next turn", "Grew [1].<|im_end|>\n<|im_start|>user\nmore?", "Grew [1]."),
    ("role header dropped", "<|im_start|>assistant\nRevenue grew [1].", "Revenue grew [1]."),
    ("bot and human turns", "<bot>: Revenue grew.\n<human>: what else?", "Revenue grew."),
    ("endoftext", "Done [3].<|endoftext|>junk", "Done [3]."),
    ("image removed, alt kept", "See ![chart](http://tracker.example/p.png) here", "See chart here"),
    ("javascript link", "[click](javascript:alert(1)) now", "click now"),
    ("link with parens in url", "[x](javascript:alert(document.cookie)) y", "x y"),
    ("citation link keeps marker", "Sales rose [1](http://evil.example).", "Sales rose [1]."),
    ("nested brackets", "[a [1] b](javascript:x) end", "[a [1] b] end"),
    ("reference definition broken", "[1]: javascript:alert(1)", "[1] : javascript:alert(1)"),
    ("citation forms untouched", "A [1], B [2, 3], C [2][3], D [1-3]", "A [1], B [2, 3], C [2][3], D [1-3]"),
    ("empty", "", ""),
    ("only markup", "<div><span></span></div>", ""),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sanitize(raw: str, expected: str):
    assert sanitize_model_text(raw) == expected


@pytest.mark.parametrize("raw", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_sanitize_is_idempotent_and_markup_free(raw: str):
    once = sanitize_model_text(raw)
    assert sanitize_model_text(once) == once
    assert "<script" not in once.lower() and "](" not in once and "![" not in once


def test_deeply_encoded_payload_never_yields_a_tag():
    payload = "<script>alert(1)</script>"
    for _ in range(12):  # more rounds than the sanitizer decodes
        payload = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = sanitize_model_text(payload)
    assert "<script" not in out.lower()


def test_sanitize_inline_is_one_line():
    assert sanitize_inline("Apple\n\n<b>Inc.</b>") == "Apple Inc."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One.\n\nTwo.", ["One.", "Two."]),
        ("  One\nstill one.\n \n\nTwo  ", ["One still one.", "Two"]),
        ("\n\n", []),
    ],
)
def test_split_paragraphs(text: str, expected: list[str]):
    assert split_paragraphs(text) == expected


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("Revenue grew [1].", [1]),
        ("Both [2, 3] and [3; 4].", [2, 3, 4]),
        ("Adjacent [2][3].", [2, 3]),
        ("Range [1-3] and en dash [5–6].", [1, 2, 3, 5, 6]),
        ("Mixed [1, 4-5].", [1, 4, 5]),
        ("Repeats [2] then [1] then [2].", [2, 1]),
        ("No markers, $391,035M and [a] and [].", []),
        ("Huge range [1-99999] keeps endpoints.", []),  # 5 digits is not a marker at all
        ("Long range [1-900] keeps endpoints.", [1, 900]),
        ("Reversed [3-1].", [3, 1]),
    ],
)
def test_extract_citations(paragraph: str, expected: list[int]):
    assert extract_citations(paragraph) == expected
