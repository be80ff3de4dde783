"""One Faiss index + parquet passage table per corpus, updated incrementally and swapped atomically.

Layout: `<index_dir>/<corpus>/{index.faiss, passages.parquet, meta.json}`. Row i of the parquet
table is vector i of the index. `meta.json` maps each document id to the content digest it was
embedded from, so re-ingesting an unchanged document does nothing and a changed one replaces its
passages. Writes go to a temporary sibling directory that replaces the live one in a rename, so a
crash mid-ingest leaves the previous index intact.

Flat inner-product search (exact cosine on unit vectors) is right at the shipped sample's size;
filters (ticker, corpus section) are applied inside Faiss with an ID selector, not by over-fetching.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import MISSING, dataclass
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from rag.errors import IndexNotBuiltError
from rag.types import Document, Passage

PASSAGE_COLUMNS = list(Passage.__dataclass_fields__)


@dataclass
class UpsertStats:
    docs_added: int = 0
    docs_replaced: int = 0
    docs_unchanged: int = 0
    passages_added: int = 0
    passages_removed: int = 0

    def merge(self, other: UpsertStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class CorpusStore:
    def __init__(self, directory: Path, corpus: str, dim: int, embedder: str):
        self.directory = directory
        self.corpus = corpus
        self.dim = dim
        self.embedder = embedder
        self.index = faiss.IndexFlatIP(dim)
        self.table = pd.DataFrame(columns=PASSAGE_COLUMNS)
        self.docs: dict[str, str] = {}  # doc_id -> content digest

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def open(cls, index_dir: Path, corpus: str, dim: int, embedder: str) -> CorpusStore:
        """Load the corpus store, or an empty one if none was built (or it used another embedder)."""
        store = cls(index_dir / corpus, corpus, dim, embedder)
        meta_path = store.directory / "meta.json"
        if not meta_path.exists():
            return store
        meta = json.loads(meta_path.read_text())
        if meta.get("embedder") != embedder or meta.get("dim") != dim:
            return store  # built by another embedder: everything is re-embedded on the next ingest
        store.index = faiss.read_index(str(store.directory / "index.faiss"))
        store.table = pd.read_parquet(store.directory / "passages.parquet", engine="pyarrow")
        for name, spec in Passage.__dataclass_fields__.items():  # tables written before a field existed
            if name not in store.table.columns and spec.default is not MISSING:
                store.table[name] = spec.default
        store.docs = dict(meta["docs"])
        if store.index.ntotal != len(store.table):
            raise IndexNotBuiltError(
                f"{store.directory}: index has {store.index.ntotal} vectors but {len(store.table)} passages; "
                "delete the folder and run `researchdesk ingest` again"
            )
        return store

    @classmethod
    def load(cls, index_dir: Path, corpus: str) -> CorpusStore:
        """Open an existing store for querying; the embedder recorded in it is authoritative."""
        meta_path = index_dir / corpus / "meta.json"
        if not meta_path.exists():
            raise IndexNotBuiltError(f"no {corpus} index under {index_dir}; run `researchdesk ingest` first")
        meta = json.loads(meta_path.read_text())
        return cls.open(index_dir, corpus, int(meta["dim"]), str(meta["embedder"]))

    def save(self) -> None:
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        faiss.write_index(self.index, str(tmp / "index.faiss"))
        self.table.to_parquet(tmp / "passages.parquet", engine="pyarrow", index=False)
        meta = {
            "corpus": self.corpus,
            "embedder": self.embedder,
            "dim": self.dim,
            "count": len(self.table),
            "docs": self.docs,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)

    # ---- updates -----------------------------------------------------------------------------
    def plan(self, docs: list[Document]) -> tuple[list[Document], list[str]]:
        """Split documents into (new or changed, unchanged doc ids)."""
        todo, same = [], []
        for doc in docs:
            (same if self.docs.get(doc.doc_id) == doc.content_digest else todo).append(doc)
        return todo, [d.doc_id for d in same]

    def upsert(self, doc: Document, passages: list[Passage], vectors: np.ndarray) -> UpsertStats:
        """Replace everything stored for `doc` with these passages (vectors row-aligned)."""
        assert vectors.shape == (len(passages), self.dim), (vectors.shape, len(passages), self.dim)
        stats = UpsertStats()
        if doc.doc_id in self.docs:
            stats.docs_replaced = 1
            stats.passages_removed = self._remove_doc(doc.doc_id)
        else:
            stats.docs_added = 1
        if passages:
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            rows = pd.DataFrame([p.to_row() for p in passages], columns=PASSAGE_COLUMNS)
            self.table = rows if self.table.empty else pd.concat([self.table, rows], ignore_index=True)
        self.docs[doc.doc_id] = doc.content_digest
        stats.passages_added = len(passages)
        return stats

    def _remove_doc(self, doc_id: str) -> int:
        keep = (self.table["doc_id"] != doc_id).to_numpy()
        removed = int((~keep).sum())
        if removed:
            vectors = self.index.reconstruct_n(0, self.index.ntotal)[keep]
            self.index = faiss.IndexFlatIP(self.dim)
            self.index.add(vectors)
            self.table = self.table[keep].reset_index(drop=True)
        return removed

    # ---- queries -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (row, cosine) for one query vector, restricted to rows where `mask` is True."""
        if len(self.table) == 0:
            return []
        params = None
        if mask is not None:
            ids = np.flatnonzero(mask).astype(np.int64)
            if ids.size == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids))
            k = min(k, ids.size)
        scores, rows = self.index.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def passage(self, row: int) -> Passage:
        values = self.table.iloc[row].to_dict()
        values["ordinal"] = int(values["ordinal"])
        values["page"] = int(values["page"])
        return Passage(**values)
