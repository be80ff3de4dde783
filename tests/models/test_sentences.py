"""The one-sentence stop: where a sentence ends, and the decoder stopping there (any backend)."""

from __future__ import annotations

import pytest

from models.decode import Row, finished, replay
from models.sentences import sentence_ends


@pytest.mark.parametrize(
    "text, ends",
    [
        ("Apple Inc. designs phones", 0),
        ("Apple Inc. designs phones.", 0),  # complete, but nothing follows yet
        ("Apple Inc. designs phones. It", 1),
        ("Sales in the U.S. Market rose. Then", 1),
        ("Revenue was $391.0 billion [1]. It grew [2]. The", 2),
        ('He said "it grew." Then', 1),
        ("the Apple I. Its successor", 1),
    ],
)
def test_sentence_ends(text, ends):
    assert sentence_ends(text) == ends


def _row(tiny_engine, text: str, sentences: int) -> Row:
    tok = tiny_engine.tokenizer
    row = Row(ids=[0], max_new=200, sentences=sentences)
    return replay(tok.encode(text, add_special_tokens=False), row, set(), tok)


def test_decoder_stops_after_the_first_sentence_only_when_asked(tiny_engine):
    tok = tiny_engine.tokenizer
    text = "Apple Inc. designs phones. It also sells watches and services worldwide."
    row = _row(tiny_engine, text, 1)
    assert row.reason == "stop"
    written = tok.decode(row.tokens, skip_special_tokens=True)
    assert written.startswith("Apple Inc. designs phones. I") and "watches" not in written  # stopped at "It"
    assert _row(tiny_engine, text, 0).reason == "length"  # no stop requested: runs on
    unfinished = Row(ids=[0], max_new=200, sentences=1, tokens=tok.encode("Apple Inc. is", add_special_tokens=False))
    assert not finished(unfinished, set(), tok)  # "Inc." is not a sentence end


def test_engine_honours_max_sentences(tiny_engine):
    from models.types import GenerationRequest

    free, one = tiny_engine.generate(
        [
            GenerationRequest("a", "Apple designs phones.", max_new_tokens=60),
            GenerationRequest("b", "Apple designs phones.", max_new_tokens=60, max_sentences=1),
        ]
    )
    # the random tiny model may or may not write a sentence end; when it does, "b" stops there
    assert one.tokens_out <= free.tokens_out
    assert sentence_ends(one.text) <= 1


def test_a_camel_case_brand_starts_a_sentence():
    assert sentence_ends("higher net sales of laptops and desktops. iPad net sales decreased") == 1
