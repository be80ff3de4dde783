"""A ticker's news passages -> ranked, de-duplicated "stories" for the Recent developments section.

Why: retrieval ranks news by similarity to a query, not by importance, and the shipped feeds are
full of items that look relevant and say nothing (in the AAPL demo 4 of the 5 news sources shown
were law-firm "investigation" solicitations). Every article (a doc_id; chunking may split it into
several passages, counted once) is
1. demoted when it is noise, the reason kept for the audit: "solicitation" (law firms), "listicle"
   (buy/sell/hold columns, stock lists), "roundup" (market wraps, movers lists), "press-release"
   (other companies' releases), "off-topic" (never names the company), "price-move", "correction"
   (the headline rule tables live in reports/headlines.py);
2. classified by ordered word-boundary regexes on its headline, first match wins ("Tesla CFO Sells
   3,000 Shares" is an insider trade, "market", before "CFO" makes it "management");
3. merged single-link with the other reports of its story: within WINDOW_HOURS, same demotion
   reason, no disjoint key figures ("$4,000,320" / "$4,211,791" are two filings), and headline
   Jaccard >= TITLE_JACCARD or, given `encode` (MiniLM), a row of COSINE_RULES. Measured on all
   same-window pairs of the 779 shipped headlines: Jaccard >= 0.5 joins only reports of one story;
   headline cosine mixes stories from 0.75 ("Nvidia Stock Rises. Why Next Week..." / "...Why This
   Analyst's": 0.77) while one story's reports go down to 0.55 ("Meta Shares Dip as German Court
   Backs AI Data Use" / "Meta Wins Legal Battle in Germany to Train AI with User Posts": 0.64,
   excerpts 0.84), so below 0.80 a second signal must agree; every pair those rows add on the
   shipped data was read and is one story.
Materiality = category weight x recency (half-life HALF_LIFE_DAYS, from the end of as_of to the
latest report) x coverage (1 + log2 outlets) x centrality (1 when a headline names the company or
ticker, BODY_ONLY when only the text does). Order: materiality, newer date, headline: the same
input always gives the same list. `classify`, `clean_headline`, `provider` and `spam_reason`
(reports/headlines.py) stay importable from here.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict

from rag.catalog import Company
from rag.sources.news_tickers import company_name_patterns
from rag.types import Passage
from reports.headlines import (
    ISSUER,
    LABEL,
    NEWSROOMS,
    NUMBER,
    PRESS_WIRES,
    PRICE_MOVE,
    classify,
    clean_headline,
    headline_tokens,
    provider,
    spam_reason,
)

WEIGHTS = {"earnings": 1.0, "guidance": 1.0, "m&a": 0.95, "regulation": 0.85, "legal": 0.8, "products": 0.7,
           "management": 0.75, "capital": 0.75, "market": 0.35, "other": 0.5}  # fmt: skip
CATEGORIES = tuple(WEIGHTS)
HALF_LIFE_DAYS = 14.0
STALE_DAYS = 30  # newest article older than this before as_of: the feed is stale
WINDOW_HOURS = 48.0
TITLE_JACCARD = 0.5  # alone: same story
# (headline cosine, title+excerpt cosine, Jaccard) minimums; any row met: same story
COSINE_RULES = ((0.80, 0.0, 0.0), (0.70, 0.0, 0.25), (0.65, 0.75, 0.0), (0.55, 0.80, 0.0))
RELATED = (0.70, 0.80, 0.3)  # any one met: another angle on a shown story, kept out of `shown`
BODY_ONLY = 0.35  # centrality when only the article text, not a headline, names the company

__all__ = [
    "CATEGORIES",
    "Encode",
    "Story",
    "StoryList",
    "build_stories",
    "classify",
    "clean_headline",
    "provider",
    "spam_reason",
]

Encode = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) unit vectors


class Story(BaseModel):
    """One development as the section shows it; `passage_ids[0]` is the representative's passage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str
    date: str  # ISO date of the representative report ("" if undated)
    outlet: str
    url: str
    passage_ids: tuple[str, ...]
    articles: int  # distinct articles (doc_ids) merged
    outlets: tuple[str, ...]  # distinct outlets that carried it, representative's first
    category: str
    score: float  # materiality
    demoted: str = ""  # why it is kept out of the shown list; "" for shown/ranked stories


class StoryList(BaseModel):
    """`shown`: the top `limit`; `more`: the rest of the ranked stories; `demoted`: the noise."""

    model_config = ConfigDict(extra="forbid")

    shown: list[Story]
    more: list[Story]
    demoted: list[Story]

    def demoted_counts(self) -> dict[str, int]:
        """Articles demoted per reason, for the audit trail."""
        counts: Counter[str] = Counter()
        for s in self.demoted:
            counts[s.demoted] += s.articles
        return dict(sorted(counts.items()))


@dataclass
class _Article:
    passages: list[Passage]
    headline: str
    outlet: str
    when: datetime | None
    tokens: frozenset[str]
    numbers: frozenset[str]
    category: str
    central: float  # 1.0 a headline names the company, BODY_ONLY the text only, 0 neither
    reason: str


def _when(date: str) -> datetime | None:
    try:
        return datetime.fromisoformat(date.replace("Z", "+00:00")).replace(tzinfo=None) if date else None
    except ValueError:
        return None


def _article(passages: list[Passage], names: re.Pattern[str], ticker: re.Pattern[str]) -> _Article:
    first = passages[0]
    prov = provider(first.url, first.text)
    headline, suffix_outlet = clean_headline(first.title or first.text.split(". ")[0], prov)
    outlet = suffix_outlet or prov  # Barron's / WSJ / MarketWatch over the Dow Jones feed they came by
    bare = LABEL.sub("", headline)

    def named(text: str) -> bool:
        return bool(ticker.search(text)) or any(m.group(0)[0].isupper() for m in names.finditer(text))

    central = 1.0 if named(headline) else BODY_ONLY if named(" ".join(p.text for p in passages)) else 0.0
    category, reason = classify(headline), spam_reason(headline)
    if not reason and central < 1 and (outlet in PRESS_WIRES or ISSUER.search(bare)):
        reason = "press-release"
    elif not reason and central == 0:
        reason = "off-topic"
    elif not reason and category in ("market", "other") and PRICE_MOVE.search(bare):
        reason = "price-move"
    numbers = frozenset(NUMBER.findall(re.sub(r"(?<=\d),(?=\d)", "", headline)))
    tokens = headline_tokens(headline)
    return _Article(passages, headline, outlet, _when(first.date), tokens, numbers, category, central, reason)


class _Pairs:
    """Same-story and related tests between articles (sorted by date, then headline)."""

    def __init__(self, arts: list[_Article], encode: Encode | None):
        self.arts = arts
        self.heads = self.texts = None
        if encode is not None and arts:
            self.heads = np.asarray(encode([LABEL.sub("", a.headline) for a in arts]))
            self.texts = np.asarray(encode([a.passages[0].text for a in arts]))

    def _signals(self, i: int, j: int) -> tuple[float, float, float] | None:
        """(headline cosine, title+excerpt cosine, Jaccard); None when the two cannot be one story."""
        a, b = self.arts[i], self.arts[j]
        if a.reason != b.reason or (a.numbers and b.numbers and not a.numbers & b.numbers):
            return None
        if a.when and b.when and abs((a.when - b.when).total_seconds()) > WINDOW_HOURS * 3600:
            return None
        union = len(a.tokens | b.tokens)
        jac = len(a.tokens & b.tokens) / union if union else 0.0
        if self.heads is None or self.texts is None:
            return 0.0, 0.0, jac  # without an encoder only the Jaccard rules can hold
        return float(self.heads[i] @ self.heads[j]), float(self.texts[i] @ self.texts[j]), jac

    def same(self, i: int, j: int) -> bool:
        if (sig := self._signals(i, j)) is None:
            return False
        head, text, jac = sig
        return jac >= TITLE_JACCARD or any(head >= h and text >= t and jac >= w for h, t, w in COSINE_RULES)

    def related(self, i: int, j: int) -> bool:  # any RELATED minimum met
        sig = self._signals(i, j)
        return sig is not None and any(v >= m for v, m in zip(sig, RELATED, strict=True))

    def clusters(self) -> list[list[int]]:
        """Union-find over same-story pairs."""
        parent = list(range(len(self.arts)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, a in enumerate(self.arts):
            for j in range(i + 1, len(self.arts)):
                b = self.arts[j]
                if a.when and b.when and (b.when - a.when).total_seconds() > WINDOW_HOURS * 3600:
                    break  # sorted by date: every later article is outside the window too
                if self.same(i, j):
                    parent[root(j)] = root(i)
        groups: dict[int, list[int]] = {}
        for i in range(len(self.arts)):
            groups.setdefault(root(i), []).append(i)
        return list(groups.values())


def _story(group: list[_Article], reference: datetime | None) -> Story:
    votes = Counter(a.category for a in group if a.category != "other")
    category = min(votes, key=lambda c: (-votes[c], -WEIGHTS[c], c)) if votes else "other"
    # the first report that names the company, is of the story's kind, from a news organisation
    rep = min(group, key=lambda a: (-a.central, a.category != category, a.outlet not in NEWSROOMS,
                                    a.when or datetime.max, a.headline))  # fmt: skip
    outlets = tuple(dict.fromkeys([rep.outlet] + sorted(a.outlet for a in group)))
    dated = [a.when for a in group if a.when]
    age = (reference - max(dated)).total_seconds() / 86400 if reference and dated else HALF_LIFE_DAYS
    recency = 0.5 ** (max(0.0, age) / HALF_LIFE_DAYS)  # undated: half weight
    score = WEIGHTS[category] * recency * (1 + math.log2(len(outlets))) * max(a.central for a in group)
    rest = sorted((a for a in group if a is not rep), key=lambda a: (a.when or datetime.max, a.headline))
    return Story(
        headline=LABEL.sub("", rep.headline),
        date=rep.passages[0].date[:10],
        outlet=rep.outlet,
        url=rep.passages[0].url,
        passage_ids=tuple(p.passage_id for a in [rep, *rest] for p in a.passages),
        articles=len(group),
        outlets=outlets,
        category=category,
        score=round(score, 6),
        demoted=rep.reason,
    )


def build_stories(
    passages: Sequence[Passage],
    company: str,
    ticker: str,
    as_of: str = "",
    limit: int = 5,
    encode: Encode | None = None,
    aliases: Sequence[str] = (),
) -> StoryList:
    """Rank a ticker's news passages into stories (module docstring).

    Passages dated after `as_of` are ignored (undated ones pass, as in retrieval); without
    `as_of` recency counts from the newest article. `aliases` are extra names that make an
    article about the company ("AWS", "Tim Cook"). `shown` holds distinct developments: a ranked
    story with an article within RELATED of a shown story's article is another angle on it
    ("Apple Can't Really Make iPhones in the U.S." next to the 25% iPhone tariff threat) and goes
    to `more`, so one big story cannot fill the section.
    """
    alts = company_name_patterns(Company(ticker, "", company)) if company else []
    alts += [re.escape(a) for a in aliases if a.strip()]
    never = re.compile(r"(?!x)x")
    names = re.compile(rf"(?<![\w-])(?:{'|'.join(alts)})(?![\w-])", re.I) if alts else never
    tick = re.compile(rf"(?<!\w)\$?{re.escape(ticker.upper())}(?!\w)") if ticker else never
    by_doc: dict[str, list[Passage]] = {}
    for p in passages:
        if not as_of or not (p.filed or p.date) or (p.filed or p.date)[:10] <= as_of[:10]:
            by_doc.setdefault(p.doc_id, []).append(p)
    arts = [_article(sorted(ps, key=lambda p: p.ordinal), names, tick) for ps in by_doc.values()]
    arts.sort(key=lambda a: (a.when or datetime.min, a.headline, a.passages[0].doc_id))
    end_of_day = _when(as_of[:10]) if as_of else None
    newest = max((a.when for a in arts if a.when), default=None)
    reference = end_of_day + timedelta(days=1) if end_of_day else newest
    if reference and newest and reference - newest > timedelta(days=STALE_DAYS):
        # A stale feed (newest article weeks before as_of): every story would decay to ~0 and
        # materiality could no longer rank them; recency then counts from the newest article,
        # and the report warns that its news is stale (reports/context.py).
        reference = newest + timedelta(days=1)
    pairs = _Pairs(arts, encode)
    ranked = sorted(
        ((_story([arts[i] for i in g], reference), g) for g in pairs.clusters()),
        key=lambda sg: (-sg[0].score, _newer_first(sg[0].date), sg[0].headline),
    )
    shown: list[tuple[Story, list[int]]] = []
    more: list[Story] = []
    for story, g in ranked:
        if story.demoted:
            continue
        if len(shown) < limit and not any(pairs.related(i, j) for _, h in shown for i in g for j in h):
            shown.append((story, g))
        else:
            more.append(story)
    return StoryList(shown=[s for s, _ in shown], more=more, demoted=[s for s, _ in ranked if s.demoted])


def _newer_first(date: str) -> tuple[int, ...]:
    return (0, *(-ord(c) for c in date)) if date else (1,)
