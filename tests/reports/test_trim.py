"""Prompts that would overflow the chat model's context lose their lowest-ranked sources, whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.facts import facts_from_companyfacts
from rag.retrieve import Hit, SourceQuery
from rag.types import Passage
from reports.compose import SYSTEM_PROMPT
from reports.context import build_context
from reports.facts_view import facts_prompt_text, facts_table
from reports.spec import SectionSpec
from reports.trim import PromptBudget, fit_sources, hit_ranks

DATA = Path(__file__).resolve().parents[2] / "data"
FILINGS_Q = "Apple principal risks"
NEWS_Q = "Apple risk news"
TEXTS = {  # passage id -> (query, score, text)
    "f1": (FILINGS_Q, 0.91, "The Company depends on component suppliers located outside the U.S. " * 6),
    "f2": (
        FILINGS_Q,
        0.83,
        "Tariffs and trade restrictions could raise the cost of the Company's products. " * 6,
    ),
    "f3": (
        FILINGS_Q,
        0.71,
        "The Company is subject to complex and changing laws and regulations worldwide. " * 6,
    ),
    "n1": (NEWS_Q, 0.64, "Apple shares fell after the administration announced new tariffs on imports. " * 6),
    "n2": (NEWS_Q, 0.52, "Regulators in the EU opened a new investigation into App Store rules. " * 6),
}


def _passage(pid: str) -> Passage:
    corpus = "filings" if pid.startswith("f") else "news"
    return Passage(
        pid,
        f"doc-{pid}",
        corpus,
        "AAPL",
        "sec",
        "10-K" if corpus == "filings" else "news",
        "2024-11-01",
        "Item 1A. Risk Factors",
        f"Apple {pid}",
        f"https://x/{pid}",
        TEXTS[pid][2],
    )


class FakeRetriever:
    """Returns the five hits above, each query's best first, as rag.retrieve.Retriever does."""

    def counts(self, ticker: str) -> dict[str, int]:
        return {"filings": 3, "news": 2, "wikipedia": 0}

    def search(self, queries, ticker, company="", as_of=""):
        return [Hit(_passage(pid), score, query) for pid, (query, score, _) in TEXTS.items()]

    def documents(self, ticker: str):
        return []

    def passages(self, corpus, ticker, as_of=""):
        return []


SPEC = SectionSpec(
    key="risks",
    title="Key risks",
    instruction="List the main risks to {company}'s business.",
    queries=(SourceQuery("filings", FILINGS_Q, k=3), SourceQuery("news", NEWS_Q, k=2)),
    max_new_tokens=100,
)


@pytest.fixture(scope="module")
def aapl_facts():
    """Apple's real XBRL facts from the shipped sample: the facts table is source [1]."""
    facts = facts_from_companyfacts(next((DATA / "sec" / "companyfacts").glob("*AAPL*")))
    return [f for f in facts if f.filed <= "2025-06-01"]


def words(system: str, user: str) -> int:
    """A deterministic stand-in tokenizer: one token per whitespace-separated word."""
    return len(system.split()) + len(user.split())


def _ctx(aapl_facts, budget: PromptBudget | None):
    table = facts_table(aapl_facts)
    return build_context(
        "AAPL",
        "Apple Inc.",
        "0000320193",
        "2025-06-01",
        FakeRetriever(),
        [SPEC],
        table,
        facts_prompt_text(table),
        "run1",
        fit=budget,
        unit="paragraph",
    )


def _numbers(user: str) -> list[int]:
    return [int(n) for n in re.findall(r"^\[(\d+)\] ", user, flags=re.M)]


def test_overlong_prompt_drops_worst_ranked_sources_and_renumbers(aapl_facts) -> None:
    (full,) = _ctx(aapl_facts, None).sections[0].units
    assert _numbers(full.user) == [1, 2, 3, 4, 5]
    # Room for everything except about two filing-sized passages.
    size = words(SYSTEM_PROMPT, full.user)
    budget = PromptBudget(words, context_tokens=size + SPEC.max_new_tokens - 130)
    ctx = _ctx(aapl_facts, budget)
    (plan,) = ctx.sections[0].units
    assert words(SYSTEM_PROMPT, plan.user) <= budget.context_tokens - plan.max_new_tokens
    # Dropped: f3 (third of its query), then n2 (second of its query, lower score than f2).
    kept = [s.passage_id for s in ctx.sources]
    assert kept == ["facts:AAPL", "f1", "f2", "n1"]  # the facts source is the report's [1] either way
    assert _numbers(plan.user) == [1, 2, 3] == sorted(plan.source_map) == sorted(plan.source_texts)
    for local, global_n in plan.source_map.items():
        src = ctx.sources[global_n - 1]
        line = next(x for x in plan.user.splitlines() if x.startswith(f"[{local}] "))
        assert plan.source_texts[local] in line  # the number the model sees is the source it cites
        assert src.title in line
    # The instruction, the task and the question framing are untouched.
    tail = full.user[full.user.index("\nTask: ") :]
    assert plan.user.endswith(tail) and plan.user.startswith("Company: Apple Inc. (AAPL)\nSection: Key risks")
    assert any("dropped 2 lowest-ranked source(s)" in w for w in ctx.warnings)


def test_prompt_that_fits_is_unchanged(aapl_facts) -> None:
    plain = _ctx(aapl_facts, None)
    roomy = _ctx(aapl_facts, PromptBudget(words, context_tokens=100_000))
    assert roomy.sections == plain.sections and roomy.sources == plain.sources
    assert not any("dropped" in w for w in roomy.warnings)


def test_nothing_is_generated_when_no_source_fits(aapl_facts) -> None:
    ctx = _ctx(aapl_facts, PromptBudget(words, context_tokens=SPEC.max_new_tokens + 10))
    assert ctx.sections[0].units == []  # no source left: the section is not sent to the model
    assert [s.passage_id for s in ctx.sources] == ["facts:AAPL"]
    assert any("dropped 5 lowest-ranked source(s)" in w for w in ctx.warnings)


@pytest.mark.parametrize(
    "sizes, ranks, limit, kept",
    [
        ([5, 5, 5], [(0, -0.9), (1, -0.8), (2, -0.7)], 15, [0, 1, 2]),  # fits: nothing dropped
        ([5, 5, 5], [(0, -0.9), (1, -0.8), (2, -0.7)], 14, [0, 1]),
        ([5, 5, 5], [(0, -0.9), (0, -0.5), (1, -0.8)], 10, [0, 1]),  # rank beats score
        ([5, 5, 5], [(0, -0.9), (0, -0.5), (0, -0.8)], 10, [0, 2]),  # same rank: lower score goes
        ([9, 1, 1], [(0, -0.9), (1, -0.8), (2, -0.7)], 9, [0]),  # removes the worst whole, never cuts
        ([5, 5], [(0, -0.9), (1, -0.8)], 3, []),  # nothing fits: all dropped
        ([], [], 0, []),
    ],
)
def test_fit_sources_table(sizes, ranks, limit, kept) -> None:
    items = list(range(len(sizes)))
    got, dropped = fit_sources(
        items,
        ranks,
        render=lambda xs: "x " * sum(sizes[i] for i in xs),
        fits=lambda text: len(text.split()) <= limit,
    )
    assert got == kept and sorted(got + dropped) == items


def test_hit_ranks_count_positions_per_query() -> None:
    hits = [Hit(_passage(pid), score, query) for pid, (query, score, _) in TEXTS.items()]
    assert hit_ranks(hits) == [(0, -0.91), (1, -0.83), (2, -0.71), (0, -0.64), (1, -0.52)]
