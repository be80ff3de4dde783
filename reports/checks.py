"""Faithfulness checks on generated sections: citations, and attribution of uncited sentences.

Local citation numbers in model text ([n] as numbered in that section's prompt) are rewritten to
the report's global numbers; markers that point at no source of the section are removed from the
text and recorded as invalid. A small offline model rarely cites at all, so each sentence without a
valid citation is attributed to the section source it is most similar to (cosine of sentence
embeddings) when the similarity clears ATTRIBUTION_THRESHOLD; those markers are recorded
separately as `attributed`, never passed off as the model's own citations. Sentences that match
no source stay uncited, and the paragraph is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from reports.model import Paragraph
from reports.numbers import check_numbers
from reports.sanitize import CITATION_MARKER, _expand, split_paragraphs

# Cosine between a generated sentence and a source passage (all-MiniLM-L6-v2). Measured on the
# demo: sentences paraphrasing a source score 0.55-0.8; generic filler about the company 0.3-0.5.
ATTRIBUTION_THRESHOLD = 0.55

Encode = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) unit vectors

# A boundary is end punctuation, then any citation markers, then space and a capital/digit/quote;
# "$391.0 billion" and "U.S. sales" do not end a sentence.
_BOUNDARY = re.compile(r"(?<=[.!?])((?:\s*\[[^\]]*\])*)\s+(?=[A-Z0-9\"'(])")


def split_sentences(paragraph: str) -> list[str]:
    """Sentences with their trailing citation markers attached ("… grew 2%. [1]" stays whole)."""
    out, start = [], 0
    for m in _BOUNDARY.finditer(paragraph):
        out.append(paragraph[start : m.end(1)].strip())
        start = m.end()
    out.append(paragraph[start:].strip())
    return [s for s in out if s]


def _with_marker(sentence: str, n: int) -> str:
    """Put an attributed marker before the sentence's final punctuation: "… grew [2]."."""
    m = re.search(r"([.!?]+)$", sentence)
    return f"{sentence[: m.start()]} [{n}]{m.group(1)}" if m else f"{sentence} [{n}]"


def _remap(sentence: str, source_map: dict[int, int]) -> tuple[str, list[int], list[int]]:
    """Local markers -> global numbers; returns (text, valid global numbers, invalid local numbers)."""
    valid: list[int] = []
    invalid: list[int] = []

    def repl(match: re.Match[str]) -> str:
        numbers = _expand(match.group(1))
        good = [source_map[n] for n in numbers if n in source_map]
        invalid.extend(n for n in numbers if n not in source_map)
        valid.extend(g for g in good if g not in valid)
        return "[" + ", ".join(str(g) for g in dict.fromkeys(good)) + "]" if good else ""

    text = CITATION_MARKER.sub(repl, sentence)
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip(), valid, invalid


def check_section(
    text: str,
    source_map: dict[int, int],
    source_texts: dict[int, str],
    encode: Encode | None = None,
    threshold: float = ATTRIBUTION_THRESHOLD,
    number_refs: list[tuple[float, bool]] | None = None,
) -> list[Paragraph]:
    """Sanitized section text -> paragraphs with global citations, invalid markers and attributions.

    `source_texts` maps the section's local source numbers to their full text (what the model saw).
    `number_refs` are the values figures may be verified against (see reports.numbers).
    """
    paragraphs = [[_remap(s, source_map) for s in split_sentences(p)] for p in split_paragraphs(text)]
    uncited = [
        (i, j) for i, para in enumerate(paragraphs) for j, (_, valid, _) in enumerate(para) if not valid
    ]
    attributions: dict[tuple[int, int], int] = {}
    if encode is not None and uncited and source_texts:
        locals_ = sorted(source_texts)
        vectors = encode([paragraphs[i][j][0] for i, j in uncited] + [source_texts[n] for n in locals_])
        sims = vectors[: len(uncited)] @ vectors[len(uncited) :].T  # (sentences, sources) cosine
        for (i, j), row in zip(uncited, sims, strict=True):
            best = int(np.argmax(row))
            if row[best] >= threshold:
                attributions[(i, j)] = source_map[locals_[best]]

    out: list[Paragraph] = []
    for i, para in enumerate(paragraphs):
        pieces, cited, attributed, invalid = [], [], [], []
        for j, (sentence, valid, bad) in enumerate(para):
            invalid.extend(bad)
            cited.extend(n for n in valid if n not in cited)
            if (i, j) in attributions:
                n = attributions[(i, j)]
                sentence = _with_marker(sentence, n)
                if n not in cited and n not in attributed:
                    attributed.append(n)
            pieces.append(sentence)
        body = " ".join(pieces).strip()
        if not body:
            continue
        all_cited = cited + [n for n in attributed if n not in cited]
        verified, unverified = check_numbers(CITATION_MARKER.sub("", body), number_refs or [])
        out.append(
            Paragraph(
                text=body,
                citations=all_cited,
                invalid_citations=invalid,
                attributed=attributed,
                cited=bool(all_cited),
                numbers_verified=verified,
                numbers_unverified=unverified,
            )
        )
    return out
