"""News de-duplication: the same story by normalised link, and near-duplicate titles.

Aggregators repeat wire stories: the same link with tracking parameters, "Update: ..." and
"Correction to ..." re-issues, the same headline re-cased by another outlet. Two articles are
one story when
- their links match after normalisation (scheme and host case, `www.`, tracking parameters such
  as `utm_*`, the fragment and a trailing slash dropped), or
- their titles match as word sets with Jaccard >= 0.85 (lower-cased, punctuation dropped), the
  numbers in both titles are the same ("Insider Sold $4,211,791" vs "$4,175,442" are two filings),
  and they were published within 48 hours of each other (weekly columns such as "The Zacks Analyst
  Blog Highlights X and Y" reuse a title pattern across days and are different articles).
The first article of a story in file order is kept. Measured on the shipped news (5 tickers, ~495
rows and ~158 distinct links/titles each) these rules keep 779 articles where exact link/title
matching kept 791: 11 merged by the title rule, 1 by whitespace in a title; every merged pair was
checked by hand to be the same story (tests/rag/test_news_formats.py lists them).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rag.sources.news_fields import Article

TITLE_JACCARD = 0.85
WINDOW_HOURS = 48
_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|ref|ref_src|cmpid|ncid|guccounter)$"
)


def normalize_url(url: str) -> str:
    """Canonical form of a link for comparison (not for display)."""
    url = url.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
        host = parts.netloc.lower().removeprefix("www.")
    except ValueError:  # e.g. an invalid IPv6 host: compare the text as is
        return url.lower()
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("", host, path, urlencode(sorted(query)), ""))


def title_tokens(title: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9]+", title.lower().replace("'s", "")))


def _numbers(tokens: frozenset[str]) -> frozenset[str]:
    return frozenset(t for t in tokens if t.isdigit())


def _hours_apart(a: str, b: str) -> float:
    fa, fb = (datetime.fromisoformat(x.replace("Z", "+00:00")) for x in (a, b))
    return abs((fa - fb).total_seconds()) / 3600


def near_duplicate(a: Article, b: Article, ta: frozenset[str], tb: frozenset[str]) -> bool:
    """The title rule of the module docstring, for two articles and their title tokens."""
    if not ta or not tb or _numbers(ta) != _numbers(tb):
        return False
    if len(ta & tb) < TITLE_JACCARD * len(ta | tb):
        return False
    return not (a.date and b.date) or _hours_apart(a.date, b.date) <= WINDOW_HOURS


def _near_twin(
    art: Article,
    ts: frozenset[str],
    prefix: list[str],
    prefix_index: dict[str, list[int]],
    kept: list[Article],
    kept_tokens: list[frozenset[str]],
) -> Article | None:
    """The first kept article sharing a prefix token that is a near duplicate of `art`, if any."""
    seen: set[int] = set()
    for t in prefix:
        for k in prefix_index[t]:
            if k not in seen and near_duplicate(art, kept[k], ts, kept_tokens[k]):
                return kept[k]
            seen.add(k)
    return None


def dedup(articles: Sequence[Article]) -> tuple[list[Article], list[tuple[Article, Article]]]:
    """(kept articles in input order, (dropped, kept-duplicate-of) pairs).

    Candidate pairs come from prefix filtering (all-pairs similarity search): with tokens in a
    global rare-first order, two sets with Jaccard >= t must share one of the first
    |A| - ceil(t*|A|) + 1 tokens of each, so only articles sharing such a token are compared.
    Linear-ish in practice instead of quadratic on a feed of thousands.
    """
    freq: dict[str, int] = defaultdict(int)
    tokens = [title_tokens(a.title) for a in articles]
    for ts in tokens:
        for t in ts:
            freq[t] += 1
    kept: list[Article] = []
    dropped: list[tuple[Article, Article]] = []
    by_url: dict[str, Article] = {}
    by_title: dict[str, Article] = {}
    prefix_index: dict[str, list[int]] = defaultdict(list)  # token -> positions in `kept`
    kept_tokens: list[frozenset[str]] = []
    for art, ts in zip(articles, tokens, strict=True):
        url = normalize_url(art.url)
        exact = " ".join(art.title.lower().split())
        twin = (by_url.get(url) if url else None) or (by_title.get(exact) if exact else None)
        ordered = sorted(ts, key=lambda t: (freq[t], t))
        # the 1e-9 keeps float rounding in t*|A| from ever shortening the prefix (which would miss pairs)
        prefix = ordered[: len(ordered) - math.ceil(TITLE_JACCARD * len(ordered) - 1e-9) + 1]
        if twin is None:
            twin = _near_twin(art, ts, prefix, prefix_index, kept, kept_tokens)
        if twin is not None:
            dropped.append((art, twin))
        else:
            kept.append(art)
            kept_tokens.append(ts)
        # a re-issue's own link and title also point at the kept story
        if url:
            by_url.setdefault(url, twin or art)
        if exact:
            by_title.setdefault(exact, twin or art)
        if twin is not None:
            continue
        for t in prefix:
            prefix_index[t].append(len(kept) - 1)
    return kept, dropped
