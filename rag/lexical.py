"""BM25 beside each Faiss index: the lexical half of hybrid retrieval.

Why a lexical signal at all: MiniLM embeds "Consolidated Statements of Cash Flows" and the
"cash flow" question about it close together, but it hardly sees exact names, line items and
figures ("quick ratio", "Upjohn", "2023"), which is what financial questions are made of.

Why these terms: Snowball-stemmed (PyStemmer, the C build of the Snowball stemmers: "margins" and
"margin" are one term), lower-cased words and figures, minus a stop list. The stop list is the
usual English one plus the instruction boilerplate FinanceBench-style questions carry ("give a
response to the question by relying on the details shown in ..."): unweighted, those words match
every page of every filing and swamp the few terms that say what is asked (measured: a plain
BM25 fused with dense retrieval lowered held-out hit@5 from 0.67 to 0.56). Statement names in
that boilerplate are not lost: query understanding (rag/query.py) turns them into a boost.

Why bm25s: a maintained BM25 over scipy sparse matrices; scoring every row of a corpus for one
query is a sparse dot product, so filters (ticker, form, date, section) are a boolean mask over
the full score vector, exactly the rows the Faiss ID selector admits, without over-fetching.
Terms are stored per row with the passage table (rag/store.py), so an incremental ingest only
tokenizes new passages; the BM25 matrix itself (whose IDF depends on the whole corpus) is rebuilt
from stored terms when first queried after a change (about 1 s per 50k passages).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache

import numpy as np

# English function words (the usual IR list) ...
_ENGLISH = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves also may might must shall us per via
"""
# ... and the instruction boilerplate of analyst questions: how to answer, not what is asked.
# ("statement", "sheet" stay: "balance sheet", "cash flow statement" name the evidence.)
_INSTRUCTIONS = """
answer answers answering question questions respond response responses give giving provide
providing rely relying reliance base based basing assume assuming assumption perspective analyst
analysts utilize utilizing utilise using use used detail details shown show
showing displayed display clearly primarily primary mainly information info access only round
rounded rounding decimal decimals place places calculate calculating calculated compute computing
computed figure figures determine please explain state whether something like
useful relevant metric metrics company companies kind type consider considering best abilities
ability following asked ask asking within terms reported report reports expressed express
"""
# bm25s logs "Building index from tokens" at DEBUG on every build; Prefect's DEBUG console shows it.
logging.getLogger("bm25s").setLevel(logging.WARNING)

STOP_WORDS = frozenset((_ENGLISH + _INSTRUCTIONS).split())

# Words and figures: "10-K" -> "10" (one-letter words are dropped); "$1,234.5" -> "1234.5";
# "FY2023" -> "fy2023" and "2023".
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:\d+)?", re.UNICODE)
_FY = re.compile(r"^(fy|q[1-4])(\d{2,4})$")


@cache
def _stemmer():  # noqa: ANN202 - PyStemmer ships no type hints
    import Stemmer

    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """The BM25 terms of a text, in order (duplicates kept: term frequency matters)."""
    out: list[str] = []
    for raw in _TOKEN.findall(text.lower()):
        if raw[0].isdigit():
            out.append(raw.replace(",", ""))
            continue
        m = _FY.match(raw)
        if m:  # "fy2023" also matches a page that prints "2023"
            year = m.group(2)
            if len(year) == 2:  # the usual pivot: FY23 -> 2023, FY99 -> 1999
                year = ("20" if int(year) <= 50 else "19") + year
            out.extend((raw, year))
            continue
        if raw not in STOP_WORDS and len(raw) > 1:
            out.append(raw)
    stem = _stemmer().stemWords
    return [t if t[0].isdigit() else s for t, s in zip(out, stem(out), strict=True)]


def joined_terms(texts: Sequence[str]) -> list[str]:
    """Terms of each text as one space-joined string: how the passage table stores them."""
    return [" ".join(terms(t)) for t in texts]


class LexicalIndex:
    """BM25 (Lucene variant, k1 1.2, b 0.75) over row-aligned term strings of one corpus."""

    def __init__(self, stored_terms: Sequence[str]):
        import bm25s

        self.size = len(stored_terms)
        self._bm25 = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        docs = [t.split() or [""] for t in stored_terms]  # an empty row keeps its place
        if docs:
            self._bm25.index(docs, show_progress=False)

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for `query` (0 for rows outside `mask`), float32 of length size."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        q = list(dict.fromkeys(terms(query)))  # a repeated query word is one need, not two
        out = np.asarray(self._bm25.get_scores(q), dtype=np.float32) if q else np.zeros(self.size, np.float32)
        if mask is not None:
            out = np.where(np.asarray(mask, dtype=bool), out, 0.0).astype(np.float32)
        return out

    def top(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best k (row, score) with a positive score, best first."""
        s = self.scores(query, mask)
        if s.size == 0 or k <= 0:
            return []
        k = min(k, s.size)
        idx = np.argpartition(-s, k - 1)[:k]
        idx = idx[np.argsort(-s[idx], kind="stable")]
        return [(int(i), float(s[i])) for i in idx if s[i] > 0]
