"""Answer one analyst question about a company with the report's grounding rules.

Order of work, each step able to end it:
1. input moderation (the report's input checks and policy): a withheld question is refused with
   the checks' reasons, nothing is retrieved or generated;
2. a figure the facts table holds exactly ("What was Apple's revenue in fiscal 2024?") is answered
   by code from that table and cited to the XBRL fact: no model, no rounding, no retrieval;
3. otherwise the question goes to hybrid retrieval (the caller's `search`), and the model answers
   it from each of the top sources separately, as a report's claim units do (reports/compose.py:
   one source, one sentence, the source's own figures the only numbers decoding allows). Every
   answer sentence is checked like a report sentence (reports/claims.py: figures in its source,
   support >= threshold, no echo); the kept ones are cited by code to the source they came from;
4. nothing survives: the answer quotes the source sentence closest to the question, marked as a
   quotation, so the analyst gets the evidence rather than an invented summary (`extractive`);
5. output moderation of the answer text; withheld -> refused with the reason.
The conversation so far (newest turns that fit the budget) is shown to the model before the
source, and a short follow-up ("and in 2023?") is retrieved together with the previous question.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from models.types import Completion, GenerationRequest
from rag.lexical import STOP_WORDS
from rag.query import understand
from rag.types import Passage
from reports.answer_eval import Answer, AnswerSource
from reports.claims import check_unit
from reports.compose import UnitPlan, claim_candidates, focus_sentences, label
from reports.facts_view import format_fact
from reports.model import FactsTable
from reports.numbers import FactRef, lines_named
from reports.sanitize import CITATION_MARKER
from reports.sessions import Turn, history_within
from reports.support import Encode

SOURCES = 3  # sources answered from; each is one claim unit with two candidates (as in reports)
CLAIM_TOKENS = 72
HISTORY_CHARS = 1200  # ~300 tokens of a 2,048-token context: the sources and question come first
FOLLOW_UP_WORDS = 8  # a question this short is read together with the previous one
Screen = Callable[[list[str]], list[tuple[bool, str]]]  # texts -> (withhold?, reason) each
Generate = Callable[[list[GenerationRequest]], list[Completion]]


@dataclass
class AskContext:
    """What answering needs, as seams: the CLI wires the real index/model, tests pass fakes."""

    ticker: str
    company: str
    search: Callable[[str], list[Passage]]  # hybrid retrieval for this company, best first
    generate: Generate
    screen_input: Screen
    screen_output: Screen
    facts: FactsTable | None = None
    encode: Encode | None = None
    history_chars: int = HISTORY_CHARS
    stats: dict = field(default_factory=dict)  # filled per answer: requests, tokens, seconds


def _passage_source(p: Passage) -> AnswerSource:
    doc = p.doc_id.split(":", 1)[-1]
    doc = doc[:-4] if doc.lower().endswith(".pdf") else doc
    return AnswerSource(label=label(p), doc=doc, page=p.page, text=p.text)


# -- 2. facts ------------------------------------------------------------------------------------
_LOOKUP = re.compile(r"^\s*(?:what\s+(?:was|were|is|are)|how\s+(?:much|many)|give|tell me|report)\b", re.I)
_NOT_LOOKUP = re.compile(
    r"\b(?:why|drove|driv(?:e|er|ers|ing)|explain|cause[sd]?|outlook|guidance|grow(?:th|n)?|chang(?:e|ed)"
    r"|increas(?:e|ed)|decreas(?:e|ed)|declin(?:e|ed)|compare[d]?|versus|vs)\b",
    re.I,
)
_QUARTER_WORDS = re.compile(r"\bquarter|\bQ[1-4]\b", re.I)
# question family (reports.numbers) -> facts-table lines, most specific first
_FAMILY_LINES = {
    "revenue": ("revenue",),
    "gross": ("gross_margin", "gross_profit"),
    "operating": ("operating_margin", "operating_income"),
    "net_margin": ("net_margin",),
    "net_income": ("net_income",),
    "eps_diluted": ("eps_diluted",),
    "operating_cash_flow": ("operating_cash_flow",),
    "free_cash_flow": ("free_cash_flow",),
    "capex": ("capex",),
    # bank and insurer lines (rag.statements.INDUSTRY_LINES) and their ratios
    "net_interest_income": ("net_interest_income",),
    "noninterest_income": ("noninterest_income",),
    "noninterest_expense": ("noninterest_expense",),
    "provision_for_credit_losses": ("provision_for_credit_losses",),
    "efficiency_ratio": ("efficiency_ratio",),
    "loss_ratio": ("loss_ratio",),
    "premiums_earned": ("premiums_earned",),
    "net_investment_income": ("net_investment_income",),
    "policyholder_benefits": ("policyholder_benefits",),
    "benefits_and_expenses": ("benefits_and_expenses",),
}


def _fact_line(question: str, family: str, table: FactsTable) -> str | None:
    rows = {r.line for r in table.rows}
    lines = [ln for ln in _FAMILY_LINES.get(family, ()) if ln in rows]
    if not lines:
        return None
    wants_margin = bool(re.search(r"\bmargins?\b", question, re.I))
    pick = [ln for ln in lines if ln.endswith("margin") == wants_margin] or lines
    return pick[0]


def facts_answer(question: str, ctx: AskContext) -> Answer | None:
    """A lookup question the facts table answers exactly, or None (then retrieval answers it)."""
    table = ctx.facts
    if table is None or not _LOOKUP.search(question) or _NOT_LOOKUP.search(question):
        return None
    families = lines_named(question)
    if len(families) != 1:  # none, or a comparison of two lines: not a single-figure lookup
        return None
    intent = understand(question)
    candidates: list[tuple[FactsTable, str]] = []
    if intent.quarters and table.quarterly is not None:
        q = table.quarterly
        for quarter in intent.quarters:  # "2025Q3" -> the quarterly table's "Q3 FY2025" column
            key = f"Q{quarter[-1]} FY{quarter[:4]}"
            if key in q.years:
                candidates.append((q, key))
    elif _QUARTER_WORDS.search(question):  # a quarter the table lacks: never answer with the year
        return None
    elif intent.years:
        candidates = [(table, str(y)) for y in intent.years if str(y) in table.years]
    else:
        candidates = [(table, table.years[-1])] if table.years else []
    if not candidates:
        return None
    latest = "" if intent.years or intent.quarters else " (the latest fiscal year reported)"
    sentences, sources = [], []
    for t, key in candidates:
        line = _fact_line(question, families[0], t)
        row = next((r for r in t.rows if r.line == line), None)
        value = row.values.get(key) if row else None
        if row is None or value is None:
            return None
        period, shown = t.header(key), format_fact(value, row.unit)
        sources.append(
            AnswerSource(
                label=f"XBRL fact: {row.label} {period} ({row.concept}; {t.source})",
                doc="facts",
                page=-1,
                text=f"{row.label} {period}: {shown}",
            )
        )
        sentences.append(
            f"{ctx.company}'s {row.label[0].lower() + row.label[1:]} for {period}{latest} was {shown} "
            f"[{len(sources)}]."
        )
    return Answer(text=" ".join(sentences), sources=tuple(sources), from_facts=True)


# -- 3. model claims ------------------------------------------------------------------------------
def _history_text(history: Sequence[Turn], budget: int) -> str:
    turns = history_within(history, budget)
    while turns and turns[0].role != "user":  # never open on an answer whose question fell out
        turns = turns[1:]
    lines = [f"{'Analyst' if t.role == 'user' else 'You'}: {t.text}" for t in turns]
    return ("Conversation so far:\n" + "\n".join(lines) + "\n\n") if lines else ""


def _requests(question: str, sources: Sequence[Passage], ctx: AskContext, history: str) -> list[UnitPlan]:
    """The report's claim units (reports/compose.py), one group per source, the history before it."""
    ask = f"{question} Answer in one sentence, using only the text above."
    return [
        u
        for n, p in enumerate(sources, start=1)
        for u in claim_candidates(f"ask-{n}", n, p.text, question, ctx.encode, CLAIM_TOKENS, ask, history)
    ]


QUOTE_WORDS = 60


def _quote(question: str, passage: Passage, encode: Encode | None) -> str:
    sentence = focus_sentences(passage.text, question, encode, k=1)
    if len(sentence.split()) > QUOTE_WORDS:  # a table run or a run-on sentence: its start is enough
        sentence = " ".join(sentence.split()[:QUOTE_WORDS]) + " …"
    return f"No sentence of mine passed the checks; the closest source says: \u201c{sentence}\u201d [1]."


def answer_question(question: str, ctx: AskContext, history: Sequence[Turn] = ()) -> Answer:
    """Answer `question` (module docstring); never raises for an unanswerable question."""
    started = time.perf_counter()
    question = " ".join(question.split())
    if not question:
        return Answer(text="", sources=(), refused=True, reason="empty question")
    withhold, why = ctx.screen_input([question])[0]
    if withhold:
        return Answer("", (), refused=True, reason=f"question withheld by input moderation: {why}")
    answer = facts_answer(question, ctx)
    if answer is None:
        answer = _from_sources(question, ctx, history)
    if not answer.refused:
        withhold, why = ctx.screen_output([answer.text])[0]
        if withhold:
            answer = Answer("", (), refused=True, reason=f"answer withheld by output moderation: {why}")
    return Answer(
        answer.text,
        answer.sources,
        answer.refused,
        answer.reason,
        answer.from_facts,
        time.perf_counter() - started,
    )


def _from_sources(question: str, ctx: AskContext, history: Sequence[Turn]) -> Answer:
    previous = next((t.text for t in reversed(history) if t.role == "user"), "")
    query = f"{previous} {question}" if previous and len(question.split()) < FOLLOW_UP_WORDS else question
    sources = ctx.search(query)[:SOURCES]
    if not sources:
        why = f"no indexed source about {ctx.company} matches the question"
        return Answer("", (), refused=True, reason=why)
    units = _requests(question, sources, ctx, _history_text(history, ctx.history_chars))
    completions = {c.request_id: c for c in ctx.generate([u.request(temperature=0.0) for u in units])}
    ctx.stats.update(requests=len(units), tokens_out=sum(c.tokens_out for c in completions.values()))
    best: dict[int, tuple[float, str]] = {}  # source number -> (support, sentence)
    for u in units:
        c = completions.get(u.request_id)
        if c is None or c.finish_reason == "error":
            continue
        checked = check_unit(u, c, ctx.encode, [] if ctx.facts is None else _refs(ctx.facts))
        for sentence, score in zip(checked.sentences, checked.support, strict=True):
            n = u.source_map[1]
            if missing_names(sentence, u.source_texts[1], ctx.company):
                continue
            if n not in best or score > best[n][0]:
                plain = re.sub(r"\s+([.,;:!?])", r"\1", CITATION_MARKER.sub("", sentence)).strip()
                best[n] = (score, plain.rstrip(". "))
    if not best:
        text = _quote(question, sources[0], ctx.encode)
        return Answer(text, (_passage_source(sources[0]),), reason="extractive: no model sentence passed")
    seen: set[str] = set()
    for n in sorted(best):  # overlapping chunks yield the same sentence twice: keep the first
        key = best[n][1].lower()
        if key in seen:
            del best[n]
        seen.add(key)
    used = sorted(best)  # the sources that yielded a checked sentence, renumbered [1]..[k]
    text = " ".join(f"{best[n][1]} [{i}]." for i, n in enumerate(used, start=1))
    return Answer(text, tuple(_passage_source(sources[n - 1]) for n in used))


_NAME = re.compile(r"\b(?:[A-Z][\w&'’-]*[A-Za-z]|[a-z]+[A-Z][\w-]*)")
_ALWAYS = frozenset(
    "the a an in on of for and during fiscal year quarter first second third fourth q1 q2 q3 q4".split()
)


def missing_names(sentence: str, source: str, company: str) -> list[str]:
    """Names (capitalised words after the first, camel-case brands) the source never mentions.

    The support score counts shared words, so "iPhone net sales were driven by iPad sales" passes
    against a passage about iPad alone: most of its words are there. A name the source does not
    contain is a claim about something else, whatever the overlap; the company's own name is
    allowed (filings say "the Company").
    """
    have = {w.lower() for w in re.findall(r"[\w&'’-]+", f"{source} {company}")}
    words = _NAME.findall(sentence)
    first = re.match(r"\W*([\w&'’-]+)", sentence)
    out = []
    for w in words:
        base = re.sub(r"(?:'s|’s)$", "", w)
        starter = first and w == first.group(1) and not re.search(r"[a-z][A-Z]", w)
        if starter and (base.lower() in STOP_WORDS or base.lower() in _ALWAYS):
            continue  # "The", "During": capitalised only because it starts the sentence
        if base.lower() in _ALWAYS or base.lower() in have:
            continue
        out.append(base)
    return list(dict.fromkeys(out))


def _refs(table: FactsTable) -> list[FactRef]:
    from reports.financials import fact_refs

    return fact_refs(table)
