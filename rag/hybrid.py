"""Hybrid ranking: dense and BM25 candidates fused, aggregated to pages, then re-scored.

Shared by reports (rag/retrieve.py), `researchdesk ask` and `researchdesk eval retrieval`, so
the numbers the evaluation prints are the ranking reports use.

Fusion is a weighted sum, not reciprocal rank: the dense score is a cosine (comparable across
queries) and the BM25 score is divided by the best BM25 score under the same filter (so 1.0 is
"the page that matches the words best"). Rank fusion throws away how far ahead a candidate is,
and with equal weights it let a lexical list led by boilerplate matches displace good dense hits
(issue 12's measurement: held-out hit@5 0.67 -> 0.56). A candidate found by one retriever only
gets the other's floor: the lowest dense score among the dense candidates, or its real BM25 score
(BM25 scores every row anyway).

Re-scoring looks at what a passage cannot show alone: the page it sits on. The page's score is
its best passage's, plus a boost when the page prints the title of the statement the question is
about (query understanding, rag/query.py) and when its document is for the period asked. These
are weights, measured by `researchdesk eval retrieval` per stage; see DEFAULT_WEIGHTS. A model
judge was measured and left out: the shipped chat model as a yes/no re-scorer of the top 10
pages lowered dev hit@5 from 0.80 to 0.70 at 0.8 pairs/s (bench/rescore_judge.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.query import QueryIntent, statements_on


@dataclass(frozen=True)
class Weights:
    """Chosen from the middle of a plateau, not its best point (10 dev questions are few).

    Swept on the FinanceBench dev set (`researchdesk eval retrieval --lexical-weight W
    --statement-weight S`): fused hit@1 peaks at lexical 0.2-0.3 (0.50; 0.30 at 0.1, 0.10 at 0.5)
    while hit@5 is 0.70-0.80 from 0.1 to 0.8; the statement boost lifts re-scored hit@5 from 0.70
    to 0.80 at any S from 0.2 to 0.5 (0.1 is too small: the cosine spread among a filing's pages is
    ~0.3). The period boost cannot be measured on the dev set (one filing per company); it is
    kept smaller than the statement boost so a wrong period guess never outweighs the evidence.
    """

    lexical: float = 0.3  # weight of BM25 / best BM25 next to the cosine
    statement: float = 0.2  # the page prints (at its top) the statement the question is about
    period: float = 0.05  # the page's document is for the fiscal period the question names
    depth: int = 100  # candidates taken from each retriever before fusing


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Scored:
    row: int  # row of the corpus store's passage table
    score: float
    dense: float = 0.0
    lexical: float = 0.0  # BM25 divided by the best BM25 under the filter, in [0, 1]


def fuse(
    dense: Sequence[tuple[int, float]],
    lexical_scores: np.ndarray | None,
    weight: float,
    depth: int,
) -> list[Scored]:
    """Weighted fusion of dense top-k (row, cosine) and the full BM25 score vector, best first.

    `lexical_scores` is BM25 for every row, 0 outside the filter (rag.lexical.LexicalIndex.scores);
    None or weight 0 ranks by the cosine alone.
    """
    cos = dict(dense)
    if lexical_scores is None or weight == 0 or lexical_scores.size == 0:
        return sorted((Scored(r, c, c, 0.0) for r, c in dense), key=lambda s: -s.score)
    best = float(lexical_scores.max())
    lex_rows: list[int] = []
    if best > 0:
        k = min(depth, lexical_scores.size)
        top = np.argpartition(-lexical_scores, k - 1)[:k]
        lex_rows = [int(r) for r in top if lexical_scores[r] > 0]
    floor = min(cos.values()) if cos else 0.0
    out = []
    for row in dict.fromkeys([*cos, *lex_rows]):
        lex = float(lexical_scores[row]) / best if best > 0 else 0.0
        d = cos.get(row, floor)
        out.append(Scored(row, d + weight * lex, d, lex))
    return sorted(out, key=lambda s: (-s.score, s.row))


@dataclass(frozen=True)
class PageHit:
    key: tuple[str, int]  # (doc id, page); page -1 for unpaged sources, keyed per passage then
    score: float
    best: Scored  # the page's best passage
    rows: tuple[int, ...] = field(default=(), compare=False)  # every candidate passage on it


def by_page(scored: Sequence[Scored], key_of: Callable[[int], tuple[str, int]]) -> list[PageHit]:
    """Candidates grouped by the page they lie on; a page scores as its best passage."""
    groups: dict[tuple[str, int], list[Scored]] = {}
    for s in scored:
        key = key_of(s.row)
        if key[1] < 0:  # unpaged (HTML filings, news): every passage is its own unit
            key = (f"{key[0]}#{s.row}", -1)
        groups.setdefault(key, []).append(s)
    pages = []
    for key, group in groups.items():
        best = max(group, key=lambda s: s.score)
        pages.append(PageHit(key, best.score, best, tuple(s.row for s in group)))
    return sorted(pages, key=lambda p: -p.score)


def period_matches(intent: QueryIntent, period: str) -> bool:
    """A document period ("2023", "2023Q2") is the one the question asks about.

    A quarter named wins; otherwise the latest fiscal year named (a 10-K for FY2023 also shows
    FY2022, so "between FY2023 and FY2022" is answered by the FY2023 filing).
    """
    if not period or not (intent.quarters or intent.years):
        return False
    if intent.quarters:
        return period.upper() in {q.upper() for q in intent.quarters}
    return period[:4] == str(max(intent.years)) and "Q" not in period.upper()


def rescore(
    pages: Sequence[PageHit],
    intent: QueryIntent,
    page_text: Callable[[PageHit], str],
    period_of: Callable[[PageHit], str],
    weights: Weights = DEFAULT_WEIGHTS,
    top: int = 30,
) -> list[PageHit]:
    """The top pages re-ranked with the statement and period boosts; the rest keep their order."""
    head, tail = list(pages[:top]), list(pages[top:])
    wanted = set(intent.statements)
    out = []
    for p in head:
        bonus = 0.0
        if wanted and weights.statement and wanted & statements_on(page_text(p)[:600]):
            bonus += weights.statement
        if weights.period and period_matches(intent, period_of(p)):
            bonus += weights.period
        out.append(PageHit(p.key, p.score + bonus, p.best, p.rows))
    out.sort(key=lambda p: -p.score)
    return out + tail
