"""Find the figures in a generated sentence and check each against the facts and the cited passages.

Why line and period matter: a figure that equals *some* reference value proves nothing. A report
wrote "Operating income: FY2019 $X" where X was the FY2021 figure, and a check against every value
of every year counted it as verified. So a figure is verified only by evidence that fits the
sentence:

* a fact (`FactRef`) whose period is among the periods the sentence names (if it names any) and
  whose line family is among the lines it names (if it names any);
* or the same number in a passage the sentence *cites* (passages it does not cite prove nothing).
  A passage number written right after a period label ("FY2021 $5,632 million", as the facts
  source prints them) only counts for that period.

A figure that equals a fact or passage number of another period or line, and nothing that fits,
is a *mismatch*, reported with the reason; a figure that equals nothing is *unverified*.

Precision and scale: a figure matches a value within half a unit of its last written digit, scaled:
"$391.0 billion" (±0.05 billion) matches 391,035,000,000 and a passage's "391,035" (read as
millions); "46%" (±0.5) matches a derived margin of 46.2. Bare numbers (no currency, scale word or
percent sign) are often table cells in thousands or millions, so they are also tried at x1e3 and
x1e6, on either side. Magnitudes are compared: "a loss of $5.0 billion" and "fell 3.4%" are written
without the minus sign the fact carries (the direction word is not checked).

Not figures: years, dates and their day numbers, Item/Part numbers, form names (10-K, S-1,
DEF 14A), citation markers, Note/Section/Exhibit references, ordinals, quarter and fiscal labels.
Malformed numbers ("$5,632,831,000,00") are figures that can never verify.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

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
# The digit run is taken whole (commas included) so a malformed group cannot hide a valid prefix:
# "5,632,831,000,00" is one malformed figure, not "5,632,831,000" followed by ",00".
_NUMBER = re.compile(
    r"(?<![\w.\[])(?P<cur>\$\s?)?(?P<num>\d(?:[\d,]*\d)?(?:\.\d+)?)"
    r"(?:\s?(?P<scale>trillion|billion|million|thousand|bn|mn|[bmk])(?![a-z]))?"
    r"(?P<pct>\s?%|\s?percent)?(?![\w\]]|-[a-z]|[.,]\d)",
    re.IGNORECASE,
)
_WELL_FORMED = re.compile(r"\d+(?:\.\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TABLE_SCALES = (1.0, 1e3, 1e6)  # bare numbers: units, thousands or millions
_REL_EPS = 1e-9

_MONTH = (
    r"(?-i:(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)
_DATE = (
    r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?!\s?%|\s?percent|\.\d|,\d{{3}})(?:,?\s+\d{{4}})?"
    rf"|\b\d{{1,2}}\s+{_MONTH}(?:,?\s+\d{{4}})?"
)
_JOIN = r"(?:\s*(?:,|and|or|&|through|to|-|–)\s*\d{1,2}(?:[A-C]|\.\d{2})?\b)*"
# Spans that hold digits but no figure. Ordered: at one position the first alternative wins.
_NOT_FIGURES = re.compile(
    "|".join(
        [
            _DATE,
            rf"\bitems?\s+\d{{1,3}}(?:[A-C]|\.\d{{2}})?\b{_JOIN}",  # Item 1A, Items 7 and 7A, Item 2.02
            r"\bparts?\s+(?:[IVX]+|\d)\b",
            r"\b(?:notes?|sections?|exhibits?|rule|article|schedule|chapter|pages?|table|figure|appendix"
            rf"|footnote)\s+\d+[A-Za-z0-9]*(?:[.\-][A-Za-z0-9]+)*(?:\([a-z0-9]+\))*{_JOIN}",  # Rule 10b5-1
            r"\b\d{1,3}-[A-Z]{1,2}\d*(?:/A)?\b",  # 10-K, 10-Q, 11-Q, 8-K, 20-F, 10-K405
            r"\b(?-i:[A-Z][A-Za-z]*)-\d{1,2}(?:/A)?\b(?!\s?%)",  # S-1, COVID-19; not "up-2%"
            r"\b\d+-for-\d+\b",  # a 2-for-1 split
            r"\bDEF\s?14[AC]\b|\b424B\d\b|\b(?:SC\s)?13[DFG](?:/A)?\b",
            r"\[[\d,\s\-–]+\]",  # citation markers
            r"\b\d+(?:st|nd|rd|th)\b",  # ordinals
            r"\bQ[1-4]\b|\b[1-4]Q(?:\d{2})?\b|\b[HQ][1-4]['’]\d{2}\b",  # quarter labels
            r"\bFY\s?['’]?\d{2,4}\b|['’]\d{2}\b",  # FY2024, FY 24, '24
            r"\b(?:19|20)\d{2}\s?[-–/]\s?\d{2}\b",  # 2023-24
        ]
    ),
    re.IGNORECASE,
)

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
_NTH = r"(?:first|second|third|fourth|1st|2nd|3rd|4th)"
_Y4 = r"(?:19|20)\d{2}"
# A year as written next to a quarter: labelled (FY25, fiscal 2025), apostrophe ('25) or 4 digits.
_YEAR = rf"(?:(?:FY|fiscal(?:\s+year)?)\s*['’]?(?:{_Y4}|\d{{2}})|['’]\d{{2}}|{_Y4})(?![\w%]|[.,]\d)"
_FYE_DATE = rf"{_MONTH}\s+(?:\d{{1,2}},?\s+)?{_Y4}"
_PERIODS = re.compile(
    "|".join(
        [
            rf"(?P<fye>(?:fiscal\s+)?years?\s+end(?:ed|ing)\s+(?:on\s+)?{_FYE_DATE}(?:,?\s+(?:and|or)\s+{_FYE_DATE})*)",
            rf"(?P<q>\bQ[1-4]\s*{_YEAR}|\b[1-4]Q\s*(?:{_YEAR}|\d{{2}}\b)"
            rf"|\b{_NTH}[\s-]+(?:fiscal\s+)?quarter(?:\s+of)?(?:\s+the)?\s+{_YEAR}"
            rf"|{_YEAR}\s+{_NTH}[\s-]+(?:fiscal\s+)?quarter)",
            rf"(?P<fy>\b(?:FY|fiscal(?:\s+years?)?)\s*['’]?(?:{_Y4}|\d{{2}})(?![\w%]|[.,]\d))",
            rf"(?P<date>{_DATE})",  # consumed so a date's year names no period
            rf"(?P<year>(?<![\w$.,/])\b{_Y4}(?![\w%/]|[.,]\d))",
        ]
    ),
    re.IGNORECASE,
)

# Sentence keywords (regex) -> line family. At one position the first family listed wins, so
# "net income margin" is a net margin, not net income; "gross profit" is found before "profit".
# Bank and insurer lines (rag.statements.INDUSTRY_LINES) come first: "net interest income" and
# "net investment income" are their own lines, never net income, and a bank sentence naming them
# must not be verified by (or flagged against) the net income figure.
_KEYWORDS = {
    "net_interest_income": r"net interest income",
    "noninterest_income": r"non-?interest income",
    "noninterest_expense": r"non-?interest expenses?",
    "provision_for_credit_losses": r"provisions? for (?:credit|loan(?: and lease)?) losses",
    "efficiency_ratio": r"efficiency ratios?",
    "loss_ratio": r"(?:medical )?loss ratios?",
    "premiums_earned": r"(?:net )?premiums(?: earned)?|(?:net )?earned premiums",
    "net_investment_income": r"net investment income",
    "policyholder_benefits": r"policyholder benefits(?: and claims(?: incurred)?)?",
    "benefits_and_expenses": r"(?:total )?benefits,? losses and expenses|(?:total )?benefits and expenses",
    "net_margin": r"net (?:income |profit )?margins?",
    "gross": r"gross (?:margins?|profits?)",
    "operating_cash_flow": (
        r"operating cash flows?|(?:net )?cash (?:flows? )?(?:from|provided by) operat(?:ions|ing activities)"
    ),
    "operating": r"operating (?:income|margins?|profits?|loss(?:es)?)|income from operations",
    "free_cash_flow": r"free cash flows?",
    "capex": r"capital expenditures?|capex|purchases of property, plant and equipment",
    "eps_diluted": r"(?:diluted )?(?:eps|earnings per (?:diluted )?share)|per diluted share",
    "net_income": r"net (?:income|earnings|profits?|loss(?:es)?)|profits?",
    "revenue": r"(?:total |net )*(?:revenues?|sales)",
}
_KEYWORD_RE = re.compile(
    "|".join(rf"(?P<{fam}>\b(?:{rx})\b)" for fam, rx in _KEYWORDS.items()), re.IGNORECASE
)
# Fact lines -> family, where it is not the line itself.
_LINE_FAMILY = {
    "gross_profit": "gross",
    "gross_margin": "gross",
    "operating_income": "operating",
    "operating_margin": "operating",
}
_LABELS = {"eps_diluted": "Diluted EPS", "capex": "Capital expenditures"}


@dataclass(frozen=True)
class FactRef:
    """One exact figure a sentence may be checked against.

    `line` is a standard line ("revenue", "eps_diluted", "gross_margin", ...) or a derived change
    "<line>_change" (year-on-year, in %, unit "%") / "<line>_change_abs" (USD). `period` is "FY2024"
    or "Q3 FY2025". `unit` is "USD", "USD/shares" or "%".
    """

    line: str
    period: str
    value: float
    unit: str


@dataclass(frozen=True)
class Mention:
    """One figure as written, with its span so the renderer can mark the figure, not the paragraph."""

    text: str  # as written, e.g. "$391.0 billion"
    value: float  # fully scaled (USD, not billions); percent as 0-100; NaN when malformed
    percent: bool
    tolerance: float  # half a unit of the last written digit, scaled
    bare: bool  # no currency, scale word or percent sign
    start: int = 0  # span of `text` in the checked string, for highlighting the figure itself
    end: int = 0
    malformed: bool = False  # digit grouping is wrong ("5,632,831,000,00"); never verifies


@dataclass
class NumberCheck:
    """The figures of one sentence, each in exactly one list (in order of appearance)."""

    verified: list[Mention] = field(default_factory=list)
    unverified: list[Mention] = field(default_factory=list)  # equals no fact and no cited passage number
    mismatched: list[tuple[Mention, str]] = field(default_factory=list)  # (figure, why it does not fit)


def lines_named(text: str) -> list[str]:
    """Line families a text names, in order of first mention ("net income margin" -> net_margin)."""
    found = [m.lastgroup for m in _KEYWORD_RE.finditer(text) if m.lastgroup]
    return list(dict.fromkeys(found))


def line_family(line: str) -> str:
    """The family a fact line belongs to: "revenue_change" -> "revenue", "gross_margin" -> "gross"."""
    base = re.sub(r"_change(?:_abs)?$", "", line)
    return _LINE_FAMILY.get(base, base)


def line_label(line: str) -> str:
    """A readable name for reasons: "operating_income" -> "Operating income"."""
    base = re.sub(r"_change(?:_abs)?$", "", line)
    label = _LABELS.get(base, base.replace("_", " ").capitalize())
    if line.endswith("_change_abs"):
        return f"{label} change ($)"
    return f"{label} change (%)" if line.endswith("_change") else label


def find_numbers(text: str) -> list[Mention]:
    """Figures written in `text` (money, percentages, counts) with their spans; labels excluded."""
    skip = [m.span() for m in _NOT_FIGURES.finditer(text)]  # in order, not overlapping
    out, k = [], 0
    for m in _NUMBER.finditer(text):
        while k < len(skip) and skip[k][1] <= m.start():
            k += 1
        if k < len(skip) and skip[k][0] < m.end():
            continue  # inside a date, label or reference
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
        malformed = not _WELL_FORMED.fullmatch(raw)
        out.append(
            Mention(
                text=m.group(0),
                value=math.nan if malformed else float(digits) * scale,
                percent=percent,
                tolerance=0.5 * 10 ** (-decimals) * scale,
                bare=not (cur or scale_word or percent),
                start=m.start(),
                end=m.end(),
                malformed=malformed,
            )
        )
    return out


def _periods(match: re.Match[str]) -> list[str]:
    """The periods a `_PERIODS` match names (["FY2024"], ["Q3 FY2025"]); none for a date."""
    text = match.group(0)
    years = re.findall(_Y4, text)
    if match.lastgroup in ("date", "fye"):
        return [f"FY{y}" for y in years] if match.lastgroup == "fye" else []
    year = years[-1] if years else "20" + re.findall(r"\d{2}", text)[-1]
    if match.lastgroup != "q":
        return [f"FY{year}"]
    nth = re.search(rf"Q([1-4])|([1-4])Q|({_NTH})", text, re.IGNORECASE)
    assert nth is not None  # every quarter alternative names one
    n = nth.group(1) or nth.group(2) or _ORDINALS[nth.group(3).lower()]
    return [f"Q{n} FY{year}"]


def sentence_periods(text: str) -> list[str]:
    """Periods named in `text`, in order, without repeats: "fiscal 2024" -> FY2024, "Q2 2025" -> Q2 FY2025.

    A bare year names that fiscal year; a date names nothing, except as "fiscal year ended <date>".
    """
    return list(dict.fromkeys(p for m in _PERIODS.finditer(text) for p in _periods(m)))


def sentence_lines(text: str) -> dict[str, str]:
    """Line families named in `text` -> the first keyword as written ("net_income" -> "net income")."""
    out: dict[str, str] = {}
    for m in _KEYWORD_RE.finditer(text):
        out.setdefault(str(m.lastgroup), m.group(0))
    return out


def _matches(mention: Mention, value: float, percent: bool, value_bare: bool = False) -> bool:
    """Whether `mention` equals `value` at the precision written (bare sides tried as table cells)."""
    if percent != mention.percent or mention.malformed:
        return False
    value = abs(value)
    for r in _TABLE_SCALES if value_bare else (1.0,):
        for s in _TABLE_SCALES if mention.bare else (1.0,):
            if abs(mention.value * s - value * r) <= mention.tolerance * s + _REL_EPS * abs(value * r):
                return True
    return False


@dataclass(frozen=True)
class _PassageNumber:
    mention: Mention
    period: str | None  # the period label written right before it ("FY2021 $5,632 million"), if any


@lru_cache(maxsize=512)
def _passage_numbers(text: str) -> tuple[_PassageNumber, ...]:
    """Numbers of one passage, each with the period label directly before it (cached: every
    sentence of a section cites the same few passages)."""
    labels = {m.end(): ps[-1] for m in _PERIODS.finditer(text) if (ps := _periods(m))}
    out = []
    for n in find_numbers(text):
        if n.malformed:
            continue
        i = n.start
        while i > 0 and text[i - 1] in " \t\n:|":
            i -= 1
        out.append(_PassageNumber(n, labels.get(i)))
    return tuple(out)


def _why(periods: Sequence[str], lines: dict[str, str], period_ok: bool, line_ok: bool) -> str:
    parts = []
    if not period_ok:
        parts.append("says " + " / ".join(periods))
    if not line_ok:
        parts.append("is about " + " / ".join(lines.values()))
    return "but the sentence " + " and ".join(parts)


# Words before a line keyword that make the sentence about the company's own total ("the
# company's revenue", "total revenue", "Meta's revenue"), not a segment's ("Advertising revenue",
# "iPhone net sales"), whose figures the facts table does not hold.
_TOTAL_BEFORE = frozenset({"", "the", "total", "consolidated", "overall", "its", "our", "their"})


def _about_total(sentence: str, start: int) -> bool:
    words = sentence[:start].split()
    last = words[-1].lower() if words else ""
    return last in _TOTAL_BEFORE or last.endswith(("'s", "\u2019s"))


def _contradiction(m: Mention, sentence: str, facts: Sequence[FactRef], periods: Sequence[str]) -> str:
    """Why a figure the cited passage states contradicts the facts table, or "".

    A passage's table cell carries no period ("22%" under "2024 vs 2023"), so a model that moves
    it to the wrong year still finds it in its source; the facts table knows the year. Only for
    a sentence about the company's own total (see _TOTAL_BEFORE), and only when the facts hold
    that line for a period the sentence names and none of them equals the figure.
    """
    first = _KEYWORD_RE.search(sentence)
    if first is None or not periods or not _about_total(sentence, first.start()):
        return ""
    family = str(first.lastgroup)
    same = [
        f
        for f in facts
        if line_family(f.line) == family and f.period in periods and (f.unit == "%") == m.percent
    ]
    if not same or any(_matches(m, f.value, f.unit == "%") for f in same):
        return ""
    f = same[0]
    shown = f"{f.value:.1f}%" if f.unit == "%" else f"{f.value:,.2f}"
    return f"the facts table has {line_label(f.line)} {f.period} = {shown}"


def check_sentence(
    sentence: str, facts: Sequence[FactRef], cited_passages: Iterable[str] = ()
) -> NumberCheck:
    """Sort each figure of `sentence` into verified, mismatched or unverified.

    `facts` are all the report's exact figures; `cited_passages` the texts of the sources this
    sentence cites (only those: an uncited passage is no evidence for it). Leave the facts-table
    source out of them: its figures are `facts`, checked by line and period; passed as a passage,
    its period labels still tie each number to its year, but not to its line.
    """
    periods = sentence_periods(sentence)
    lines = sentence_lines(sentence)
    passage = [p for text in dict.fromkeys(cited_passages) for p in _passage_numbers(text)]
    out = NumberCheck()
    for m in find_numbers(sentence):
        if m.malformed:
            out.unverified.append(m)
            continue
        wrong: list[tuple[int, str]] = []  # (rank, reason): a wrong period with the right line first
        hit = False
        for f in facts:
            if not _matches(m, f.value, f.unit == "%"):
                continue
            period_ok = not periods or f.period in periods
            line_ok = not lines or line_family(f.line) in lines
            if period_ok and line_ok:
                hit = True
                break
            reason = f"matches {line_label(f.line)} {f.period}, {_why(periods, lines, period_ok, line_ok)}"
            wrong.append((0 if line_ok else 1 if period_ok else 2, reason))
        for p in passage if not hit else ():
            if not _matches(m, p.mention.value, p.mention.percent, p.mention.bare):
                continue
            if p.period is None or not periods or p.period in periods:
                contradiction = _contradiction(m, sentence, facts, periods)
                if contradiction:
                    wrong.append((-1, f"in a cited passage, but {contradiction}"))
                    break
                hit = True
                break
            reason = f"matches {p.period} in a cited passage, {_why(periods, lines, False, True)}"
            wrong.append((3, reason))
        if hit:
            out.verified.append(m)
        elif wrong:
            out.mismatched.append((m, min(wrong, key=lambda w: w[0])[1]))
        else:
            out.unverified.append(m)
    return out
