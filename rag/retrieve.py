"""Per-ticker, per-section retrieval over the corpus stores.

A report section asks several small questions of different corpora (the 10-K's Risk Factors, the
ticker's news, the company's Wikipedia article). Each `SourceQuery` is filtered to the ticker
(Wikipedia also admits general background articles) and, for filings, to matching section titles
so retrieval does not bleed across 10-K Items. Ranking is hybrid (rag/hybrid.py): the dense
candidates and BM25 over the same filter, fused with the weights `researchdesk eval retrieval`
measures; the company name is left out of the BM25 terms, since the ticker filter already says it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rag import hybrid
from rag.embedding import Embedder
from rag.errors import IndexNotBuiltError
from rag.hybrid import DEFAULT_WEIGHTS, Weights
from rag.query import keywords
from rag.store import CorpusStore
from rag.types import Passage

CORPORA = ("filings", "news", "wikipedia")


@dataclass(frozen=True)
class SourceQuery:
    corpus: str
    text: str  # may contain {company} / {ticker}
    k: int = 3
    sections: tuple[str, ...] = ()  # case-insensitive substrings of the section title; empty = any
    include_general: bool = False  # also admit passages with ticker "" (background articles)


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # fused score: cosine + weighted BM25 share (rag/hybrid.py); the cosine for external corpora
    query: str = field(default="", compare=False)


class ExternalCorpus(Protocol):
    """A read-only corpus with its own encoder (OpenChatKit's Wikipedia index, rag/okc_index.py).

    It has no ticker/date/section metadata: it gets the query texts and the names that identify
    the company, and returns (passage, cosine) per query, best first.
    """

    signature: str

    def search(
        self, texts: list[str], k: int, names: tuple[str, ...] = ()
    ) -> list[list[tuple[Passage, float]]]: ...


class Retriever:
    """Loads every built corpus once; `embedder` must be the one the stores were built with.

    `external` maps a corpus name to an ExternalCorpus that serves that corpus's queries instead
    of the local store (e.g. {"wikipedia": OpenChatKit index}).
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder,
        external: dict[str, ExternalCorpus] | None = None,
        weights: Weights = DEFAULT_WEIGHTS,
    ):
        self.embedder = embedder
        self.weights = weights
        self.external = dict(external or {})
        self.stores: dict[str, CorpusStore] = {}
        for corpus in CORPORA:
            try:
                store = CorpusStore.load(index_dir, corpus)
            except IndexNotBuiltError:
                continue
            if store.embedder != embedder.signature:
                raise IndexNotBuiltError(
                    f"{index_dir / corpus} was built with {store.embedder}, not {embedder.signature}; "
                    "run `researchdesk ingest --rebuild`"
                )
            self.stores[corpus] = store
        if not self.stores:
            raise IndexNotBuiltError(f"no index under {index_dir}; run `researchdesk ingest` first")

    def counts(self, ticker: str) -> dict[str, int]:
        """Passages per corpus for a ticker (general articles excluded; external corpora have none)."""
        return {
            c: int((s.table["ticker"] == ticker).sum())
            for c, s in self.stores.items()
            if c not in self.external
        }

    def documents(self, ticker: str) -> list[tuple[str, str, str]]:
        """(corpus, doc_id, content digest) of every document indexed for a ticker, for the audit trail."""
        out: list[tuple[str, str, str]] = []
        for corpus, store in self.stores.items():
            ids = set(store.table.loc[store.table["ticker"] == ticker, "doc_id"])
            out.extend((corpus, d, store.docs.get(d, "")) for d in sorted(ids))
        out.extend((corpus, f"{corpus}:external", ext.signature) for corpus, ext in self.external.items())
        return out

    def passages(self, corpus: str, ticker: str, as_of: str = "") -> list[Passage]:
        """Every passage of `corpus` for `ticker` published on or before `as_of`, in table order.

        For consumers that must see the whole set rather than the top-k of a query (ranking a
        ticker's news into stories, reports/stories.py). Same point-in-time rule as `search`:
        undated passages pass; general (ticker "") passages are not included.
        """
        store = self.stores.get(corpus)
        if store is None or corpus in self.external:
            return []
        rows = store.table[self._mask(store, SourceQuery(corpus, ""), ticker, as_of)].to_dict("records")
        return [Passage(**{**r, "ordinal": int(r["ordinal"]), "page": int(r["page"])}) for r in rows]

    def _mask(self, store: CorpusStore, query: SourceQuery, ticker: str, as_of: str) -> np.ndarray:
        tickers = store.table["ticker"]
        mask = (tickers == ticker) | (tickers == "") if query.include_general else tickers == ticker
        if as_of:  # point in time: nothing public after the report date (undated passages pass)
            filed = store.table["filed"]  # an 8-K is dated by its event, but public once filed
            dates = filed.where(filed != "", store.table["date"]).str.slice(0, 10)
            mask = mask & ((dates == "") | (dates <= as_of[:10]))
        if query.sections:
            titles = store.table["section"].str.lower()
            sec = np.zeros(len(titles), dtype=bool)
            for s in query.sections:
                sec |= titles.str.contains(s.lower(), regex=False).to_numpy()
            mask = mask.to_numpy() & sec
        return np.asarray(mask, dtype=bool)

    def search(
        self, queries: list[SourceQuery], ticker: str, company: str = "", as_of: str = ""
    ) -> list[Hit]:
        """Hits for all queries of one section, best first within each query, de-duplicated."""
        texts = [q.text.format(company=company or ticker, ticker=ticker) for q in queries]
        local = [
            i for i, q in enumerate(queries) if q.corpus in self.stores and q.corpus not in self.external
        ]
        vectors = (
            dict(zip(local, self.embedder.encode([texts[i] for i in local]), strict=True)) if local else {}
        )
        hits: list[Hit] = []
        seen: set[str] = set()
        for i, (q, text) in enumerate(zip(queries, texts, strict=True)):
            if q.corpus in self.external:  # by text only: no ticker/date/section metadata there
                found = self.external[q.corpus].search([text], q.k, (company, ticker))[0]
            elif i in vectors:
                store = self.stores[q.corpus]
                mask = self._mask(store, q, ticker, as_of)
                depth = max(q.k, self.weights.depth)
                words = keywords(text, (company, ticker)) if self.weights.lexical else ""
                lex = store.lexical_scores(words, mask) if words else None
                fused = hybrid.fuse(store.search(vectors[i], depth, mask), lex, self.weights.lexical, depth)
                found = [(store.passage(s.row), s.score) for s in fused[: q.k]]
            else:
                continue
            for passage, score in found:
                if passage.passage_id not in seen:
                    seen.add(passage.passage_id)
                    hits.append(Hit(passage, score, text))
        return hits
