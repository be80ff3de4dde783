"""How well one source passage supports one generated sentence: a score in [0, 1] and a threshold.

Why not the cosine against the whole passage (what reports/checks.py attributes with today): a
passage is ~160 words about several things, and a claim is supported by ONE sentence of it. The
whole-passage vector is an average, so a sentence about the right company and topic scores about
as high as a faithful paraphrase, and a paraphrase of one sentence is diluted by the others. And a
sentence embedding hardly sees figures: "gross margin rose to 78.0%" and "... to 75.0%" embed
almost identically. On the labelled set below, no threshold of the whole-passage cosine reaches
precision 0.9 with any recall; its best F1 is 0.72 (P 0.66, R 0.78), and today's 0.55 gives P 0.65.
So the score combines two signals and two rules:

* lexical: the share of the sentence's distinct content terms found in the passage: words
  (lower-cased, Snowball-stemmed, stop words removed) and figures. A figure matches at the
  precision it is written ("$391.0 billion" matches "$391,035 million", "72.4%" does not match
  "72.7%", "10 million" does not match "November 10"), see `figure_in`.
* embedding: the best cosine between the sentence and a window of 1-2 consecutive passage
  sentences (split as rag/chunking.py splits passages), clipped to [0, 1]. Windows of 3
  measured no better.
* number rule: a sentence with a figure the passage does not state has its score multiplied by
  NUMBER_MISS_FACTOR, whatever its words: a wrong figure is the error a reader can least detect.
* polarity rule: a sentence negated where the closest passage units are not, or saying "up"
  where the closest unit says only "down" (or the reverse), is multiplied by MISMATCH_FACTOR.
* roles rule (reports/support_roles.py): a sentence with a causal connective ("driven by", "due
  to", "because of", "as a result of", "attributable to", "resulting from", "primarily from") or
  an offsetting one ("offset by", "partially offset by", "partly offset by") is read as EFFECT
  (before it) and CAUSE (after it): stemmed content words, less the company's name, periods,
  hedges and direction or scale words. It is multiplied by MISMATCH_FACTOR unless one passage
  sentence has a connective of the same family whose effect and cause hold the sentence's: each
  part with some word in place, none moved there from elsewhere in the passage, and at most half
  of it (at least one word) words the passage never uses; and a circular sentence, whose cause
  only repeats its effect, fails unless the passage says it so. "compared to" links periods, not
  a cause to an effect, and is no connective; a sentence without a connective is unaffected.

support = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * embedding, then the rules. Lexical
overlap alone passes a sentence stitched from the passage's words with another meaning and
rejects a faithful paraphrase in other words; the window cosine sees meaning but not figures or
names. The constants were chosen by bench/support.py on tests/fixtures/support_labels.jsonl (271
hand-judged sentences against 42 passages of the shipped filings, news and Wikipedia; the last 61,
added with the roles rule, are 6 role swaps the demo's model wrote, 27 faithful paraphrases of
causal sentences and 28 constructed swaps), precision first: publishing an unsupported sentence is
worse than dropping a supported one. There, at SUPPORT_THRESHOLD: precision 0.93, recall 0.91
(threshold chosen on one half of the passages and applied to the other: P 0.81 / R 1.00 and
P 0.95 / R 0.91); the lexical signal alone at LEXICAL_THRESHOLD: P 0.94, R 0.85. On the first 210
rows the roles rule moves precision from 0.900 to 0.909 at the same recall 0.882 (lexical: 0.912 to
0.922 at 0.814). A flagged score is at most MISMATCH_FACTOR = 0.5, under both thresholds: a rule
vetoes, its factor needs no tuning. tests/reports/test_support.py pins these.

What this does not catch: a claim rearranging the passage's own words and figures ("interest
expense was $2.4 billion in 2023 and $3.2 billion in 2024" when it was the other way round, "56%
in fiscal 2025" when 56% was fiscal 2024), a plausible claim made only of the passage's words
("Amazon acquired Anthropic in November 2024"), a flipped claim the polarity words miss, and a
swap without a connective ("higher Pro model sales drove Mac net sales") or of periods ("iPad net
sales rose in the third quarter due to iPad Air" when they rose over nine months).
reports/numbers.py checks figures against their periods; this score does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from reports.support_words import (
    _CITATION,
    _DOWN,
    _NEGATORS,
    _UP,
    _WORD,
    _normalise,
    _stem,
    content_words,
)

Encode = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) unit vectors, as in reports/checks.py

# Chosen by bench/support.py (see the module docstring); the test pins the precision they give.
SUPPORT_THRESHOLD = 0.65
LEXICAL_THRESHOLD = 0.81  # lexical signal alone, where no embedder is at hand
LEXICAL_WEIGHT = 0.5
NUMBER_MISS_FACTOR = 0.5
MISMATCH_FACTOR = 0.5
WINDOW_SENTENCES = 2  # windows of 1..2 consecutive source sentences (3 measured no better)

# A figure: digits with thousands commas and a decimal part, and the percent sign or scale word
# that follows it ("$4.7 billion", "18%", "$1-billion", "1,234").
_FIGURE = re.compile(
    r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)"
    r"(?:\s*-?\s*(%|percent\b|per cent\b|thousand\b|million\b|billion\b|trillion\b|bn\b|mn\b))?",
    re.I,
)
_SCALES = {"thousand": 1e3, "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}


@dataclass(frozen=True)
class Figure:
    """A number as written: its literal value, and for scaled/percent figures the value it means."""

    text: str  # as written, e.g. "$4.7 billion" -> "4.7 billion"
    raw: float  # the digits alone: 4.7
    value: float  # scaled: 4.7e9; percent and bare figures: the digits
    tolerance: float  # half a unit of the last written digit, scaled: 0.05e9
    kind: str  # "%", "scaled" or "" (bare)


def figures(text: str) -> list[Figure]:
    """The figures of a text, citation markers removed (their numbers are not claims)."""
    out = []
    for m in _FIGURE.finditer(_normalise(_CITATION.sub(" ", text))):
        digits, unit = m.group(1).replace(",", ""), (m.group(2) or "").lower()
        raw = float(digits)
        half = 0.5 * 10 ** -(len(digits.split(".")[1]) if "." in digits else 0)
        if unit in ("%", "percent", "per cent"):
            out.append(Figure(m.group(0), raw, raw, half, "%"))
        elif unit:
            scale = _SCALES[unit]
            out.append(Figure(m.group(0), raw, raw * scale, half * scale, "scaled"))
        else:
            out.append(Figure(m.group(0), raw, raw, 0.0, ""))
    return out


def figure_in(figure: Figure, source: Sequence[Figure]) -> bool:
    """Whether the source states this figure.

    A bare number ("2024", "18 types") needs the same digits; a percentage a percentage within
    half a unit of its last digit ("75%" matches "75.0%", "72.4%" does not match "72.7%"); a
    scaled figure the same amount within that tolerance, written at any scale ("$391.0 billion"
    matches "$391,035 million"), or a bare source number of 4+ digits read as thousands or
    millions (a table cell: "391,035" in a table "in millions").
    """
    for g in source:
        if figure.kind == "":
            if g.raw == figure.raw:
                return True
        elif figure.kind == "%":
            if g.kind == "%" and abs(g.value - figure.value) <= figure.tolerance + 1e-9:
                return True
        elif g.kind == "scaled":
            if abs(g.value - figure.value) <= figure.tolerance * (1 + 1e-9):
                return True
        elif g.kind == "" and g.raw >= 1000:
            if any(abs(g.raw * k - figure.value) <= figure.tolerance * (1 + 1e-9) for k in (1, 1e3, 1e6)):
                return True
    return False


@dataclass(frozen=True)
class Signals:
    """The parts of one support score, for audit and for bench/support.py."""

    lexical: float  # share of content terms (words and figures) found in the source
    embedding: float  # best window cosine, clipped to [0, 1]; 0 without an encoder
    missing_numbers: tuple[str, ...]  # the sentence's figures the source does not state
    mismatches: tuple[str, ...]  # "negation" / "direction": the closest source unit says otherwise
    score: float


def lexical_support(sentence: str, source: str) -> tuple[float, tuple[str, ...]]:
    """(share of the sentence's distinct content terms found in the source, figures not found).

    Terms are the distinct stemmed content words and the figures, so "revenue ... revenue" counts
    once; a sentence without content terms (all stop words, or empty) has nothing the source
    could support and scores 0.
    """
    words = set(content_words(sentence))
    sentence_figures = list({f.text: f for f in figures(sentence)}.values())
    if not words and not sentence_figures:
        return 0.0, ()
    source_figures = figures(source)
    missing = tuple(f.text for f in sentence_figures if not figure_in(f, source_figures))
    found = len(words & set(content_words(source))) + len(sentence_figures) - len(missing)
    return found / (len(words) + len(sentence_figures)), missing


def _polarity(text: str) -> tuple[bool, bool, bool]:
    """(negated, says up, says down) of a text."""
    raw = _normalise(text)
    tokens = set(_WORD.findall(raw))
    negated = bool(tokens & _NEGATORS) or "n't" in raw
    stems = {_stem(t) for t in tokens}
    return negated, bool(stems & _UP), bool(stems & _DOWN)


def polarity_mismatches(sentence: str, source: str) -> tuple[str, ...]:
    """Where the source units closest to the sentence (most shared content words) say otherwise.

    "negation": the sentence is negated and none of the three closest units is ("Apple does
    not intend to defend itself" against "intends to vigorously defend itself"); the other way
    round is not checked, as a faithful summary often drops a negated clause. "direction": the
    sentence says up (increase, rise, grew, higher ...) where the closest unit only says down, or
    the other way round ("interest income fell" against "interest income was $2.9 billion and
    $4.7 billion ... due to a higher average balance"). Rough, but a flipped claim is otherwise
    invisible to both signals: it shares the passage's words and its meaning vector.
    """
    from rag.chunking import split_units

    words = set(content_words(sentence))
    units = split_units(source) or [source]
    closest = sorted(units, key=lambda u: -len(words & set(content_words(u))))[:3]
    s_neg, s_up, s_down = _polarity(sentence)
    near = [_polarity(u) for u in closest]
    out = []
    if s_neg and not any(neg for neg, _, _ in near):
        out.append("negation")
    _, u_up, u_down = near[0]
    if (s_up and not s_down and u_down and not u_up) or (s_down and not s_up and u_up and not u_down):
        out.append("direction")
    return tuple(out)


def source_windows(source: str, size: int = WINDOW_SENTENCES) -> list[str]:
    """Runs of 1..size consecutive sentences (or table rows) of the source.

    Split as rag/chunking.py splits passages, so a window is a unit the passage was built from.
    The whole passage is not a window: its cosine is the topic match this score is meant to beat.
    """
    from rag.chunking import split_units

    units = split_units(source) or [source.strip()]
    windows = [" ".join(units[i : i + n]) for n in range(1, size + 1) for i in range(len(units) - n + 1)]
    return list(dict.fromkeys(windows))


def combine(
    lexical: float,
    embedding: float | None,
    missing_numbers: Sequence[str] = (),
    mismatches: Sequence[str] = (),
) -> float:
    """The support score from its signals (see the module docstring); `embedding` None: lexical only."""
    score = lexical if embedding is None else LEXICAL_WEIGHT * lexical + (1.0 - LEXICAL_WEIGHT) * embedding
    if missing_numbers:
        score *= NUMBER_MISS_FACTOR
    if mismatches:
        score *= MISMATCH_FACTOR
    return float(min(1.0, max(0.0, score)))


def embedding_support(pairs: Sequence[tuple[str, str]], encode: Encode) -> list[float]:
    """Best cosine between each sentence and a window of its source, in [0, 1]; one encode call."""
    if not pairs:
        return []
    sentences = [_CITATION.sub(" ", s).strip() for s, _ in pairs]
    windows = {src: source_windows(src) for src in dict.fromkeys(src for _, src in pairs)}
    texts = list(dict.fromkeys([*sentences, *(w for ws in windows.values() for w in ws)]))
    index = {t: i for i, t in enumerate(texts)}
    vectors = np.asarray(encode(texts), dtype=np.float32)
    out = []
    for sentence, (_, src) in zip(sentences, pairs, strict=True):
        rows = vectors[[index[w] for w in windows[src]]]
        out.append(float(np.clip(np.max(rows @ vectors[index[sentence]]), 0.0, 1.0)))
    return out


def support_signals(pairs: Sequence[tuple[str, str]], encode: Encode | None = None) -> list[Signals]:
    """Signals for many (sentence, source) pairs, with ONE encode call over the distinct texts.

    Without `encode` the embedding signal is 0 and `score` is the lexical signal alone (with the
    number and polarity rules), to be compared with LEXICAL_THRESHOLD, not SUPPORT_THRESHOLD.
    """
    pairs = list(pairs)
    lexical = [lexical_support(s, src) for s, src in pairs]
    from reports.support_roles import role_mismatches  # late: it imports this module's constants

    flips = [polarity_mismatches(s, src) + role_mismatches(s, src) for s, src in pairs]
    best: list[float | None] = list(embedding_support(pairs, encode)) if encode else [None] * len(pairs)
    return [
        Signals(lex, emb or 0.0, miss, flip, combine(lex, emb, miss, flip))
        for (lex, miss), flip, emb in zip(lexical, flips, best, strict=True)
    ]


def support_scores(pairs: Iterable[tuple[str, str]], encode: Encode | None = None) -> list[float]:
    """support_score for many (sentence, source) pairs, batching the embedder calls."""
    return [s.score for s in support_signals(list(pairs), encode)]


def support_score(sentence: str, source: str, encode: Encode | None = None) -> float:
    """How well `source` supports `sentence`, in [0, 1]; compare with SUPPORT_THRESHOLD.

    Without `encode`, the lexical signal alone (compare with LEXICAL_THRESHOLD).
    """
    return support_scores([(sentence, source)], encode)[0]


def threshold_for(encode: Encode | None) -> float:
    """The measured threshold for the score `support_score` returns with or without an encoder."""
    return SUPPORT_THRESHOLD if encode is not None else LEXICAL_THRESHOLD


def is_supported(sentence: str, source: str, encode: Encode | None = None) -> bool:
    """Whether the sentence may be published as coming from `source` (score >= its threshold)."""
    return support_score(sentence, source, encode) >= threshold_for(encode)
