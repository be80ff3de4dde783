"""Citation primitives shared by the claim checks (reports/claims.py) and the renderer.

Local citation numbers in model text ([n] as numbered in that unit's prompt) are rewritten to
the report's global numbers; markers that point at no source of the unit are removed from the
text and recorded as invalid. Sentence splitting keeps each sentence's trailing markers with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from models.sentences import ABBREVIATION, BOUNDARY
from reports.sanitize import CITATION_MARKER, _expand

Encode = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) unit vectors


def split_sentences(paragraph: str) -> list[str]:
    """Sentences with their trailing citation markers attached ("… grew 2%. [1]" stays whole)."""
    out, start = [], 0
    for m in BOUNDARY.finditer(paragraph):
        piece = paragraph[start : m.end(1)].strip()
        if out and ABBREVIATION.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
        start = m.end()
    tail = paragraph[start:].strip()
    if out and tail and ABBREVIATION.search(out[-1]):
        out[-1] = f"{out[-1]} {tail}"
    elif tail:
        out.append(tail)
    return [s for s in out if s]


def remap_citations(sentence: str, source_map: dict[int, int]) -> tuple[str, list[int], list[int]]:
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
