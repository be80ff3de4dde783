"""Report retrieval is hybrid: BM25 lifts exact terms the dense ranking misses; the financial
section finds an 8-K-only company's earnings release (issue 12)."""

from __future__ import annotations

from pathlib import Path

from rag.hybrid import Weights
from rag.retrieve import Retriever, SourceQuery
from rag.sources.filings import parse_filing
from rag.types import Document, Section
from reports.spec import SECTIONS
from tests.fakes import HashEmbedder
from tests.rag.test_store_retrieve import _store

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "sec8k"


def _doc(n: int, text: str, section: str = "Item 7. Management's Discussion and Analysis") -> Document:
    return Document(
        f"filings:acme-{n}",
        "filings",
        "ACME",
        "sec",
        "10-K",
        "2024-11-01",
        "ACME 10-K",
        "u",
        [Section("7", section, text)],
        content_digest=f"d{n}",
    )


def test_bm25_lifts_the_passage_with_the_rare_term(tmp_path: Path):
    emb = HashEmbedder()
    filler = (
        "Net sales increased compared to the prior year due to higher demand across regions and channels. "
    )
    docs = [
        _doc(1, filler * 3),
        _doc(2, filler * 2 + "The Upjohn separation cost was recorded in other expense."),
        _doc(3, filler * 3 + "Pricing was stable."),
    ]
    _store(tmp_path, emb, docs)
    query = [SourceQuery("filings", "Upjohn separation cost", k=1)]
    dense_only = Retriever(tmp_path, emb, weights=Weights(lexical=0.0)).search(query, "ACME", "Acme")
    hybrid = Retriever(tmp_path, emb).search(query, "ACME", "Acme")
    assert hybrid[0].passage.doc_id == "filings:acme-2"
    assert hybrid[0].score >= dense_only[0].score  # the fused score adds the BM25 share to the cosine
    # the filter holds for BM25 too: another ticker's passage never comes back
    assert Retriever(tmp_path, emb).search(query, "MSFT", "Microsoft") == []


def test_financial_section_retrieves_an_8k_earnings_release(tmp_path: Path):
    emb = HashEmbedder()
    release = parse_filing(FIX / "bke-8-k.BuckleInc.8-K.EX99.1.html.gz")
    item = parse_filing(FIX / "bke-8-k.BuckleInc.8-K.html.gz")
    # the company's 10-K MD&A matches the revenue query better than any press-release passage
    mdna = Document(
        "filings:bke-10k",
        "filings",
        "BKE",
        "sec",
        "10-K",
        "2024-03-29",
        "BKE 10-K",
        "u",
        [
            Section(
                "7",
                "Item 7. Management's Discussion and Analysis",
                "Buckle Inc net sales revenue "
                "increased decreased compared to prior year due to store traffic and pricing. " * 12,
            )
        ],
        content_digest="mdna",
    )
    _store(tmp_path, emb, [release, item, mdna])
    retriever = Retriever(tmp_path, emb)
    revenue_query, release_query = SECTIONS["financials"].queries
    alone = retriever.search([revenue_query], "BKE", "Buckle Inc")
    assert {h.passage.doc_id for h in alone} == {"filings:bke-10k"}  # the MD&A fills the revenue query
    hits = retriever.search([revenue_query, release_query], "BKE", "Buckle Inc")
    assert any(h.passage.section == "Exhibit 99.1" for h in hits)
    assert all(h.passage.ticker == "BKE" for h in hits)
