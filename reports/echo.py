"""Generated text that parrots its prompt, or repeats itself: two failure styles of a small model.

SmolLM2-135M, when it loses the thread, either copies the prompt back ("Task: Summarise Alphabet
Inc.'s financial performance ...", "[1] Apple Inc. 10-Q filed 2025-08-01, Part I, Item 2: ...")
or loops ("2024, 2023, 2019, 2009, 2108, 2030, 2040", the same sentence twice). Neither is a
claim from a source, and both can pass a similarity check, because the prompt itself is about
the company and the section. So:

* `is_echo(text, prompt_parts, sources=())`: the text contains one of the prompt's own labels
  ("Task:", "Sources:", "Company:", "Section:", "Question:"), a source label (a form "filed" on
  an ISO date, "News <date>:", a "[n] <label>:" line, or a label of a "[n] label: passage" line
  of `prompt_parts` verbatim), talk about the prompt ("the numbered sources", "two short
  paragraphs"), or a run of ECHO_NGRAM or more consecutive words of the instruction. Copying a
  run of words from a SOURCE passage is quoting, not echo: give `prompt_parts` the instruction
  texts (system prompt, task line or question) and `sources` the passages. A whole user prompt
  may be given too: its "[n] label: passage" lines count for their labels only, and word runs
  found in `sources` never count.
* `is_repetitive(text)`: the same sentence twice (or 3 times with only its numbers changed), a
  run of one token, a list of bare numbers that is most of its sentence or a jumbled list of
  years, or a high share of repeated word 4-grams.

Both return a reason (a short phrase for the audit trail) or None. The repetition limits were
measured on the shipped sample's own prose (3,199 passages of filings, news and Wikipedia,
chunked as ingest chunks them): 16 (0.5%) are flagged, each a real repeat (a news item printing
its headline twice, a filing's boilerplate sentence twice, a trading-plan paragraph per
officer); filing style such as "... in the three months ended June 30, 2025 ... in the six
months ended June 30, 2025" is not. tests/reports/test_echo.py re-measures it on the news and
Wikipedia passages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

ECHO_NGRAM = 8  # consecutive words shared with the instruction that make an echo
REPEAT_NGRAM = 4
# Share of repeated 4-gram occurrences (beyond the first of each) above which text loops; only
# for texts of at least REPEAT_MIN_NGRAMS 4-grams, as a short sentence has too few to judge.
REPEAT_RATIO = 0.35
REPEAT_MIN_NGRAMS = 12
SAME_TOKEN_RUN = 4  # "the the the the"
SAME_SKELETON = 3  # one sentence 3 times with other numbers; prose passages of the sample reach 2
NUMBER_LIST = 5  # "2024, 2023, 2019, 2009, 2108": five bare numbers in a row

# The prompt's own labels (the section prompt of build_user_prompt, the claim prompt's "Question:"),
# capitalised and followed by a colon, anywhere in the text.
_PROMPT_LABEL = re.compile(
    r"(?<![\w-])(Task|Sources?|Company|Section|Question|Instructions?|System|Assistant|User)\s*:"
)
# A filing's source label: a form name and "filed", then a date or more label garbage ("10-Q filed
# 2025-08-01", "11-Q filed 12-Q"); a news label "News 2025-05-23:"; a "[n] Label:" line.
_FORM_FILED = re.compile(
    r"\b\d{1,2}-[A-Z]{1,2}(?:/A)?\s+filed\s+(?:on\s+)?(?:\d{4}-\d{2}-\d{2}|\d{1,2}-[A-Z]\b)"
)
_NEWS_LABEL = re.compile(r"\bNews \d{4}-\d{2}-\d{2}:")
_NUMBERED_LABEL = re.compile(
    r"(?:^|\s)\[\d+\]\s+[A-Z][^\[\]\n]{2,120}?(?:filed|Wikipedia|News)\b[^\[\]\n]{0,80}:"
)
# Talk about the prompt rather than the company.
_META = re.compile(
    r"\b(?:numbered|provided|given|above|following) sources?\b"
    r"|\b(?:according to|based on|cite|citing|using|from) (?:the|these) sources\b"
    r"|\bthe sources (?:say|state|describe|provide|mention|show|do not)\b"
    r"|\bsource passages?\b|\b(?:one|two|three|a) short paragraphs?\b"
    r"|\bas an (?:AI|equity research analyst)\b"
    r"|\bend every sentence\b|\bin brackets, like\b",
    re.I,
)
# A prompt line carrying a source: "[n] label: passage"; labels that hold ": " themselves start
# with "Wikipedia" or "News <date>" (reports' source labels).
_SOURCE_LINE = re.compile(r"^\s*\[(\d+)\]\s+(.+?):\s+(.*)$")
_LABEL_WITH_COLON = re.compile(r"Wikipedia|News(?: \d{4}-\d{2}-\d{2})?")
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019.,][^\W_]+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[$])")
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"
# Bare numbers (no $, %, or unit word right after) separated only by commas, "and", semicolons.
_LIST_SEPARATOR = r"(?:,\s+(?:and\s+)?|\s+and\s+|;\s+|\s+)"
_BARE_NUMBER_RUN = re.compile(
    rf"(?<![\w$.,%-]){_NUMBER}(?:{_LIST_SEPARATOR}{_NUMBER}(?![\w%$]|[.,]\d)){{{NUMBER_LIST - 1},}}"
)


def _tokens(text: str) -> list[str]:
    return [t.lower().replace("\u2019", "'") for t in _TOKEN.findall(text)]


def _flat(text: str) -> str:
    """Lower case, one space between words, curly quotes straight: for verbatim label matches."""
    return " ".join(text.replace("\u2019", "'").lower().split())


def _ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _split_prompt(parts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(instruction texts, source labels): "[n] label: passage" lines give only their label.

    Lines after a source line, up to a blank line or a prompt label, continue its passage.
    """
    instructions: list[str] = []
    labels: list[str] = []
    for part in parts:
        keep: list[str] = []
        in_source = False
        for line in part.splitlines():
            m = _SOURCE_LINE.match(line)
            if m:
                label, rest = m.group(2).strip(), m.group(3)
                if _LABEL_WITH_COLON.fullmatch(label) and ": " in rest:
                    label = f"{label}: {rest.split(': ', 1)[0].strip()}"
                labels.append(label)
                in_source = True
            elif in_source and line.strip() and not _PROMPT_LABEL.match(line.strip()):
                continue
            else:
                in_source = False
                keep.append(line)
        if any(line.strip() for line in keep):
            instructions.append("\n".join(keep))
    return instructions, labels


def is_echo(text: str, prompt_parts: Sequence[str], sources: Sequence[str] = ()) -> str | None:
    """Why `text` echoes its prompt or instruction, or None. See the module docstring.

    `prompt_parts`: the instruction texts (system prompt, task or question). `sources`: passages
    the prompt carried; a word run that is also in one of them is a quote, not an echo, which
    matters where a prompt part holds a passage outside a "[n] label:" line (the claim prompt
    "<passage>\n\nQuestion: ...").
    """
    m = _PROMPT_LABEL.search(text)
    if m:
        return f"prompt label {m.group(1)!r}:"
    for pattern, what in (
        (_FORM_FILED, "source label"),
        (_NEWS_LABEL, "news source label"),
        (_NUMBERED_LABEL, "numbered source label"),
    ):
        m = pattern.search(text)
        if m:
            return f"{what} {m.group(0).strip()!r}"
    m = _META.search(text)
    if m:
        return f"talks about the prompt ({m.group(0)!r})"

    instructions, labels = _split_prompt(prompt_parts)
    tokens = _tokens(text)
    flat = _flat(text)
    for label in labels:
        if len(_tokens(label)) >= 2 and _flat(label) in flat:
            return f"source label {label!r}"
    if len(tokens) >= ECHO_NGRAM:
        mine = _ngrams(tokens, ECHO_NGRAM)
        quoted = set().union(*(_ngrams(_tokens(s), ECHO_NGRAM) for s in sources)) if sources else set()
        for instruction in instructions:
            shared = (mine & _ngrams(_tokens(instruction), ECHO_NGRAM)) - quoted
            if shared:
                words = " ".join(min(shared))
                return f"repeats {ECHO_NGRAM}+ words of the instruction ({words!r})"
    return None


def repeated_ngram_ratio(text: str, n: int = REPEAT_NGRAM) -> tuple[float, int]:
    """(share of n-gram occurrences that repeat an earlier one, number of n-grams)."""
    tokens = _tokens(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0, 0
    return 1.0 - len(set(grams)) / len(grams), len(grams)


def _number_list(sentence: str) -> str | None:
    """A run of NUMBER_LIST+ bare numbers that is most of its sentence, or a jumbled list of years.

    Filings do list bare numbers ("Notes were 15.4, 15.2, 16.5, 14.2, 12.8, and 4.6 years"), but
    inside a sentence with more words than numbers, and years in order; a looping model writes a
    list with hardly a word around it, or "2024, 2023, 2019, 2009, 2108, 2030, 2040".
    """
    for m in _BARE_NUMBER_RUN.finditer(sentence):
        numbers = re.findall(_NUMBER, m.group(0))
        words = len(_tokens(sentence[: m.start()] + " " + sentence[m.end() :]))
        years = [int(n) for n in numbers if re.fullmatch(r"\d{4}", n)]
        jumbled = (
            len(years) == len(numbers) and years != sorted(years) and years != sorted(years, reverse=True)
        )
        if len(numbers) > words or jumbled:
            return f"a list of bare numbers ({m.group(0)[:60]!r})"
    return None


def is_repetitive(text: str) -> str | None:
    """Why `text` repeats itself, or None. See the module docstring."""
    sentences = [" ".join(_tokens(s)) for s in _SENTENCE.split(text.strip())]
    seen: Counter[str] = Counter(s for s in sentences if len(s.split()) >= 3)
    twice = [s for s, c in seen.items() if c > 1]
    if twice:
        return f"the same sentence twice ({twice[0][:60]!r})"
    # the same sentence with only its numbers changed, SAME_SKELETON times: a template loop
    skeletons = Counter(re.sub(r"\d[\d,.]*", "#", s) for s in seen)
    looped = [s for s, c in skeletons.items() if c >= SAME_SKELETON]
    if looped:
        return f"the same sentence {skeletons[looped[0]]} times with other numbers ({looped[0][:60]!r})"
    tokens = _tokens(text)
    run = 1
    for a, b in zip(tokens, tokens[1:], strict=False):
        run = run + 1 if a == b else 1
        if run >= SAME_TOKEN_RUN:
            return f"{a!r} {run} times in a row"
    for sentence in _SENTENCE.split(text.strip()):
        reason = _number_list(sentence)
        if reason:
            return reason
    ratio, count = repeated_ngram_ratio(text)
    if count >= REPEAT_MIN_NGRAMS and ratio > REPEAT_RATIO:
        return f"{ratio:.0%} of its word {REPEAT_NGRAM}-grams are repeats"
    return None
