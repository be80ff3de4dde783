"""Fit a section's prompt into the chat model's context by dropping its lowest-ranked sources.

GPT-NeoXT-Chat-Base-20B sees 2,048 tokens, prompt and answer together. When a section's retrieved
sources would push the prompt past `context - max_new_tokens`, whole sources go, worst first,
until it fits; the instruction, the question and the exact facts table are never cut, and no
source is cut mid-text (a half passage reads as a complete one and invites wrong citations).
The sources that stay are renumbered 1..k in their original order by the caller, so the prompt's
numbers and the section's citation map (`SectionPlan.source_map`) always agree.

Rank: the retriever returns each query's hits best first, and a section asks several queries
(filings, news, Wikipedia), so a source's rank is its position inside its own query, ties broken
by lower cosine similarity. Dropping the worst rank first takes the third filing passage before
the best news item, instead of losing a whole corpus because its query came last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rag.retrieve import Hit

T = TypeVar("T")


@dataclass(frozen=True)
class PromptBudget:
    """The chat model's limits as the prompt builder needs them (see `models.engine.prompt_budget`)."""

    count_tokens: Callable[[str, str], int]  # (system, user) -> tokens of the fully formatted prompt
    context_tokens: int

    def fits(self, system: str, user: str, max_new_tokens: int) -> bool:
        return self.count_tokens(system, user) <= self.context_tokens - max_new_tokens


def hit_ranks(hits: Sequence[Hit]) -> list[tuple[int, float]]:
    """Per hit, a sort key where larger means less important: (position in its query, -score)."""
    seen: dict[str, int] = {}
    ranks = []
    for hit in hits:
        pos = seen.get(hit.query, 0)
        seen[hit.query] = pos + 1
        ranks.append((pos, -hit.score))
    return ranks


def fit_sources(
    items: Sequence[T],
    ranks: Sequence[tuple[int, float]],
    render: Callable[[list[T]], str],
    fits: Callable[[str], bool],
) -> tuple[list[T], list[T]]:
    """(kept, dropped): the fewest worst-ranked items removed so that `fits(render(kept))`.

    `render` builds the whole prompt from a list of items (in their original order); items are
    only ever removed whole. If even no item fits, every item is dropped and the caller's prompt
    (instruction only) goes to the engine, which reports the overflow for that request alone.
    """
    if len(items) != len(ranks):
        raise ValueError("items and ranks differ in length")
    keep = list(range(len(items)))
    worst_first = sorted(keep, key=lambda i: (ranks[i], i), reverse=True)
    dropped: list[int] = []
    while not fits(render([items[i] for i in keep])) and keep:
        victim = worst_first[len(dropped)]
        keep.remove(victim)
        dropped.append(victim)
    return [items[i] for i in keep], [items[i] for i in sorted(dropped)]
