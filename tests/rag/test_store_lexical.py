"""Row-aligned BM25 terms in the corpus store (rag/store.py), and the embedding cache (CachedEncoder).

The invariant under test: row i of `store.terms` is always the terms of row i of `store.table`,
through every update, save and load; `lexical_scores` therefore scores the passage at that row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rag.embedding import CachedEncoder
from rag.index_factory import IndexPolicy
from rag.lexical import joined_terms
from rag.store import PASSAGE_COLUMNS, TERMS_COLUMN, CorpusStore
from rag.types import Document, Passage, Section
from tests.fakes import HashEmbedder

EMB = HashEmbedder()


def _doc(doc_id: str, ticker: str, texts: list[str], digest: str = "v1") -> tuple[Document, list[Passage]]:
    """One document with one passage per text; passage i lies on page i."""
    common = dict(corpus="filings", ticker=ticker, source="sec", form="10-K", date="2024-02-01", url="u")
    sections = [Section(str(i), f"Section {i}", t, page=i) for i, t in enumerate(texts)]
    doc = Document(doc_id=doc_id, title=f"{ticker} 10-K", sections=sections, content_digest=digest, **common)
    passages = [
        Passage(
            f"{doc_id}#{i}-{digest}",
            doc_id,
            section=s.title,
            title=doc.title,
            text=s.text,
            ordinal=i,
            page=i,
            **common,
        )
        for i, s in enumerate(sections)
    ]
    return doc, passages


def _upsert(store: CorpusStore, doc_id: str, ticker: str, texts: list[str], digest: str = "v1"):
    doc, passages = _doc(doc_id, ticker, texts, digest)
    return store.upsert(doc, passages, EMB.encode([p.text for p in passages]))


def _assert_aligned(store: CorpusStore) -> None:
    assert len(store.terms) == len(store.table) == store.index.ntotal == len(store.ids)
    assert store.terms == joined_terms(store.table["text"].tolist())


def _row_of(store: CorpusStore, word: str) -> int:
    rows = [i for i, t in enumerate(store.table["text"]) if word in t]
    assert len(rows) == 1, (word, rows)
    return rows[0]


def _best(store: CorpusStore, query: str, mask=None) -> int:
    s = store.lexical_scores(query, mask)
    assert s.max() > 0, query
    return int(s.argmax())


APPLE = [
    "Apple depends on Foxconn for final assembly of the iPhone.",
    "Net sales of Services grew on App Store and iCloud subscriptions.",
]
NVIDIA = [
    "Nvidia depends on TSMC for wafer supply and CoWoS packaging.",
    "Data Center revenue grew on Hopper demand from hyperscalers.",
    "Gaming revenue declined as channel inventory normalized.",
]
MSFT = ["Azure consumption grew across every geography this year."]


@pytest.fixture
def store(tmp_path: Path) -> CorpusStore:
    s = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    _upsert(s, "filings:aapl", "AAPL", APPLE)
    _upsert(s, "filings:nvda", "NVDA", NVIDIA)
    return s


def test_new_documents_get_row_aligned_terms(store):
    _assert_aligned(store)
    assert len(store) == 5
    for word in ["Foxconn", "iCloud", "TSMC", "Hopper", "Gaming"]:
        assert _best(store, word) == _row_of(store, word)


def test_a_word_in_no_passage_scores_zero(store):
    s = store.lexical_scores("Upjohn")
    assert s.shape == (len(store),) and not s.any()


def test_lexical_scores_honour_a_ticker_mask(store):
    nvda = (store.table["ticker"] == "NVDA").to_numpy()
    s = store.lexical_scores("depends on Foxconn TSMC", nvda)
    assert (s[~nvda] == 0).all()
    assert int(s.argmax()) == _row_of(store, "TSMC")
    unmasked = store.lexical_scores("depends on Foxconn TSMC")
    assert unmasked[_row_of(store, "Foxconn")] > 0  # the AAPL row did match; only the mask hid it
    np.testing.assert_array_equal(s[nvda], unmasked[nvda])


def test_replacing_a_document_drops_its_old_terms(store):
    old_row = _row_of(store, "Foxconn")
    assert store.lexical_scores("Foxconn")[old_row] > 0  # built before the change: must not go stale
    stats = _upsert(store, "filings:aapl", "AAPL", ["Apple faces tariff risk on imports from China."], "v2")
    assert (stats.docs_replaced, stats.passages_removed, stats.passages_added) == (1, 2, 1)
    _assert_aligned(store)
    assert not store.lexical_scores("Foxconn iCloud").any()  # words only in the old version
    assert _best(store, "tariff") == _row_of(store, "tariff")
    for word in ["TSMC", "Hopper", "Gaming"]:  # the other document's rows moved up; terms moved with them
        assert _best(store, word) == _row_of(store, word)


def test_replacing_a_document_with_no_passages_removes_it(store):
    _upsert(store, "filings:nvda", "NVDA", [], "v2")
    _assert_aligned(store)
    assert len(store) == 2 and not store.lexical_scores("TSMC Hopper Gaming").any()
    assert _best(store, "iCloud") == _row_of(store, "iCloud")


def test_removing_a_document_in_the_middle_keeps_later_rows_aligned(store):
    _upsert(store, "filings:msft", "MSFT", MSFT)
    _upsert(store, "filings:nvda", "NVDA", [], "v2")  # rows 2-4 go; MSFT's row moves from 5 to 2
    _assert_aligned(store)
    assert _row_of(store, "Azure") == 2 and _best(store, "Azure") == 2


def test_a_new_document_is_searchable_after_an_earlier_lexical_query(store):
    assert not store.lexical_scores("Azure").any()
    _upsert(store, "filings:msft", "MSFT", MSFT)
    assert _best(store, "Azure") == _row_of(store, "Azure")


def test_idf_is_corpus_wide_and_updates_with_the_corpus(store):
    row = _row_of(store, "Hopper")
    before = store.lexical_scores("revenue")[row]
    _upsert(store, "filings:msft", "MSFT", ["Revenue revenue revenue.", "Revenue grew.", "More revenue."])
    after = store.lexical_scores("revenue")[row]
    assert after < before  # "revenue" is now in more rows: each match is worth less


def test_save_load_round_trip_keeps_terms_and_scores(store, tmp_path):
    before = store.lexical_scores("Foxconn TSMC revenue grew")
    store.save()
    table = pd.read_parquet(tmp_path / "filings" / "passages.parquet", engine="pyarrow")
    assert list(table[TERMS_COLUMN]) == store.terms
    again = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    assert TERMS_COLUMN not in again.table.columns and list(again.table.columns) == PASSAGE_COLUMNS
    assert again.terms == store.terms
    _assert_aligned(again)
    np.testing.assert_allclose(again.lexical_scores("Foxconn TSMC revenue grew"), before, rtol=1e-6)


def test_load_uses_the_stored_terms_not_the_text(store, tmp_path):
    """Terms are read back from the column, not recomputed: a tokenizer change is not silently mixed in."""
    store.save()
    path = tmp_path / "filings" / "passages.parquet"
    table = pd.read_parquet(path, engine="pyarrow")
    table[TERMS_COLUMN] = ["sentinelterm"] + list(table[TERMS_COLUMN][1:])
    table.to_parquet(path, engine="pyarrow", index=False)
    again = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    assert again.terms[0] == "sentinelterm" and _best(again, "sentinelterm") == 0


def test_index_saved_without_terms_computes_them_on_load_and_saves_them_next_time(store, tmp_path):
    store.save()
    path = tmp_path / "filings" / "passages.parquet"
    pd.read_parquet(path, engine="pyarrow").drop(columns=[TERMS_COLUMN]).to_parquet(path, index=False)
    again = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    _assert_aligned(again)
    assert again.terms == store.terms
    assert _best(again, "Hopper") == _row_of(again, "Hopper")
    _upsert(again, "filings:msft", "MSFT", MSFT)  # an update after such a load stays aligned ...
    _assert_aligned(again)
    again.save()  # ... and the next save writes the column
    assert TERMS_COLUMN in pd.read_parquet(path, engine="pyarrow").columns


def test_terms_computed_on_load_are_saved_by_an_ingest_with_nothing_changed(tmp_path):
    """An index built before BM25: the next ingest writes the terms even if no file changed, so
    later processes do not tokenize the whole corpus again on every load."""
    from rag.ingest import ingest
    from tests.flows.conftest import aapl_data_dir

    data, index = aapl_data_dir(tmp_path), tmp_path / "index"
    ingest(data, index, EMB, sources=["news"])
    path = index / "news" / "passages.parquet"
    pd.read_parquet(path, engine="pyarrow").drop(columns=[TERMS_COLUMN]).to_parquet(path, index=False)
    assert CorpusStore.open(index, "news", EMB.dim, EMB.signature).unsaved
    summary = ingest(data, index, EMB, sources=["news"])
    assert summary.files_skipped_unchanged == summary.files_seen  # nothing changed ...
    assert TERMS_COLUMN in pd.read_parquet(path, engine="pyarrow").columns  # ... and the terms are saved
    assert not CorpusStore.open(index, "news", EMB.dim, EMB.signature).unsaved


def test_legacy_store_without_index_meta_gets_terms(tmp_path):
    import faiss

    folder = tmp_path / "filings"
    folder.mkdir()
    doc, passages = _doc("filings:nvda", "NVDA", NVIDIA)
    flat = faiss.IndexFlatIP(EMB.dim)
    flat.add(EMB.encode(NVIDIA))
    faiss.write_index(flat, str(folder / "index.faiss"))
    pd.DataFrame([p.to_row() for p in passages], columns=PASSAGE_COLUMNS).to_parquet(
        folder / "passages.parquet", index=False
    )
    meta = {
        "corpus": "filings",
        "embedder": EMB.signature,
        "dim": EMB.dim,
        "count": 3,
        "docs": {doc.doc_id: "v1"},
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    store = CorpusStore.load(tmp_path, "filings")
    _assert_aligned(store)
    assert _best(store, "Hopper") == 1


def test_round_trip_after_replace_and_remove(store, tmp_path):
    _upsert(store, "filings:msft", "MSFT", MSFT)
    _upsert(store, "filings:aapl", "AAPL", ["Apple faces tariff risk on imports from China."], "v2")
    _upsert(store, "filings:nvda", "NVDA", [], "v2")
    store.save()
    again = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    _assert_aligned(again)
    assert [again.passage(_best(again, w)).doc_id for w in ("Azure", "tariff")] == [
        "filings:msft",
        "filings:aapl",
    ]
    assert not again.lexical_scores("Foxconn TSMC Hopper").any()


def test_empty_store(tmp_path):
    store = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    assert store.lexical_scores("revenue").shape == (0,)
    store.save()
    again = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature)
    assert again.terms == [] and again.lexical_scores("revenue").shape == (0,)


def test_terms_stay_aligned_when_the_index_type_moves_up(tmp_path):
    policy = IndexPolicy(flat_below=20)
    store = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature, policy)
    words = [f"uniqueword{chr(97 + i)} revenue grew on demand number {i}" for i in range(24)]
    for i in range(0, 24, 4):
        _upsert(store, f"filings:d{i}", "ZZZ", words[i : i + 4])
    store.save()  # 24 >= flat_below: rebuilt as IVF
    assert store.spec.kind == "ivf"
    again = CorpusStore.open(tmp_path, "filings", EMB.dim, EMB.signature, policy)
    _assert_aligned(again)
    assert [_best(again, f"uniqueword{chr(97 + i)}") for i in (0, 13, 23)] == [0, 13, 23]


# ---- CachedEncoder -----------------------------------------------------------------------------


class Counting:
    """HashEmbedder that records every batch it is asked to encode."""

    def __init__(self, name: str = "hash-bow"):
        self.inner = HashEmbedder()
        self.inner.name = name
        self.dim = self.inner.dim
        self.calls: list[list[str]] = []
        self.kwargs: list[dict] = []

    @property
    def signature(self) -> str:
        return self.inner.signature

    def encode(self, texts, **kwargs):
        self.calls.append(list(texts))
        self.kwargs.append(kwargs)
        return self.inner.encode(texts)


TEXTS = ["net sales grew", "gross margin fell", "capital expenditures rose"]


def test_cache_hit_calls_the_embedder_zero_times(tmp_path):
    inner = Counting()
    enc = CachedEncoder(inner, tmp_path)
    first = enc.encode(TEXTS)
    assert inner.calls == [TEXTS]
    second = enc.encode(TEXTS)
    assert inner.calls == [TEXTS]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, HashEmbedder().encode(TEXTS))
    assert first.dtype == np.float32 and first.shape == (3, enc.dim)


def test_only_new_texts_are_embedded(tmp_path):
    inner = Counting()
    enc = CachedEncoder(inner, tmp_path)
    enc.encode(TEXTS[:2])
    got = enc.encode(["an entirely new sentence", *TEXTS[:2]])
    assert inner.calls == [TEXTS[:2], ["an entirely new sentence"]]
    np.testing.assert_array_equal(got, HashEmbedder().encode(["an entirely new sentence", *TEXTS[:2]]))


def test_a_new_encoder_on_the_same_folder_reuses_the_file(tmp_path):
    CachedEncoder(Counting(), tmp_path).encode(TEXTS)
    files = list(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".npz"]  # one file, no temporary left behind
    inner = Counting()
    got = CachedEncoder(inner, tmp_path).encode(list(reversed(TEXTS)))
    assert inner.calls == []
    np.testing.assert_array_equal(got, HashEmbedder().encode(list(reversed(TEXTS))))


def test_row_order_is_kept_and_duplicates_are_embedded_once(tmp_path):
    inner = Counting()
    enc = CachedEncoder(inner, tmp_path)
    texts = [TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[0]]
    got = enc.encode(texts)
    assert inner.calls == [[TEXTS[1], TEXTS[0], TEXTS[2]]]  # first-seen order, each once
    np.testing.assert_array_equal(got, HashEmbedder().encode(texts))
    assert (got[0] == got[2]).all() and not (got[0] == got[1]).all()


def test_empty_input_embeds_nothing_and_writes_nothing(tmp_path):
    inner = Counting()
    enc = CachedEncoder(inner, tmp_path / "cache")
    got = enc.encode([])
    assert got.shape == (0, inner.dim) and got.dtype == np.float32
    assert inner.calls == [] and not (tmp_path / "cache").exists()


def test_a_different_signature_uses_a_different_file(tmp_path):
    a, b = Counting("model-a"), Counting("model-b")
    enc_a, enc_b = CachedEncoder(a, tmp_path), CachedEncoder(b, tmp_path)
    assert enc_a.path != enc_b.path and enc_a.signature != enc_b.signature
    enc_a.encode(TEXTS)
    enc_b.encode(TEXTS)
    assert b.calls == [TEXTS]  # b never reads a's vectors
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([enc_a.path.name, enc_b.path.name])
    again = Counting("model-a")
    CachedEncoder(again, tmp_path).encode(TEXTS)
    assert again.calls == []


def test_encode_options_reach_the_embedder(tmp_path):
    inner = Counting()
    CachedEncoder(inner, tmp_path).encode(TEXTS, batch_size=7)
    assert inner.kwargs == [{"batch_size": 7}]


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"this is not an npz file at all " * 8)


def _corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def _corrupt_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_garbage,
        pytest.param(_corrupt_empty),
        pytest.param(_corrupt_truncated),
    ],
)
def test_a_corrupt_cache_is_ignored_and_rebuilt(tmp_path, corrupt):
    CachedEncoder(Counting(), tmp_path).encode(TEXTS)
    path = next(tmp_path.iterdir())
    corrupt(path)
    inner = Counting()
    enc = CachedEncoder(inner, tmp_path)
    got = enc.encode(TEXTS)
    assert inner.calls == [TEXTS]  # started over
    np.testing.assert_array_equal(got, HashEmbedder().encode(TEXTS))
    fresh = Counting()
    CachedEncoder(fresh, tmp_path).encode(TEXTS)  # and the rewritten file is good again
    assert fresh.calls == []
