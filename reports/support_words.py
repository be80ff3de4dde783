"""The words of a support check: content words (stemmed, no stop words), and the direction words.

Shared by reports/support.py (lexical overlap, polarity rule) and reports/support_roles.py (the
roles rule), so neither imports the other's internals.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# English function words plus the filings' boilerplate subjects ("the Company", "we"), which say
# nothing about whether a claim is in the passage.
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    may me might more most must my myself no nor not now of off on once only or other our ours
    ourselves out over own same shall she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up upon very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    company companys us per
    """.split()
)

_CITATION = re.compile(r"\[\s*\d+(?:\s*[-,\u2013]\s*\d+)*\s*\]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - snowballstemmer ships no type hints
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("\u2019", "'").replace("\u2018", "'").lower()


def content_words(text: str) -> list[str]:
    """Stemmed content words of a text, in order: no stop words, numbers or citation markers."""
    words: list[str] = []
    for token in _WORD.findall(_normalise(_CITATION.sub(" ", text))):
        if token.endswith("'s"):
            token = token[:-2]
        token = token.replace("'", "")
        if len(token) > 1 and token not in STOP_WORDS:
            words.append(_stem(token))
    return words


# Polarity: a sentence built from the passage's own words can still say the opposite. Checked
# against the passage unit (sentence) that shares the most content words with the sentence.
_NEGATORS = frozenset({"not", "no", "never", "cannot", "nor", "none", "neither", "without"})
_UP = frozenset("increas rise rose risen grow grew grown growth higher gain expand improv".split())
_DOWN = frozenset(
    "decreas declin fall fell fallen lower drop reduc reduct shrink shrank smaller fewer".split()
)
