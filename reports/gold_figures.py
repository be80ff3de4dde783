"""Figures in FinanceBench gold answers and in answers, matched within 1% of the gold.

Split from reports/answer_eval.py: reading "$1.8 bn", "(862)" or "-3.4%" is its own job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOLERANCE = 0.01  # numeric answers: relative to the gold figure (the rule)
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[-,\u2013]\s*\d+)*)\s*\]")  # [1], [1, 3], [2-4]


def strip_markers(text: str) -> str:
    """Text without [n] citation markers (their numbers are not claims)."""
    return _MARKER.sub(" ", text)


# --- figures ---------------------------------------------------------------------------------------
# Not reports.support.figures(): its Figure matches at the precision of the last written digit
# ("$391.0 billion" == "$391,035 million"), where this score needs 1% of the gold; and it drops
# signs and accounting parentheses ("(862)") and does not read "$1.8B" / "$500k".

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_FIGURE = re.compile(
    rf"""(?<![\w.,])
    (?P<minus>[-\u2212\u2013](?=[($]|US|\.?\d))?
    (?P<open>\(\s*)?
    (?P<cur>(?:US\$|USD|\$)\s*)?
    (?P<open2>\(\s*)?
    (?P<num>{_NUMBER})(?!\d)
    (?:\s*(?P<pct>%|percentage\s+points?\b|percent\b|per\s+cent\b|pct\b)
      |\s*(?P<scale>thousand|million|billion|trillion|bn|mn|mm|mln|bln)\b
      |(?P<abbr>[kmb])\b)?
    (?P<close>\s*\))?
    (?P<pct2>%)?""",
    re.I | re.X,
)
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "mm": 1e6, "mln": 1e6, "m": 1e6}
_SCALES |= {"billion": 1e9, "bn": 1e9, "bln": 1e9, "b": 1e9, "trillion": 1e12}
# Words a gold answer may carry and still be "just a figure" ("USD 1,616 million", "0.69 times").
_GOLD_FILLER = frozenset(
    "usd us dollars dollar approximately approx about around roughly circa times x per share".split()
)
# An unsigned figure may state a negative gold when the answer says which way it went.
_SAYS_NEGATIVE = re.compile(
    r"\b(?:decreas\w*|declin\w*|fell|fall\w*|drop\w*|loss\w*|lost|lower\w*|negative|reduc\w*|down"
    r"|deficit|outflow\w*|used|shrank|contract\w*)\b",
    re.I,
)


@dataclass(frozen=True)
class Figure:
    """A number as written: "$(1.8) bn" -> value -1.8, scale 1e9, unit "$", sign "()"."""

    text: str  # as written
    value: float  # the digits, signed: "(862)" -> -862.0
    scale: float  # 1e9 for "bn"/"billion"/"B", 1.0 when unscaled (and for percentages)
    unit: str  # "%", "$" or ""
    sign: str  # how a negative was written: "-", "()" or "" (positive)

    @property
    def amount(self) -> float:
        return self.value * self.scale


def _parse(text: str) -> list[tuple[Figure, tuple[int, int]]]:
    """Every figure of a text with its (start, end) span."""
    out = []
    for m in _FIGURE.finditer(text):
        raw = float(m["num"].replace(",", ""))
        parens = bool((m["open"] or m["open2"]) and m["close"])
        sign = "-" if m["minus"] else "()" if parens else ""
        if m["pct"] or m["pct2"]:
            scale, unit = 1.0, "%"
        else:
            scale, unit = _SCALES.get((m["scale"] or m["abbr"] or "").lower(), 1.0), "$" if m["cur"] else ""
        value = -raw if sign else raw
        end = m.end() if (parens or not m["close"]) else m.start("close")  # a stray ")" is not ours
        out.append((Figure(text[m.start() : end].strip(), value, scale, unit, sign), (m.start(), end)))
    return out


def figures(text: str) -> list[Figure]:
    """The figures of a text, [n] citation markers removed (their numbers are not claims)."""
    return [f for f, _ in _parse(strip_markers(text))]


def gold_figure(answer: str) -> Figure | None:
    """The gold figure when the gold answer is essentially one figure, else None (an "other" question).

    "77.78", "$1.8 bn", "-3.4%", "$ 1,616.00 million", "(862)", "0.69 times" are figures; a sentence
    with figures in it ("The quick ratio has slightly improved from 0.67 times to 0.69 times ...",
    "Best Buy generated the most cash flow ... ($1.8 bn)") is not: its figure is not the whole answer.
    """
    found = _parse(answer)
    if len(found) != 1:
        return None
    fig, (start, end) = found[0]
    rest = (answer[:start] + " " + answer[end:]).lower()
    if re.search(r"\d", rest) or any(w not in _GOLD_FILLER for w in re.findall(r"[^\W\d_]+", rest)):
        return None
    return fig


def _sign_ok(fig: Figure, gold: Figure, says_negative: bool) -> bool:
    if fig.sign == "()":  # accounting negative, or a prose aside "($1.8 bn)": either sign
        return True
    if fig.sign == "-":
        return gold.value < 0
    return gold.value >= 0 or says_negative  # "a decline of 3.4%" states a gold "-3.4%"


def _close(a: float, g: float, tolerance: float) -> bool:
    return abs(abs(a) - abs(g)) <= tolerance * abs(g) + 1e-9 * max(1.0, abs(g))


def states_figure(text: str, gold: Figure, tolerance: float = TOLERANCE) -> bool:
    """Whether the text states the gold figure within `tolerance` of it (relative to the gold).

    Scaled figures compare as amounts ("$1.81 billion" and "$1,810 million" state "$1.8 bn"; "$1,824
    million" is 1.3% off); an unscaled figure on either side also compares digit for digit ("77.78"
    states "77.78 million", "1.8" states "$1.8 bn"); a percentage only matches a percentage. Signs:
    a "-" figure needs a negative gold; an unsigned one a positive gold, or a text that says the
    quantity fell; a parenthesised one matches either.
    """
    text = strip_markers(text)
    negative = bool(_SAYS_NEGATIVE.search(text))
    for fig in figures(text):
        if (fig.unit == "%") != (gold.unit == "%") or not _sign_ok(fig, gold, negative):
            continue
        if _close(fig.amount, gold.amount, tolerance):
            return True
        if (fig.scale == 1.0 or gold.scale == 1.0) and _close(fig.value, gold.value, tolerance):
            return True
    return False
