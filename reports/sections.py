"""The shipped sections' composers: what code states exactly, and what the model writes around it.

* financials — facts -> sentences (reports/financials.py), every figure in the facts table;
  the model may add why, from MD&A / earnings-release passages only. No facts: one line, no model.
* risks — the 10-K's own risk-factor headings (rag/risk_factors.py), ranked by relevance to the
  company's current news and by novelty versus the previous 10-K; each linked to its passage.
  The model writes nothing here when headings exist: the filer's own summary beats a paraphrase.
* developments — news stories (reports/stories.py: duplicates merged, solicitations and spam
  demoted) listed with date, outlet and headline; the model says what the top stories report.
* overview — the model answers "what does it do" from the Wikipedia lead and Item 1 Business;
  code adds the company's scale from the facts.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from rag.types import Passage
from reports.compose import (
    ComposeInput,
    SectionPlan,
    code_paragraph,
    model_units,
    register_composer,
)
from reports.facts_view import money
from reports.financials import annual_sentences, quarter_sentences
from reports.release import release_sentences
from reports.stories import Story

MAX_RISKS = 5
MAX_STORIES = 5
NOVELTY_BONUS = 0.15  # a risk new since the last 10-K ranks above an equally relevant old one


def _plan(inp: ComposeInput, **kw: object) -> SectionPlan:
    return SectionPlan(key=inp.spec.key, title=inp.spec.title, **kw)


@register_composer("financials")
def compose_financials(inp: ComposeInput) -> SectionPlan:
    if inp.facts is None or not inp.facts_n:
        return _plan(
            inp,
            note=f"No XBRL financial facts were available for {inp.company} as of {inp.as_of}, "
            "so this section states nothing and nothing was generated.",
        )
    paras = annual_sentences(inp.facts, inp.company, release=False) + quarter_sentences(inp.facts.quarterly)
    lead = [code_paragraph(p, inp.facts_n, facts=inp.fact_refs) for p in paras]
    # the earnings release last (it is the newest period) and citing the 8-K it comes from
    release_n = inp.release_n or inp.facts_n
    lead += [code_paragraph(p, release_n, facts=inp.fact_refs) for p in release_sentences(inp.facts.release)]
    units = model_units(inp, list(inp.hits))
    return _plan(inp, lead=lead, units=units)


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _risk_passage(inp: ComposeInput, risk: object) -> Passage | None:
    """The filings passage the heading stands in, so the risk links to where the filer explains it."""
    from rag.risk_factors import passage_for

    store = inp.retriever.stores.get("filings") if inp.retriever else None
    if store is None:
        return None
    pid = passage_for(risk, store.table)
    if pid is None:
        return None
    rows = np.flatnonzero((store.table["passage_id"] == pid).to_numpy())
    return store.passage(int(rows[0])) if len(rows) else None


@register_composer("risks")
def compose_risks(inp: ComposeInput) -> SectionPlan:
    tenks = sorted(
        {
            (r.filed, r.doc_id)
            for r in inp.risks
            if r.form.startswith("10-K") and (not r.filed or r.filed <= inp.as_of)
        }
    )
    if not tenks:  # no headings extracted: the model states the risk of each Item 1A passage
        units = model_units(inp, list(inp.hits))
        note = "" if units else "No risk factors were found in the filings, so nothing was written."
        return _plan(inp, units=units, note=note)
    latest = tenks[-1][1]
    current = [r for r in inp.risks if r.doc_id == latest]
    previous = {_norm(r.heading) for r in inp.risks if len(tenks) > 1 and r.doc_id == tenks[-2][1]}
    relevance = np.zeros(len(current))
    headlines = [s.headline for s in inp.stories[:20]]
    if inp.encode is not None and headlines and current:
        vecs = np.asarray(inp.encode([r.heading for r in current] + headlines))
        relevance = (vecs[: len(current)] @ vecs[len(current) :].T).max(axis=1)
    novel = [bool(previous) and _norm(r.heading) not in previous for r in current]
    order = sorted(
        range(len(current)), key=lambda i: (-(relevance[i] + NOVELTY_BONUS * novel[i]), current[i].ordinal)
    )
    lead = []
    for i in order:
        risk = current[i]
        passage = _risk_passage(inp, risk)
        if passage is None or not inp.allowed(passage):
            continue
        prefix = "New since the previous 10-K. " if novel[i] else ""
        category = f"{risk.category}: " if risk.category else ""
        heading = risk.heading if re.search(r"[.!?]$", risk.heading) else risk.heading + "."
        n = inp.book.add(passage, max(0, passage.text.find(risk.heading[:60])))
        lead.append(
            code_paragraph(
                [prefix + category + heading], n, "item", source_text=risk.heading + " " + passage.text
            )
        )
        if len(lead) == MAX_RISKS:
            break
    note = "" if lead else "No risk factor could be linked to its passage, so nothing was written."
    return _plan(inp, lead=lead, note=note)


def _story_passage(inp: ComposeInput, story: Story) -> Passage | None:
    """The story's representative passage; its headline leads the text when the body lacks it."""
    by_id = {p.passage_id: p for p in inp.news}
    p = by_id.get(story.passage_ids[0])
    if p is None:
        return None
    return p if story.headline[:60] in p.text[:400] else replace(p, text=f"{story.headline}. {p.text}")


@register_composer("developments")
def compose_developments(inp: ComposeInput) -> SectionPlan:
    lead = []
    used: list[Passage] = []
    for story in inp.stories[:MAX_STORIES]:
        p = _story_passage(inp, story)
        if p is None or not inp.allowed(p):
            continue
        n = inp.book.add(p)
        others = [o for o in story.outlets[1:3] if o and o != story.outlet]
        copies = f" (also {', '.join(others)})" if others else ""
        headline = story.headline.rstrip(".!? ")
        lead.append(
            code_paragraph(
                [f"{story.date[:10]} · {story.outlet}: {headline}{copies}."], n, "item", source_text=p.text
            )
        )
        used.append(p)
    filings = list(inp.hits)
    units = model_units(inp, used[: inp.spec.max_claims] + filings)
    if inp.unit == "claim":
        units = units[: inp.spec.max_claims + len(filings)]
    note = "" if lead or units else f"No news or 8-K filings about {inp.company} up to {inp.as_of}."
    return _plan(inp, lead=lead, units=units, note=note)


@register_composer("overview")
def compose_overview(inp: ComposeInput) -> SectionPlan:
    wiki = [p for p in inp.wikipedia if p.ticker == inp.ticker]
    lead_passage = min(wiki, key=lambda p: p.ordinal) if wiki else None
    passages = ([lead_passage] if lead_passage else []) + [
        h for h in inp.hits if h.passage.corpus != "wikipedia" or lead_passage is None
    ]
    units = model_units(inp, passages)
    tail = []
    if inp.facts is not None and inp.facts_n and inp.facts.years:
        y = inp.facts.years[-1]
        rev = next((r.values.get(y) for r in inp.facts.rows if r.line == "revenue"), None)
        if rev is not None:
            tail.append(
                code_paragraph(
                    [f"{inp.company} reported revenue of {money(rev)} in fiscal {y} (FY{y})."],
                    inp.facts_n,
                    facts=inp.fact_refs,
                )
            )
    note = (
        "" if units or tail else "No business description was found for this company, so nothing was written."
    )
    return _plan(inp, units=units, tail=tail, note=note)
