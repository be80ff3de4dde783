"""Corpus store (incremental, atomic) and retrieval filters, on a tiny index; one real-embedder check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import chunk_document
from rag.errors import IndexNotBuiltError
from rag.ingest import ingest
from rag.retrieve import Retriever, SourceQuery
from rag.store import CorpusStore
from rag.types import Document, Section
from tests.fakes import HashEmbedder

DATA = Path(__file__).resolve().parents[2] / "data"


def _doc(
    ticker: str, text: str, section: str = "Item 1A. Risk Factors", date: str = "2024-11-01", n: int = 0
):
    return Document(
        f"filings:{ticker.lower()}-{n}",
        "filings",
        ticker,
        "sec",
        "10-K",
        date,
        f"{ticker} 10-K",
        "u",
        [Section("1A", section, text)],
        content_digest=str(hash(text)),
    )


def _store(tmp_path: Path, emb: HashEmbedder, docs: list[Document]) -> CorpusStore:
    store = CorpusStore.open(tmp_path, "filings", emb.dim, emb.signature)
    for doc in docs:
        passages = chunk_document(doc)
        store.upsert(doc, passages, emb.encode([p.text for p in passages]))
    store.save()
    return store


def test_upsert_is_incremental_and_replaces_changed_docs(tmp_path: Path):
    emb = HashEmbedder()
    a = _doc("AAPL", "Apple depends on suppliers in China for iPhone manufacturing and assembly work.")
    b = _doc("NVDA", "Nvidia depends on TSMC for GPU wafer supply and advanced packaging capacity.")
    store = _store(tmp_path, emb, [a, b])
    assert len(store) == 2
    again = CorpusStore.open(tmp_path, "filings", emb.dim, emb.signature)
    todo, same = again.plan([a, b])
    assert todo == [] and set(same) == {a.doc_id, b.doc_id}
    changed = replace(
        a,
        sections=[Section("1A", "Item 1A. Risk Factors", "Apple faces tariff risk on imports.")],
        content_digest="new",
    )
    todo, _ = again.plan([changed, b])
    assert todo == [changed]
    stats = again.upsert(
        changed, chunk_document(changed), emb.encode(["Apple faces tariff risk on imports."])
    )
    assert (stats.docs_replaced, stats.passages_removed, stats.passages_added) == (1, 1, 1)
    assert len(again) == 2 and again.index.ntotal == 2
    assert "tariff" in again.passage(int(np.flatnonzero(again.table["ticker"] == "AAPL")[0])).text


def test_failed_save_keeps_previous_index(tmp_path: Path, monkeypatch):
    emb = HashEmbedder()
    store = _store(tmp_path, emb, [_doc("AAPL", "Apple sells iPhones, Macs and services worldwide today.")])
    import rag.store

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(rag.store.faiss, "write_index", boom)
    more = _doc("NVDA", "Nvidia sells data center GPUs and networking to cloud providers.")
    store.upsert(more, chunk_document(more), emb.encode([chunk_document(more)[0].text]))
    with pytest.raises(OSError):
        store.save()
    reloaded = CorpusStore.load(tmp_path, "filings")
    assert len(reloaded) == 1 and reloaded.docs.keys() == {"filings:aapl-0"}


def test_retrieval_filters_ticker_section_and_date(tmp_path: Path):
    emb = HashEmbedder()
    _store(
        tmp_path,
        emb,
        [
            _doc("AAPL", "Apple supply chain risk: suppliers in China may be disrupted by tariffs.", n=1),
            _doc(
                "AAPL",
                "Apple legal proceedings: the Company is defending a patent lawsuit.",
                "Item 3. Legal",
                n=2,
            ),
            _doc("NVDA", "Nvidia supply chain risk: suppliers in Taiwan may be disrupted by tariffs.", n=3),
            _doc(
                "AAPL", "Apple supply chain risk after new tariffs announced in 2026.", date="2026-03-01", n=4
            ),
        ],
    )
    retriever = Retriever(tmp_path, emb)
    query = SourceQuery(
        "filings", "{company} supply chain risk tariffs suppliers", k=5, sections=("risk factors",)
    )
    hits = retriever.search([query], "AAPL", "Apple", as_of="2025-06-01")
    assert [h.passage.doc_id for h in hits] == ["filings:aapl-1"]
    assert retriever.search([query], "MSFT", "Microsoft") == []
    assert retriever.counts("AAPL") == {"filings": 3}


def test_retriever_requires_index(tmp_path: Path):
    with pytest.raises(IndexNotBuiltError, match="researchdesk ingest"):
        Retriever(tmp_path, HashEmbedder())


@pytest.mark.slow
def test_real_embedder_retrieves_the_right_company(tmp_path: Path):
    """MiniLM on the shipped news + Wikipedia: a company question returns that company's passages."""
    from rag.embedding import Embedder

    data = tmp_path / "data"
    (data / "news").mkdir(parents=True)
    (data / "wikipedia").mkdir()
    for t in ("AAPL", "NVDA"):
        (data / "news" / f"{t}.csv.gz").write_bytes((DATA / "news" / f"{t}.csv.gz").read_bytes())
    (data / "wikipedia" / "companies.jsonl.gz").write_bytes(
        (DATA / "wikipedia" / "companies.jsonl.gz").read_bytes()
    )
    emb = Embedder()
    summary = ingest(data, tmp_path / "index", emb)
    # distinct articles after link, title and near-duplicate-title dedup (rag/sources/news_dedup.py)
    assert summary.corpora["news"]["passages"] == 155 + 157 and not summary.failures
    retriever = Retriever(tmp_path / "index", emb)
    hits = retriever.search(
        [
            SourceQuery("wikipedia", "graphics processing units for gaming and AI", k=3),
            SourceQuery("news", "iPhone sales and App Store", k=3),
        ],
        "NVDA",
        "Nvidia",
    )
    assert hits and all(h.passage.ticker == "NVDA" for h in hits)
    assert any("GPU" in h.passage.text or "graphics" in h.passage.text for h in hits)
    # unfiltered similarity agrees: the iPhone question is closer to Apple's article than Nvidia's
    apple = retriever.search([SourceQuery("wikipedia", "iPhone maker based in Cupertino", k=1)], "AAPL")
    nvidia = retriever.search([SourceQuery("wikipedia", "iPhone maker based in Cupertino", k=1)], "NVDA")
    assert apple[0].score > nvidia[0].score
    # second ingest of unchanged files does nothing
    again = ingest(data, tmp_path / "index", emb)
    assert again.files_skipped_unchanged == again.files_seen and again.documents == 0
