"""Per ticker: retrieved passages + exact facts -> numbered sources -> one generation request per section.

Each section's prompt carries its own sources numbered [1]..[k] (a 2,048-token model cannot see a
whole report's sources at once); `SectionPlan.source_map` maps those local numbers to the report's
global source list, so a model citing [2] in the risks section links to the right source.
Sources come before the task in the prompt: FinanceBench measured 79% correct with the context
first versus 25% with the question first.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from models.types import GenerationRequest
from rag.errors import NoDataError
from rag.retrieve import Hit, Retriever
from rag.types import Passage
from reports.model import DroppedPassage, FactsTable, InputVerdict, SourceRef
from reports.spec import SectionSpec
from reports.trim import PromptBudget, fit_sources, hit_ranks

EXCERPT_CHARS = 300
# Input moderation as build_context sees it: passage texts -> one verdict each (flows/ builds it
# from models.screens and the policy, so reports/ stays free of model code).
ScreenInputs = Callable[[list[str]], list[InputVerdict]]
SYSTEM_PROMPT = (
    "You are an equity research analyst writing one section of a research report. "
    "Use only facts stated in the numbered sources. After each sentence, cite the source it comes "
    "from as [n]. Copy numbers exactly as the sources give them; never invent a number. "
    "Write plain prose paragraphs without headings or lists."
)


class SectionPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    title: str
    request_id: str
    source_map: dict[int, int]  # local number in the prompt -> global SourceRef.n
    source_texts: dict[int, str]  # local number -> the full text the model saw (for attribution)
    system: str
    user: str
    max_new_tokens: int


class TickerContext(BaseModel):
    """Everything a report is built from, saved in the run folder for audit and reproduction."""

    model_config = ConfigDict(extra="forbid")

    ticker: str
    company: str
    cik: str
    as_of: str
    sources: list[SourceRef]
    facts: FactsTable | None
    facts_text: str
    sections: list[SectionPlan]
    documents: list[dict[str, str]]  # corpus, doc_id, digest of every indexed input for this ticker
    warnings: list[str]
    dropped: list[DroppedPassage] = []  # retrieved passages input moderation kept out of every prompt


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def _label(src: SourceRef | Passage) -> str:
    if src.corpus == "facts":
        return src.title
    when = f" {src.date[:10]}" if src.date else ""
    part = f", {src.section}" if src.section and src.corpus == "filings" else ""
    return f"{src.title}{part}" if src.corpus != "news" else f"News{when}: {src.title}"


def build_user_prompt(
    company: str, ticker: str, title: str, instruction: str, numbered: list[tuple[int, str, str]]
) -> str:
    """The user turn: sources first, then the task. `numbered` is (local n, label, text)."""
    lines = [f"Company: {company} ({ticker})", f"Section: {title}", "", "Sources:"]
    lines += [f"[{n}] {label}: {text}" for n, label, text in numbered]
    lines += [
        "",
        f"Task: {instruction} Write two short paragraphs. End every sentence with the number "
        "of the source it comes from in brackets, like [1].",
    ]
    return "\n".join(lines)


def build_context(
    ticker: str,
    company: str,
    cik: str,
    as_of: str,
    retriever: Retriever,
    specs: list[SectionSpec],
    facts: FactsTable | None,
    facts_text: str,
    run_id: str,
    max_new_tokens: int = 0,
    fit: PromptBudget | None = None,
    screen: ScreenInputs | None = None,
) -> TickerContext:
    """Retrieve every section's sources and write its prompt; NoDataError when nothing is indexed.

    With `screen` (input moderation), every retrieved passage is judged once, in one batch, before
    any prompt is written; dropped passages never get a number and are listed in `dropped`.
    With `fit`, a prompt that would overflow the chat model's context then loses its lowest-ranked
    sources before they are numbered (reports/trim.py); the instruction is never cut.
    """
    counts = retriever.counts(ticker)
    if not any(counts.values()) and facts is None:
        raise NoDataError(
            f"{ticker}: nothing ingested (no filings, news, Wikipedia or XBRL facts under data/)"
        )
    warnings = [f"no {corpus} passages for {ticker}" for corpus, n in counts.items() if n == 0]
    if facts is None:
        warnings.append(f"no XBRL facts for {ticker}: the financial table is missing")

    sources: list[SourceRef] = []
    by_passage: dict[str, int] = {}

    def add(ref: dict) -> int:
        key = ref["passage_id"]
        if key not in by_passage:
            by_passage[key] = len(sources) + 1
            sources.append(SourceRef(n=by_passage[key], **ref))
        return by_passage[key]

    facts_n = 0
    if facts is not None and facts_text:
        facts_n = add(
            dict(
                passage_id=f"facts:{ticker}",
                corpus="facts",
                ticker=ticker,
                form="XBRL",
                date=as_of,
                title=f"XBRL financial facts ({facts.source})",
                section="",
                url=f"https://data.sec.gov/api/xbrl/companyfacts/CIK{cik}.json",
                excerpt=_excerpt(facts_text),
            )
        )

    retrieved = {spec.key: retriever.search(list(spec.queries), ticker, company, as_of) for spec in specs}
    blocked = _screen_inputs(retrieved, specs, screen) if screen is not None else {}

    plans: list[SectionPlan] = []
    for spec in specs:
        hits = [h for h in retrieved[spec.key] if h.passage.passage_id not in blocked]
        instruction = spec.instruction.format(company=company, ticker=ticker)
        if fit is not None:
            fixed = [(sources[facts_n - 1].title, facts_text)] if spec.facts and facts_n else []
            hits, dropped = _fit_hits(
                company, ticker, spec, instruction, fixed, hits, fit, max_new_tokens or spec.max_new_tokens
            )
            if dropped:
                warnings.append(
                    f"{spec.title}: dropped {len(dropped)} lowest-ranked source(s) to fit the "
                    f"model's {fit.context_tokens}-token context"
                )
        numbered: list[tuple[int, str, str]] = []
        source_map: dict[int, int] = {}
        if spec.facts and facts_n:
            source_map[1] = facts_n
            numbered.append((1, sources[facts_n - 1].title, facts_text))
        for hit in hits:
            p = hit.passage
            n = add(
                dict(
                    passage_id=p.passage_id,
                    corpus=p.corpus,
                    ticker=p.ticker,
                    form=p.form,
                    date=p.date,
                    title=p.title,
                    section=p.section,
                    url=p.url,
                    excerpt=_excerpt(p.text),
                )
            )
            local = len(numbered) + 1
            source_map[local] = n
            numbered.append((local, _label(sources[n - 1]), p.text))
        if not numbered:
            warnings.append(f"{spec.title}: no sources retrieved")
        plans.append(
            SectionPlan(
                key=spec.key,
                title=spec.title,
                request_id=f"{run_id}:{ticker}:{spec.key}",
                source_map=source_map,
                source_texts={n: text for n, _, text in numbered},
                system=SYSTEM_PROMPT,
                user=build_user_prompt(company, ticker, spec.title, instruction, numbered),
                max_new_tokens=max_new_tokens or spec.max_new_tokens,
            )
        )
    documents = [{"corpus": c, "doc_id": d, "digest": g} for c, d, g in retriever.documents(ticker)]
    return TickerContext(
        ticker=ticker,
        company=company,
        cik=cik,
        as_of=as_of,
        sources=sources,
        facts=facts,
        facts_text=facts_text,
        sections=plans,
        documents=documents,
        warnings=warnings,
        dropped=list(blocked.values()),
    )


def _screen_inputs(
    retrieved: dict[str, list[Hit]], specs: list[SectionSpec], screen: ScreenInputs
) -> dict[str, DroppedPassage]:
    """passage_id -> DroppedPassage for every retrieved passage input moderation drops."""
    unique: dict[str, Passage] = {}
    seen_in: dict[str, list[str]] = {}
    titles = {spec.key: spec.title for spec in specs}
    for key, hits in retrieved.items():
        for hit in hits:
            unique.setdefault(hit.passage.passage_id, hit.passage)
            seen_in.setdefault(hit.passage.passage_id, []).append(titles[key])
    passages = list(unique.values())
    verdicts = screen([p.text for p in passages]) if passages else []
    if len(verdicts) != len(passages):  # fail closed: an input nobody judged is not used
        verdicts = [
            InputVerdict(drop=True, label="error", reason="input moderation returned no verdict")
        ] * len(passages)
    return {
        p.passage_id: DroppedPassage(
            passage_id=p.passage_id,
            corpus=p.corpus,
            title=p.title,
            date=p.date,
            section=p.section,
            url=p.url,
            excerpt=_excerpt(p.text),
            label=v.label,
            reason=v.reason,
            sections=list(dict.fromkeys(seen_in[p.passage_id])),
        )
        for p, v in zip(passages, verdicts, strict=True)
        if v.drop
    }


def _fit_hits(
    company: str,
    ticker: str,
    spec: SectionSpec,
    instruction: str,
    fixed: list[tuple[str, str]],
    hits: list[Hit],
    fit: PromptBudget,
    max_new_tokens: int,
) -> tuple[list[Hit], list[Hit]]:
    """(kept, dropped) hits: the prompt as it will be numbered must fit `fit` with the answer."""

    def render(kept: list[Hit]) -> str:
        pairs = fixed + [(_label(h.passage), h.passage.text) for h in kept]
        numbered = [(i + 1, label, text) for i, (label, text) in enumerate(pairs)]
        return build_user_prompt(company, ticker, spec.title, instruction, numbered)

    return fit_sources(
        hits, hit_ranks(hits), render, lambda user: fit.fits(SYSTEM_PROMPT, user, max_new_tokens)
    )


def requests_for(
    ctx: TickerContext, temperature: float | None = None, seed: int | None = None
) -> list[GenerationRequest]:
    """The generation requests of one ticker; sections without sources are not sent to the model."""
    return [
        GenerationRequest(
            request_id=p.request_id,
            user=p.user,
            system=p.system,
            max_new_tokens=p.max_new_tokens,
            temperature=temperature,
            seed=seed,
        )
        for p in ctx.sections
        if p.source_map
    ]
