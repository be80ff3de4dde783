"""Per ticker: evidence (retrieved passages, news, risk headings, exact facts) -> composed sections.

Each section is composed by its registered composer (reports/compose.py, reports/sections.py):
code states what it can state exactly, and the model gets generation units sized for it, each
with its own sources. Sources get one global number per report (`SourceBook`); a unit's local
numbers map to them, so a citation links to the right source whichever section made it.
Input moderation judges every passage before it can become a source: a dropped passage never
gets a number and is listed in `TickerContext.dropped`.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

import reports.sections  # noqa: F401  (registers the shipped composers)
from models.types import GenerationRequest
from rag.errors import ConfigError, NoDataError
from rag.retrieve import Retriever
from rag.types import Passage
from reports.compose import COMPOSERS, ComposeInput, SectionPlan, SourceBook, Unit, excerpt
from reports.financials import fact_refs
from reports.model import DroppedPassage, FactsTable, InputVerdict, SourceRef
from reports.render import edgar_url
from reports.spec import SectionSpec
from reports.stories import build_stories
from reports.trim import PromptBudget

# Input moderation as build_context sees it: passage texts -> one verdict each (flows/ builds it
# from models.screens and the policy, so reports/ stays free of model code).
ScreenInputs = Callable[[list[str]], list[InputVerdict]]
Encode = Callable[[list[str]], object]


class TickerContext(BaseModel):
    """Everything a report is built from, saved in the run folder for audit and reproduction."""

    model_config = ConfigDict(extra="forbid")

    ticker: str
    company: str
    cik: str
    as_of: str
    unit: Unit = "claim"
    sources: list[SourceRef]
    facts: FactsTable | None
    facts_text: str
    sections: list[SectionPlan]
    documents: list[dict[str, str]]  # corpus, doc_id, digest of every indexed input for this ticker
    warnings: list[str]
    dropped: list[DroppedPassage] = []  # retrieved passages input moderation kept out of every prompt
    stories_demoted: dict[str, int] = {}  # news articles kept out of Recent developments, per reason


STALE_NEWS_DAYS = 30


def _days(earlier: str, later: str) -> int:
    from datetime import date

    try:
        return (date.fromisoformat(later[:10]) - date.fromisoformat(earlier[:10])).days
    except ValueError:
        return 0


class _Screen:
    """Input moderation with memory: judged once per passage, in batches where the caller can."""

    def __init__(self, screen: ScreenInputs | None):
        self.screen = screen
        self.verdicts: dict[str, InputVerdict] = {}
        self.passages: dict[str, Passage] = {}
        self.seen_in: dict[str, list[str]] = {}

    def judge(self, passages: list[Passage], section: str = "") -> None:
        new = {p.passage_id: p for p in passages if p.passage_id not in self.verdicts}
        for p in passages:
            if section:
                self.seen_in.setdefault(p.passage_id, [])
                if section not in self.seen_in[p.passage_id]:
                    self.seen_in[p.passage_id].append(section)
        if not new:
            return
        todo = list(new.values())
        if self.screen is None:
            verdicts = [InputVerdict(drop=False, label="casual", reason="")] * len(todo)
        else:
            verdicts = self.screen([p.text for p in todo])
            if len(verdicts) != len(todo):  # fail closed: an input nobody judged is not used
                verdicts = [
                    InputVerdict(drop=True, label="error", reason="input moderation returned no verdict")
                ] * len(todo)
        for p, v in zip(todo, verdicts, strict=True):
            self.verdicts[p.passage_id] = v
            self.passages[p.passage_id] = p

    def allowed(self, p: Passage) -> bool:
        self.judge([p])
        return not self.verdicts[p.passage_id].drop

    def dropped(self) -> list[DroppedPassage]:
        out = []
        for pid, v in self.verdicts.items():
            if not v.drop:
                continue
            p = self.passages[pid]
            out.append(
                DroppedPassage(
                    passage_id=pid,
                    corpus=p.corpus,
                    title=p.title,
                    date=p.date,
                    section=p.section,
                    url=p.url,
                    excerpt=excerpt(p.text),
                    label=v.label,
                    reason=v.reason,
                    sections=self.seen_in.get(pid, []),
                )
            )
        return out


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
    unit: Unit = "claim",
    risks: list | None = None,
    encode: Encode | None = None,
) -> TickerContext:
    """Compose every section of one ticker's report; NoDataError when nothing is indexed.

    `unit` is the chat model's generation unit (`ModelPreset.generation_unit`); `risks` the
    ticker's risk-factor headings from ingest; `encode` (texts -> unit vectors) ranks risks
    against news and merges syndicated stories. With `fit`, a paragraph unit's prompt that
    would overflow the model's context loses its lowest-ranked sources (reports/trim.py).
    """
    counts = retriever.counts(ticker)
    if not any(counts.values()) and facts is None:
        raise NoDataError(
            f"{ticker}: nothing ingested (no filings, news, Wikipedia or XBRL facts under data/)"
        )
    warnings = [f"no {corpus} passages for {ticker}" for corpus, n in counts.items() if n == 0]
    if facts is None:
        warnings.append(f"no XBRL facts for {ticker}: the financial table is missing")

    book = SourceBook()
    facts_n = 0
    if facts is not None and facts_text:
        facts_n = book.add_ref(
            passage_id=f"facts:{ticker}",
            corpus="facts",
            ticker=ticker,
            form="XBRL",
            date=as_of,
            title=f"XBRL financial facts ({facts.source})",
            section="",
            url=f"https://data.sec.gov/api/xbrl/companyfacts/CIK{cik}.json",
            excerpt=excerpt(facts_text),
        )

    release = facts.release if facts is not None else None
    release_n = 0
    if release is not None and release.rows:  # its figures cite the 8-K, not the XBRL facts
        release_n = book.add_ref(
            passage_id=f"release:{ticker}:{release.accession}",
            corpus="facts",
            ticker=ticker,
            form="8-K",
            date=release.filed,
            title=f"{company} earnings release ({release.form}, unaudited) filed {release.filed}",
            section="",
            url=edgar_url(release.accession, cik) or "",
            excerpt=excerpt(release.source),
        )

    refs = fact_refs(facts)
    screened = _Screen(screen)
    retrieved = {spec.key: retriever.search(list(spec.queries), ticker, company, as_of) for spec in specs}
    news = retriever.passages("news", ticker, as_of)
    wikipedia = retriever.passages("wikipedia", ticker, as_of)
    # one batch for everything known up front; passages found later (risk links) are judged as met
    screened.judge(news + wikipedia + [h.passage for hits in retrieved.values() for h in hits])
    for spec in specs:
        screened.judge([h.passage for h in retrieved[spec.key]], spec.title)
    news_ok = [p for p in news if screened.allowed(p)]
    newest = max((p.date[:10] for p in news_ok if p.date), default="")
    if newest and _days(newest, as_of) > STALE_NEWS_DAYS:
        warnings.append(
            f"news is stale: the newest article for {ticker} is from {newest}, "
            f"{_days(newest, as_of)} days before {as_of[:10]}; Recent developments shows what there is"
        )
    stories = build_stories(news_ok, company, ticker, as_of, limit=8, encode=encode)

    plans: list[SectionPlan] = []
    for spec in specs:
        composer = COMPOSERS.get(spec.compose)
        if composer is None:
            raise ConfigError(
                f"section {spec.key!r}: unknown composition {spec.compose!r}; "
                f"registered: {', '.join(sorted(COMPOSERS))}"
            )
        inp = ComposeInput(
            ticker=ticker,
            company=company,
            as_of=as_of,
            run_id=run_id,
            spec=spec,
            unit=unit,
            hits=[h for h in retrieved[spec.key] if screened.allowed(h.passage)],
            book=book,
            retriever=retriever,
            facts=facts,
            facts_n=facts_n,
            release_n=release_n,
            fact_refs=refs,
            allowed=screened.allowed,
            encode=encode,
            risks=[r for r in (risks or []) if r.ticker == ticker],
            stories=stories.shown + stories.more,
            news=news_ok,
            wikipedia=wikipedia,
            warnings=warnings,
            fit=fit,
            max_new_tokens=max_new_tokens,
        )
        plan = composer(inp)
        used = {p for para in plan.lead + plan.tail for p in para.citations}
        used |= {g for u in plan.units for g in u.source_map.values()}
        plans.append(plan.model_copy(update={"sources": sorted(used)}))
        if not plan.lead and not plan.tail and not plan.units:
            warnings.append(f"{spec.title}: {plan.note or 'no sources retrieved'}")
    documents = [{"corpus": c, "doc_id": d, "digest": g} for c, d, g in retriever.documents(ticker)]
    return TickerContext(
        ticker=ticker,
        company=company,
        cik=cik,
        as_of=as_of,
        unit=unit,
        sources=book.sources,
        facts=facts,
        facts_text=facts_text,
        sections=plans,
        documents=documents,
        warnings=warnings,
        dropped=screened.dropped(),
        stories_demoted=stories.demoted_counts(),
    )


def requests_for(
    ctx: TickerContext, temperature: float | None = None, seed: int | None = None
) -> list[GenerationRequest]:
    """The generation requests of one ticker, each with its decoding constraint."""
    return [u.request(temperature, seed) for p in ctx.sections for u in p.units]
