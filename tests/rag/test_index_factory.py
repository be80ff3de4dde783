"""Index type by size, IVF recall and filters, remove/re-add, save/reopen, legacy flat stores.

Vectors: 20k unit vectors around 200 random directions (clustered like real embeddings, unlike
uniform noise) at 64-d, so IVF trains in about a second. The size threshold is lowered to 5k so the
store picks IVF at test scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest

from rag import index_factory as F
from rag.index_factory import IndexPolicy, IndexSpec
from rag.store import PASSAGE_COLUMNS, CorpusStore
from rag.types import Document, Passage, Section

DIM = 64
POLICY = IndexPolicy(flat_below=5_000)


def _clustered(n: int, seed: int, centers: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mu = np.random.default_rng(99).standard_normal((centers, DIM)).astype(np.float32)
    x = mu[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return _clustered(20_000, seed=1)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return _clustered(200, seed=2)  # held out: not in the index


def _exact(base: np.ndarray, queries: np.ndarray, ids: np.ndarray, k: int = 10) -> np.ndarray:
    _, rows = faiss.knn(queries, base, k, faiss.METRIC_INNER_PRODUCT)
    return np.where(rows >= 0, ids[rows], -1)


@pytest.mark.parametrize(
    ("n", "kind", "codec", "nlist"),
    [
        (0, "flat", "Flat", 0),
        (3_811, "flat", "Flat", 0),  # the shipped sample
        (99_999, "flat", "Flat", 0),
        (100_000, "ivf", "Flat", 1024),
        (1_000_000, "ivf", "Flat", 4096),
        (2_000_000, "ivf", "Flat", 4096),  # 1,544 B/vector * 2M = 3.1 GB <= 3.6 GB budget
        (5_000_000, "ivf", "SQ8", 8192),
        (10_000_000, "ivf", "SQ6", 16384),
        (21_000_000, "ivf", "PQ96", 16384),  # OpenChatKit's Wikipedia index size
    ],
)
def test_index_type_is_a_function_of_size(n, kind, codec, nlist):
    spec = F.choose(n, 384)
    assert (spec.kind, spec.codec, spec.nlist) == (kind, codec, nlist)
    if kind == "ivf":
        assert F.index_bytes(spec, n, 384) <= IndexPolicy().ram_budget


@pytest.mark.parametrize(("n", "nlist"), [(5_000, 128), (20_000, 512), (100_000, 1024), (10**7, 16384)])
def test_nlist_is_near_4_sqrt_n_with_enough_training_points(n, nlist):
    assert F.nlist_for(n) == nlist
    assert F.nlist_for(n) * 39 <= n


def test_low_threshold_picks_ivf_and_recall_vs_flat(base, queries):
    ids = np.arange(len(base), dtype=np.int64) * 3 + 5  # non-sequential ids, like a store after removals
    spec = F.choose(len(base), DIM, POLICY)
    assert (spec.kind, spec.codec, spec.nlist) == ("ivf", "Flat", 512)
    index, tuned = F.build(base, ids, spec, POLICY)
    assert tuned.tuned_recall >= POLICY.target_recall and 1 <= tuned.nprobe < tuned.nlist
    _, found = F.search(index, tuned, queries, 10)
    assert F.recall_at_k(found, _exact(base, queries, ids)) >= 0.9
    # more probes can only help, all probes == exact for IVF-Flat
    _, every = F.search(index, tuned, queries, 10, nprobe=tuned.nlist)
    assert F.recall_at_k(every, _exact(base, queries, ids)) == 1.0


@pytest.fixture(scope="module")
def built(base):
    """One index per codec for the whole module (IVF128; "Flat-exact" is the flat baseline)."""
    cache: dict[str, tuple] = {}
    ids = np.arange(len(base), dtype=np.int64)

    def get(codec: str):
        if codec not in cache:
            spec = IndexSpec() if codec == "Flat-exact" else IndexSpec("ivf", codec, nlist=128, nprobe=4)
            cache[codec] = F.build(base, ids, spec, POLICY)
        return cache[codec]

    return get


@pytest.mark.parametrize("codec", ["Flat", "SQ8", "SQ6", "SQ4", "PQ16"])
@pytest.mark.parametrize("n_allowed", [3, 40, 2_000, 12_000])  # 12k -> bitmap selector
def test_filters_work_with_every_index_type(built, codec, n_allowed, queries):
    ids = np.arange(20_000, dtype=np.int64)
    flat, flat_spec = built("Flat-exact")
    index, spec = built(codec)
    rng = np.random.default_rng(n_allowed)
    allowed = np.sort(rng.choice(ids, n_allowed, replace=False))
    k = 10
    _, got = F.search(index, spec, queries[:50], k, allowed=allowed)
    _, want = F.search(flat, flat_spec, queries[:50], k, allowed=allowed)
    assert np.isin(got[got >= 0], allowed).all() and np.isin(want[want >= 0], allowed).all()
    # selective filters still return k hits (nprobe widens until the allowed vectors are found)
    assert ((got >= 0).sum(axis=1) == min(k, n_allowed)).all()
    floor = {"Flat": 0.9, "SQ8": 0.9, "SQ6": 0.85, "SQ4": 0.5, "PQ16": 0.3}[codec]
    assert F.recall_at_k(got, want, k) >= floor
    if n_allowed <= k:  # every allowed vector is returned
        assert (np.sort(got[:, :n_allowed], axis=1) == allowed).all() and (got[:, n_allowed:] == -1).all()


def _doc(n: int, digest: str = "v1") -> Document:
    return Document(
        f"filings:doc-{n}",
        "filings",
        ["AAPL", "NVDA", "TSLA", "AMZN"][n % 4],
        "sec",
        "10-K",
        f"202{n % 5}-03-01",
        f"doc {n}",
        "u",
        [Section("1A", "Item 1A. Risk Factors", "x")],
        content_digest=digest,
    )


def _passages(doc: Document, count: int) -> list[Passage]:
    return [
        Passage(f"{doc.doc_id}#{i}-{doc.content_digest}", doc.doc_id, "filings", doc.ticker, "sec", "10-K",
                doc.date, "Item 1A. Risk Factors", doc.title, "u", f"text {i} of {doc.doc_id}", i)
        for i in range(count)
    ]  # fmt: skip


def _filled_store(tmp_path: Path, base: np.ndarray, docs: int = 100) -> CorpusStore:
    store = CorpusStore.open(tmp_path, "filings", DIM, "test-emb", POLICY)
    per_doc = len(base) // docs
    for n in range(docs):
        doc = _doc(n)
        store.upsert(doc, _passages(doc, per_doc), base[n * per_doc : (n + 1) * per_doc])
    return store


def test_store_moves_to_ivf_at_save_and_reopens(tmp_path, base, queries):
    store = _filled_store(tmp_path, base)
    assert store.spec.kind == "flat"
    flat_hits = [store.search(q, 5) for q in queries[:20]]
    store.save()
    meta = json.loads((tmp_path / "filings" / "meta.json").read_text())
    assert meta["index"]["kind"] == "ivf" and meta["index"]["nlist"] == 512
    assert meta["index"]["tuned_recall"] >= 0.95 and meta["next_id"] == 20_000
    reopened = CorpusStore.open(tmp_path, "filings", DIM, "test-emb", POLICY)
    assert reopened.spec == store.spec and reopened.index.ntotal == len(reopened) == 20_000
    assert faiss.extract_index_ivf(reopened.index).nlist == 512
    assert list(reopened.table.columns) == PASSAGE_COLUMNS  # the id column stays in the file
    ivf_hits = [reopened.search(q, 5) for q in queries[:20]]
    overlap = np.mean(
        [len({r for r, _ in a} & {r for r, _ in b}) / 5 for a, b in zip(flat_hits, ivf_hits, strict=True)]
    )
    assert overlap >= 0.9
    # rows map back to the right passages: each passage's own vector finds itself first
    for row in (0, 7_777, 19_999):
        assert reopened.search(base[row], 1)[0][0] == row


def test_ivf_store_replaces_changed_document_and_filters(tmp_path, base, queries):
    store = _filled_store(tmp_path, base)
    store.save()
    store = CorpusStore.open(tmp_path, "filings", DIM, "test-emb", POLICY)
    assert store.spec.kind == "ivf"
    changed = _doc(3, digest="v2")
    new_vectors = _clustered(50, seed=7)
    stats = store.upsert(changed, _passages(changed, 50), new_vectors)
    assert (stats.docs_replaced, stats.passages_removed, stats.passages_added) == (1, 200, 50)
    assert store.index.ntotal == len(store) == 20_000 - 200 + 50
    # old vectors of doc 3 are gone from the index, the new ones are found under the new passages
    old_row_vec = base[3 * 200 + 5]
    assert all(store.passage(r).doc_id != "filings:doc-3" or "v2" in store.passage(r).passage_id
               for r, _ in store.search(old_row_vec, 10))  # fmt: skip
    row, score = store.search(new_vectors[17], 1)[0]
    assert store.passage(row).passage_id == "filings:doc-3#17-v2" and score > 0.999
    # ticker + date filter, as the retriever builds it
    mask = ((store.table["ticker"] == "NVDA") & (store.table["date"] <= "2022-12-31")).to_numpy()
    for q in queries[:20]:
        hits = store.search(q, 8, mask)
        assert len(hits) == 8 and all(mask[r] for r, _ in hits)
    store.save()
    again = CorpusStore.open(tmp_path, "filings", DIM, "test-emb", POLICY)
    assert again.docs["filings:doc-3"] == "v2" and len(again) == 19_850
    assert again.passage(again.search(new_vectors[3], 1)[0][0]).passage_id == "filings:doc-3#3-v2"


def test_legacy_flat_store_still_opens_and_updates(tmp_path, base):
    """An index written before index types existed: IndexFlatIP, row number == id, no index meta."""
    folder = tmp_path / "news"
    folder.mkdir()
    vectors = base[:30]
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    faiss.write_index(flat, str(folder / "index.faiss"))
    docs = [_doc(n) for n in range(3)]
    rows = [p.to_row() for d in docs for p in _passages(d, 10)]
    pd.DataFrame(rows, columns=PASSAGE_COLUMNS).to_parquet(folder / "passages.parquet", index=False)
    meta = {
        "corpus": "news",
        "embedder": "test-emb",
        "dim": DIM,
        "count": 30,
        "docs": {d.doc_id: "v1" for d in docs},
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    store = CorpusStore.load(tmp_path, "news")
    assert store.spec.kind == "flat" and len(store) == 30 and list(store.ids) == list(range(30))
    assert store.search(vectors[12], 1)[0][0] == 12
    mask = (store.table["doc_id"] == docs[2].doc_id).to_numpy()
    assert {r for r, _ in store.search(vectors[0], 30, mask)} == set(range(20, 30))
    changed = _doc(1, digest="v2")
    store.upsert(changed, _passages(changed, 4), base[100:104])
    store.save()
    again = CorpusStore.load(tmp_path, "news")
    assert len(again) == 24 and again.next_id == 34 and again.spec.kind == "flat"
    assert again.passage(again.search(base[102], 1)[0][0]).passage_id == "filings:doc-1#2-v2"
