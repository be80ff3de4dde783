"""OpenChatKit Wikipedia index reader, on a tiny index built here in the real on-disk format.

A random 2-layer BertModel (hidden 32) with a WordPiece tokenizer trained on the passages stands in
for facebook/contriever-msmarco (same architecture family, same loading path). The passages are
real: 3-sentence snippets of the shipped Wikipedia articles, as in the OpenChatKit dataset.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rag.errors import ConfigError, ModelError
from rag.okc_index import (
    INDEX_FILE,
    PASSAGES_FILE,
    MeanPoolEncoder,
    OkcWikipediaCorpus,
    OkcWikipediaIndex,
    mean_pooling,
    open_okc_corpus,
)
from rag.retrieve import Retriever, SourceQuery
from rag.store import CorpusStore
from rag.types import Document, Section
from tests.fakes import HashEmbedder

DATA = Path(__file__).resolve().parents[2] / "data"


def snippets(per_article: int = 25) -> list[str]:
    """3-sentence passages from the Apple and Nvidia articles, in article order (neighbours adjacent)."""
    out = []
    with gzip.open(DATA / "wikipedia" / "companies.jsonl.gz", "rt") as fh:
        pages = {p["ticker"]: p["clean_text"] for p in map(json.loads, fh)}
    for ticker in ("AAPL", "NVDA"):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", pages[ticker]) if len(s.split()) >= 4]
        out += [" ".join(sentences[i : i + 3]) for i in range(0, 3 * per_article, 3)]
    return out


def save_encoder(folder: Path, texts: list[str], hidden: int = 32) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )  # no model_max_length on purpose: the encoder must cap at the model's 128 positions
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    folder.mkdir(parents=True)
    BertModel(config).eval().save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_index(folder: Path, vectors: np.ndarray, texts: list[str], metric: str, files: int = 1) -> Path:
    """knn.index + passages parquet(s) with column text_snippet, small row groups."""
    folder.mkdir(parents=True, exist_ok=True)
    if metric == "ip":  # cosine: unit vectors, inner product
        index = faiss.IndexFlatIP(vectors.shape[1])
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add(unit.astype(np.float32))
    else:  # raw mean-pooled vectors, L2
        index = faiss.IndexFlatL2(vectors.shape[1])
        index.add(vectors)
    faiss.write_index(index, str(folder / INDEX_FILE))
    if files == 1:
        pq.write_table(pa.table({"text_snippet": texts}), folder / PASSAGES_FILE, row_group_size=16)
    else:  # split across part files, in name order
        bounds = np.linspace(0, len(texts), files + 1).astype(int)
        for n in range(files):
            part = pa.table({"text_snippet": texts[bounds[n] : bounds[n + 1]]})
            pq.write_table(part, folder / f"part-{n:02d}.parquet", row_group_size=7)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("okc")
    texts = snippets()
    encoder = MeanPoolEncoder(save_encoder(root / "encoder", texts))
    vectors = encoder.encode(texts)
    return root, texts, encoder, vectors


def test_mean_pooling_matches_a_manual_masked_mean(built):
    _, texts, encoder, vectors = built
    batch = [texts[0], "Apple.", texts[7]]  # very different lengths: most rows are padded
    got = encoder.encode(batch)
    for text, row in zip(batch, got, strict=True):
        ids = encoder.tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
        with torch.no_grad():
            hidden = encoder.model(**ids)[0][0]  # (tokens, dim), no padding when alone
        manual = hidden.sum(0) / hidden.shape[0]
        np.testing.assert_allclose(row, manual.numpy(), atol=1e-5)
    np.testing.assert_allclose(got[0], vectors[0], atol=1e-5)  # same vector alone or batched
    # and the function itself ignores whatever sits in padded positions
    emb = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [1e6, -1e6]]])
    assert mean_pooling(emb, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_encoder_caps_input_at_the_models_positions(built):
    _, _, encoder, _ = built
    assert encoder.max_length == 128
    assert encoder.encode(["word " * 1000]).shape == (1, 32)  # truncated, not an index error


@pytest.mark.parametrize("metric, files", [("ip", 1), ("l2", 1), ("ip", 3)])
def test_a_passage_text_finds_itself_first(built, tmp_path: Path, metric: str, files: int):
    _, texts, encoder, vectors = built
    index = OkcWikipediaIndex(write_index(tmp_path / "idx", vectors, texts, metric, files), encoder)
    assert len(index) == len(texts)
    rows = [0, 5, 16, 17, 31, 49]  # row-group and file boundaries included
    results = index.search([texts[r] for r in rows], k=3)
    for row, hits in zip(rows, results, strict=True):
        assert hits[0].row == row and hits[0].text == texts[row]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # cosine of a text with itself
        assert len(hits) == 3 and all(h.score < 1.0 - 1e-6 for h in hits[1:] if h.text != texts[row])


def test_widening_follows_neighbours_above_the_threshold(built, tmp_path: Path):
    _, texts, encoder, vectors = built
    index = OkcWikipediaIndex(write_index(tmp_path / "idx", vectors, texts, "ip"), encoder)
    hit = index.search([texts[10]], k=1)[0][0]
    everything = index.widen(hit, window=2, threshold=-1.0)  # every neighbour passes
    assert (everything.first_row, everything.last_row) == (8, 12)
    assert everything.text == " ".join(t.strip() for t in texts[8:13])
    assert index.widen(hit, window=2, threshold=1.01).text == texts[10]  # nothing passes
    assert index.widen(hit, window=0).text == texts[10]
    edge = index.widen(index.search([texts[0]], k=1)[0][0], window=3, threshold=-1.0)
    assert (edge.first_row, edge.last_row) == (0, 3)  # never before row 0
    # upstream's rule: grow while cosine to the hit > threshold, stop at the first miss
    cos = [
        float(vectors[r] @ vectors[10] / np.linalg.norm(vectors[r]) / np.linalg.norm(vectors[10]))
        for r in range(5, 16)
    ]
    # a threshold halfway across the widest gap between two neighbouring cosines (not next to the
    # hit's own 1.0): `widen` re-encodes the window in another batch, so its cosines differ from
    # these by float noise (~1e-6), and a threshold equal to one of them makes that row a coin toss
    ranked = sorted(cos)[:-1]
    gap, i = max((ranked[i + 1] - ranked[i], i) for i in range(1, len(ranked) - 2))
    assert gap > 1e-4, "fixture vectors too close to place a threshold between them"
    th = (ranked[i] + ranked[i + 1]) / 2
    w = index.widen(hit, window=5, threshold=th)
    first = 10
    while first - 1 >= 5 and cos[first - 1 - 5] > th:
        first -= 1
    last = 10
    while last + 1 <= 15 and cos[last + 1 - 5] > th:
        last += 1
    assert (w.first_row, w.last_row) == (first, last)


def test_dimension_mismatch_between_encoder_and_index_is_a_clear_error(built, tmp_path: Path):
    _, texts, encoder, vectors = built
    folder = write_index(tmp_path / "idx", vectors, texts, "ip")
    wide = MeanPoolEncoder(save_encoder(tmp_path / "wide", texts, hidden=48))
    with pytest.raises(ConfigError, match="32-dimensional vectors but the query encoder .* makes 48"):
        OkcWikipediaIndex(folder, wide)


def test_missing_or_mismatched_files_are_clear_errors(built, tmp_path: Path):
    _, texts, encoder, vectors = built
    folder = write_index(tmp_path / "idx", vectors, texts, "ip")
    shutil.move(folder / PASSAGES_FILE, tmp_path / "sentences.parquet")
    pq.write_table(pa.table({"text": ["a whole article"]}), folder / "wikipedia-en.parquet")
    with pytest.raises(ConfigError, match="no parquet with a 'text_snippet' column .*wikipedia-en.parquet"):
        OkcWikipediaIndex(folder, encoder)
    pq.write_table(pa.table({"text_snippet": texts[:-1]}), folder / PASSAGES_FILE)
    with pytest.raises(ConfigError, match="50 vectors but wikipedia-en-sentences.parquet hold 49"):
        OkcWikipediaIndex(folder, encoder)
    (folder / INDEX_FILE).unlink()
    with pytest.raises(ConfigError, match="knn.index not found: point RESEARCHDESK_OKC_INDEX_DIR"):
        OkcWikipediaIndex(folder, encoder)
    with pytest.raises(ConfigError, match="query encoder not found .*RESEARCHDESK_OKC_ENCODER"):
        MeanPoolEncoder(tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="cannot load the query encoder"):
        MeanPoolEncoder(tmp_path / "broken")
    with pytest.raises(ConfigError, match="RESEARCHDESK_OKC_ENCODER is not"):
        open_okc_corpus(folder, None)


def test_company_mentions_are_preferred_among_the_top_hits(built, tmp_path: Path):
    _, texts, encoder, vectors = built
    index = OkcWikipediaIndex(write_index(tmp_path / "idx", vectors, texts, "ip"), encoder)
    corpus = OkcWikipediaCorpus(index, window=0, overfetch=4)
    query = texts[3]
    candidates = index.search([query], k=4)[0]
    top = corpus.search([query], k=1, names=("Zzyzx Holdings", "ZZYX"))[0]  # mentioned nowhere
    assert top[0][0].text == texts[3]
    # a word that a lower candidate has and the best one lacks pulls that candidate up
    first_words = set(re.findall(r"[A-Za-z]{4,}", candidates[0].text))
    pick = next(
        (w, c)
        for c in candidates[1:]
        for w in re.findall(r"\b[A-Z][a-z]{3,}\b", c.text)
        if w not in first_words
    )
    passage, score = corpus.search([query], k=1, names=(f"{pick[0]} Inc.", "XYZ"))[0][0]
    assert pick[0] in passage.text and passage.text != texts[3]
    assert passage.corpus == "wikipedia" and passage.ticker == "" and passage.passage_id.startswith("okc-")
    assert -1.0 <= score < 1.0


def test_retriever_sends_wikipedia_queries_to_the_okc_index(built, tmp_path: Path):
    _, texts, encoder, vectors = built
    emb = HashEmbedder()
    store = CorpusStore.open(tmp_path / "index", "filings", emb.dim, emb.signature)
    doc = Document(
        "filings:aapl", "filings", "AAPL", "sec", "10-K", "2024-11-01", "Apple 10-K", "u",
        [Section("1", "Item 1. Business", "Apple designs smartphones, computers and wearables.")], "d1",
    )  # fmt: skip
    from rag.chunking import chunk_document

    passages = chunk_document(doc)
    store.upsert(doc, passages, emb.encode([p.text for p in passages]))
    store.save()
    corpus = OkcWikipediaCorpus(
        OkcWikipediaIndex(write_index(tmp_path / "okc", vectors, texts, "ip"), encoder)
    )
    retriever = Retriever(tmp_path / "index", emb, {"wikipedia": corpus})
    hits = retriever.search(
        [SourceQuery("filings", "{company} business", k=1), SourceQuery("wikipedia", texts[2], k=1)],
        "AAPL",
        "Apple Inc.",
        as_of="2025-01-01",
    )
    assert [h.passage.corpus for h in hits] == ["filings", "wikipedia"]  # query order kept
    wiki = hits[1]
    assert texts[2] in wiki.passage.text and wiki.score == pytest.approx(1.0, abs=1e-5)
    assert retriever.counts("AAPL") == {"filings": 1}  # no per-ticker count for an external corpus
    assert ("wikipedia", "wikipedia:external", corpus.signature) in retriever.documents("AAPL")
