"""One Faiss index + parquet passage table per corpus, updated incrementally and swapped atomically.

Layout: `<index_dir>/<corpus>/{index.faiss, passages.parquet, meta.json}`. Row i of the parquet
table carries the Faiss id of its vector (column `faiss_id`, increasing with the row, stable across
updates, so removing a document never renumbers the index). `meta.json` maps each document id to
the content digest it was embedded from, so re-ingesting an unchanged document does nothing and a
changed one replaces its passages; it also records the index type and its tuned parameters.

The index type follows the corpus size (rag/index_factory.py): exact flat search while small (the
shipped sample), IVF with a codec that fits the RAM budget when large. The store only moves up a
tier, at save time, rebuilding from the vectors it holds (exact in flat and IVF-Flat, decoded from
scalar-quantized codes above ~2M; `ingest --rebuild` re-embeds instead). Vectors added to an IVF
index later use the lists it was trained with; nothing is retrained until the next tier.
Filters (ticker, date, section) are applied inside Faiss with an ID selector, not by over-fetching,
for every index type.

Writes go to a temporary sibling directory that replaces the live one with two renames (live ->
`.old`, `.tmp` -> live). A crash before the first rename leaves the live index untouched; a crash
between the two leaves only `.old`, which `open` moves back.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from rag import index_factory, lexical
from rag.atomic import _fsync_dir
from rag.errors import IndexNotBuiltError
from rag.index_factory import IndexPolicy, IndexSpec
from rag.types import Document, Passage

PASSAGE_COLUMNS = list(Passage.__dataclass_fields__)
ID_COLUMN = "faiss_id"  # stored in the parquet file only; `table` keeps the Passage columns
TERMS_COLUMN = "lexical_terms"  # BM25 terms per row (rag/lexical.py): an update tokenizes only new rows


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
    def __init__(
        self, directory: Path, corpus: str, dim: int, embedder: str, policy: IndexPolicy | None = None
    ):
        self.directory = directory
        self.corpus = corpus
        self.dim = dim
        self.embedder = embedder
        self.policy = policy or IndexPolicy()
        self.spec = IndexSpec()
        self.index = index_factory.create(self.spec, dim)
        self.table = pd.DataFrame(columns=PASSAGE_COLUMNS)
        self.ids = np.zeros(0, dtype=np.int64)  # Faiss id of each table row, strictly increasing
        self.next_id = 0
        self.docs: dict[str, str] = {}  # doc_id -> content digest
        self.terms: list[str] = []  # row-aligned BM25 terms, space-joined
        self.unsaved = False  # derived state computed on load that the files do not hold yet
        self._lexical: lexical.LexicalIndex | None = None  # built from `terms` on first lexical query
        self._gpu: Any = None  # GPU copy for unfiltered search (faiss-gpu only), made lazily
        self._gpu_checked = False

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, index_dir: Path, corpus: str, dim: int, embedder: str, policy: IndexPolicy | None = None
    ) -> CorpusStore:
        """Load the corpus store, or an empty one if none was built (or it used another embedder)."""
        store = cls(index_dir / corpus, corpus, dim, embedder, policy)
        _recover_interrupted_swap(store.directory)
        meta_path = store.directory / "meta.json"
        if not meta_path.exists():
            return store
        meta = json.loads(meta_path.read_text())
        if meta.get("embedder") != embedder or meta.get("dim") != dim:
            # built by another embedder: everything is re-embedded on the next ingest, and the store
            # is saved even if this corpus has no documents left, so queries do not find the old one
            store.unsaved = True
            return store
        index = faiss.read_index(str(store.directory / "index.faiss"))
        table = pd.read_parquet(store.directory / "passages.parquet", engine="pyarrow")
        if index.ntotal != len(table):
            raise IndexNotBuiltError(
                f"{store.directory}: index has {index.ntotal} vectors but {len(table)} passages; "
                "delete the folder and run `researchdesk ingest` again"
            )
        if "index" in meta:
            store.spec = IndexSpec.from_json(meta["index"])
            store.ids = table.pop(ID_COLUMN).to_numpy(dtype=np.int64)
            store.terms = list(table.pop(TERMS_COLUMN)) if TERMS_COLUMN in table.columns else []
            store.next_id = int(meta["next_id"])
            store.index = index
        else:  # written before index types existed: a plain IndexFlatIP whose ids are row numbers
            store.ids = np.arange(len(table), dtype=np.int64)
            store.next_id = len(table)
            store.index = index_factory.create(store.spec, dim)
            index_factory.add(store.index, index.reconstruct_n(0, index.ntotal), store.ids)
        store.table = _with_current_columns(table)
        if len(store.terms) != len(store.table):  # built before BM25 existed: tokenize once, saved next time
            store.terms = lexical.joined_terms(store.table["text"].tolist())
            store.unsaved = True  # ingest saves it even when no document changed
        store.docs = dict(meta["docs"])
        return store

    @classmethod
    def load(cls, index_dir: Path, corpus: str) -> CorpusStore:
        """Open an existing store for querying; the embedder recorded in it is authoritative."""
        _recover_interrupted_swap(index_dir / corpus)
        meta_path = index_dir / corpus / "meta.json"
        if not meta_path.exists():
            raise IndexNotBuiltError(f"no {corpus} index under {index_dir}; run `researchdesk ingest` first")
        meta = json.loads(meta_path.read_text())
        return cls.open(index_dir, corpus, int(meta["dim"]), str(meta["embedder"]))

    def save(self) -> None:
        self.unsaved = False
        self._fit_index_type()
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        faiss.write_index(self.index, str(tmp / "index.faiss"))
        table = self.table.assign(**{ID_COLUMN: self.ids, TERMS_COLUMN: self.terms})
        table.to_parquet(tmp / "passages.parquet", engine="pyarrow", index=False)
        meta = {
            "corpus": self.corpus,
            "embedder": self.embedder,
            "dim": self.dim,
            "count": len(self.table),
            "index": self.spec.to_json(),
            "next_id": self.next_id,
            "docs": self.docs,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        self._swap(tmp)

    def _swap(self, tmp: Path) -> None:
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        _fsync_dir(self.directory.parent)  # the renames themselves must survive a power loss
        shutil.rmtree(old, ignore_errors=True)

    def _fit_index_type(self) -> None:
        """Move up to the index type the current size calls for (never down: no flapping at a boundary)."""
        want = index_factory.choose(len(self), self.dim, self.policy)
        if index_factory.tier(want) <= index_factory.tier(self.spec):
            return
        vectors = index_factory.reconstruct(self.index, self.spec, self.ids)
        self.index, self.spec = index_factory.build(vectors, self.ids, want, self.policy)
        self._changed()

    # ---- updates -----------------------------------------------------------------------------
    def plan(self, docs: list[Document]) -> tuple[list[Document], list[str]]:
        """Split documents into (new or changed, unchanged doc ids)."""
        todo: list[Document] = []
        same: list[Document] = []
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
            new_ids = np.arange(self.next_id, self.next_id + len(passages), dtype=np.int64)
            index_factory.add(self.index, vectors, new_ids)
            self.next_id += len(passages)
            self.ids = np.concatenate([self.ids, new_ids])
            rows = pd.DataFrame([p.to_row() for p in passages], columns=PASSAGE_COLUMNS)
            self.table = rows if self.table.empty else pd.concat([self.table, rows], ignore_index=True)
            self.terms.extend(lexical.joined_terms([p.text for p in passages]))
            self._changed()
        self.docs[doc.doc_id] = doc.content_digest
        stats.passages_added = len(passages)
        return stats

    def _remove_doc(self, doc_id: str) -> int:
        keep = (self.table["doc_id"] != doc_id).to_numpy()
        gone = self.ids[~keep]
        if gone.size:
            self.index.remove_ids(gone)  # flat (IDMap2) and IVF both remove in place
            self.table = self.table[keep].reset_index(drop=True)
            self.ids = self.ids[keep]
            self.terms = [t for t, k in zip(self.terms, keep, strict=True) if k]
            self._changed()
        return int(gone.size)

    def _changed(self) -> None:
        self._gpu, self._gpu_checked = None, False  # the GPU copy is stale
        self._lexical = None  # BM25 statistics (IDF, average length) are corpus-wide: rebuild on next query

    # ---- queries -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (row, cosine) for one query vector, restricted to rows where `mask` is True."""
        if len(self.table) == 0:
            return []
        query = query.reshape(1, -1)
        if mask is None:
            if not self._gpu_checked:
                self._gpu, self._gpu_checked = index_factory.gpu_clone(self.index, self.spec), True
            if self._gpu is not None:  # nprobe was set on the GPU copy when it was made
                scores, ids = self._gpu.search(np.ascontiguousarray(query, dtype=np.float32), k)
            else:
                scores, ids = index_factory.search(self.index, self.spec, query, k)
        else:  # GPU Faiss takes no IDSelector: filtered queries always search the CPU index
            allowed = self.ids[np.asarray(mask, dtype=bool)]
            if allowed.size == 0:
                return []
            scores, ids = index_factory.search(self.index, self.spec, query, min(k, allowed.size), allowed)
        found = ids[0] >= 0
        rows = np.searchsorted(self.ids, ids[0][found])
        return [(int(r), float(s)) for r, s in zip(rows, scores[0][found], strict=True)]

    def lexical_scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 of every row for `query`, 0 outside `mask` (the same filter the dense search takes)."""
        if self._lexical is None:
            self._lexical = lexical.LexicalIndex(self.terms)
        return self._lexical.scores(query, mask)

    def passage(self, row: int) -> Passage:
        values = self.table.iloc[row].to_dict()
        values["ordinal"] = int(values["ordinal"])
        values["page"] = int(values["page"])
        return Passage(**values)


def _with_current_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A table written before a Passage field existed (e.g. `page`) gets that field's default, so an
    index built by an older release keeps answering queries instead of failing on its first hit."""
    fields = Passage.__dataclass_fields__
    missing = {name: fields[name].default for name in PASSAGE_COLUMNS if name not in table.columns}
    required = sorted(name for name, default in missing.items() if default is dataclasses.MISSING)
    if required:
        raise IndexNotBuiltError(
            f"passages table lacks {', '.join(required)}; "
            "delete the index folder and run `researchdesk ingest` again"
        )
    return table.assign(**missing)[PASSAGE_COLUMNS] if missing else table


def _recover_interrupted_swap(directory: Path) -> None:
    """A save that died between its two renames left only `<corpus>.old`: that is the last good index."""
    old = directory.with_name(directory.name + ".old")
    if not directory.exists() and (old / "meta.json").exists():
        old.rename(directory)
