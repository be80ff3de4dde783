"""Where a sentence ends, for the decoder's one-sentence stop and the report's sentence splitter.

One owner for the rule (models/ is the lower layer; reports/checks.py imports it): end
punctuation, optional closing quotes/brackets/citation markers, whitespace, then a capital,
digit or opening quote — unless the word before the stop is an abbreviation ("Apple Inc. is",
"the U.S. market"), which a 135M model writes constantly.
"""

from __future__ import annotations

import re

# A piece ending in one of these is not a sentence end: company suffixes, titles, "No.", "vs.",
# and dotted capitals of two or more letters (U.S., U.K.). Single initials ("the Apple I.") end.
ABBREVIATION = re.compile(
    r"(?:\b(?:Inc|Corp|Co|Ltd|Plc|LLC|No|vs|Mr|Mrs|Ms|Dr|St|Jr|Sr|approx|e\.g|i\.e)\.|\b(?:[A-Z]\.){2,3})$"
)
# The next sentence starts with a capital, a digit, a quote — or a camel-case brand ("iPad net
# sales decreased …", "eBay said …"), which SmolLM2 copies from filings' glued product headings.
BOUNDARY = re.compile(
    r"(?<=[.!?])((?:[\"'\u201d\u2019)]*)(?:\s*\[[^\]]*\])*)\s+(?=[A-Z0-9\"'(\u201c]|[a-z][A-Z])"
)


def sentence_ends(text: str) -> int:
    """Number of complete sentences followed by the start of another in `text`."""
    return sum(1 for m in BOUNDARY.finditer(text) if not ABBREVIATION.search(text[: m.start(1)]))
