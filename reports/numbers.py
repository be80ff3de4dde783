"""Find the numbers in generated text and check each against the facts table and the cited passages.

A number is verified when some reference value lies within the precision it was written with:
"$391.0 billion" (±0.05 billion) matches the XBRL fact 391,035,000,000 and a passage's "391,035"
(read as millions); "46%" (±0.5) matches a derived margin of 46.2. Years, citation markers and
numbers glued to letters ("FY2024", "10-K", "Item 1A", "Q2") are not figures and are skipped.
Bare reference numbers in passages are often table cells in thousands or millions, so they are
also tried at x1e3 and x1e6; a bare generated number is tried the same way against the references.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SCALES = {
    "trillion": 1e12,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "million": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "thousand": 1e3,
    "k": 1e3,
}
_NUMBER = re.compile(
    r"(?<![\w.\[])(?P<cur>\$\s?)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<scale>trillion|billion|million|thousand|bn|mn|[bmk])(?![a-z]))?"
    r"(?P<pct>\s?%|\s?percent)?(?![\w\]]|-[a-z])",
    re.IGNORECASE,
)
_TABLE_SCALES = (1.0, 1e3, 1e6)  # bare numbers: units, thousands or millions
_REL_EPS = 1e-9


@dataclass(frozen=True)
class Mention:
    text: str  # as written, e.g. "$391.0 billion"
    value: float  # fully scaled (USD, not billions); percent as 0-100
    percent: bool
    tolerance: float  # half a unit of the last written digit, scaled
    bare: bool  # no currency, scale word or percent sign


def find_numbers(text: str) -> list[Mention]:
    """Figures written in `text` (money, percentages, counts), years and labels excluded."""
    out = []
    for m in _NUMBER.finditer(text):
        raw = m.group("num")
        scale_word = (m.group("scale") or "").lower()
        percent = bool(m.group("pct"))
        cur = bool(m.group("cur"))
        digits = raw.replace(",", "")
        if not (cur or scale_word or percent or "," in raw or "." in raw) and re.fullmatch(
            r"(19|20)\d\d", digits
        ):
            continue  # a year
        if scale_word in ("b", "m", "k") and not cur:
            continue  # "3 m" without a currency sign is too ambiguous (metres, months)
        scale = _SCALES.get(scale_word, 1.0)
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        out.append(
            Mention(
                text=m.group(0).strip(),
                value=float(digits) * scale,
                percent=percent,
                tolerance=0.5 * 10 ** (-decimals) * scale,
                bare=not (cur or scale_word or percent),
            )
        )
    return out


def reference_values(
    facts: Iterable[tuple[float, bool]], passages: Iterable[str]
) -> list[tuple[float, bool]]:
    """(value, is_percent) pairs a generated figure may be checked against."""
    refs = list(facts)
    for text in passages:
        for m in find_numbers(text):
            scales = _TABLE_SCALES if m.bare else (1.0,)
            refs.extend((m.value * s, m.percent) for s in scales)
    return refs


def is_verified(mention: Mention, refs: list[tuple[float, bool]]) -> bool:
    scales = _TABLE_SCALES if mention.bare else (1.0,)
    for value, percent in refs:
        if percent != mention.percent:
            continue
        for s in scales:
            target = mention.value * s
            if abs(target - value) <= mention.tolerance * s + _REL_EPS * abs(value):
                return True
    return False


def check_numbers(text: str, refs: list[tuple[float, bool]]) -> tuple[int, list[str]]:
    """(number of verified figures, the unverified figures as written) for one paragraph."""
    verified, unverified = 0, []
    for mention in find_numbers(text):
        if is_verified(mention, refs):
            verified += 1
        else:
            unverified.append(mention.text)
    return verified, unverified
