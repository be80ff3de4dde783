"""Retrieval quality on FinanceBench-format questions: evidence-page hit@k, per document and shared.

FinanceBench gives, per question, the PDF (`doc_name`) and the 0-based page(s) holding the
evidence. A retrieval hit is a retrieved passage from the right document AND the right page.
Two settings, because they answer different questions:
- `per_doc`: search restricted to the question's document (Faiss ID selector over its rows), as a
  report section searching one ticker's filing does;
- `shared`: one index over every document, unfiltered, which also measures cross-document
  confusion (another 10-K's balance sheet looks a lot like this one's).

The PDFs are parsed with the production PDF source and chunker and embedded with the production
embedder into an in-memory store, and ranked by the production hybrid ranking (rag/hybrid.py), so
the numbers are the pipeline's, not a re-implementation's. Every stage is scored on the same run,
each adding one thing to the one before, so each stage's contribution is the difference:
- `baseline`: the naive reference: each PDF page cut into 180-word windows, MiniLM, cosine, the
  question as written; a window is a hit when it lies on an evidence page (issue 12's yardstick);
- `dense`: our page- and section-aware passages, same embedder and question, hits aggregated to
  the page they lie on (a page is ranked once, by its best passage);
- `dense+query`: the question without its instruction boilerplate, and in the shared index
  routed to the documents of the company it names (rag/query.py);
- `lexical`: BM25 alone on that query and routing (rag/lexical.py), for comparison;
- `fused`: dense + weighted BM25 (rag/hybrid.py);
- `rescored`: fused, then the statement and period boosts over the top pages (the production
  ranking).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from rag import hybrid
from rag.chunking import chunk_document
from rag.errors import ConfigError, ResearchDeskError
from rag.hybrid import DEFAULT_WEIGHTS, PageHit, Weights
from rag.query import QueryIntent, understand
from rag.sources import collect_skips
from rag.sources.pdf import parse_pdf, pdf_meta
from rag.store import CorpusStore
from rag.types import Document, Passage, digest

T = TypeVar("T")
KS = (1, 5, 10)
MODES = ("per_doc", "shared")
STAGES = ("baseline", "dense", "dense+query", "lexical", "fused", "rescored")
BASELINE_WORDS = 180


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    doc: str  # the question's document: PDF file name without ".pdf"
    gold: frozenset[tuple[str, int]]  # (doc name, 0-based page) of every evidence entry


def _question(row: object, n: int) -> Question:
    """One JSONL row -> Question; ValueError says what is wrong with it."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    text, doc = row.get("question"), row.get("doc_name")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('missing "question" text')
    if not isinstance(doc, str) or not doc:
        raise ValueError('missing "doc_name"')
    evidence = row.get("evidence")
    if not isinstance(evidence, list) or not evidence:
        raise ValueError('missing "evidence" list')
    gold = set()
    for e in evidence:
        page = e.get("evidence_page_num") if isinstance(e, dict) else None
        if not isinstance(page, int) or isinstance(page, bool) or page < 0:
            raise ValueError('evidence without a 0-based integer "evidence_page_num"')
        gold.add((str(e.get("doc_name") or doc), page))
    return Question(str(row.get("financebench_id") or f"line{n}"), text.strip(), doc, frozenset(gold))


def load_rows(path: Path, parse: Callable[[object, int], T]) -> tuple[list[T], list[str]]:
    """Rows of a JSONL questions file parsed by `parse(row, line number)` (ValueError = skip the
    line with a warning naming it); a missing or unreadable file is one ConfigError line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: questions file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read questions file ({exc})") from exc
    rows, warnings = [], []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(parse(json.loads(line), n))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            warnings.append(f"{path}:{n}: {str(exc).splitlines()[0]}; question skipped")
    return rows, warnings


def load_questions(path: Path) -> tuple[list[Question], list[str]]:
    """Questions of a FinanceBench JSONL file, and a warning per line that had to be skipped."""
    return load_rows(path, _question)


def first_hit(ranked: Sequence[tuple[str, int]], gold: frozenset[tuple[str, int]]) -> int | None:
    """0-based rank of the first retrieved (doc, page) that is evidence, or None."""
    return next((i for i, hit in enumerate(ranked) if hit in gold), None)


def hit_rates(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> dict[int, float]:
    """Share of questions whose first hit is within the top k, for each k."""
    if not ranks:
        return {k: 0.0 for k in ks}
    return {k: sum(r is not None and r < k for r in ranks) / len(ranks) for k in ks}


@dataclass
class RetrievalEval:
    questions: int = 0  # scored
    skipped: int = 0  # questions not scored: malformed line, or their PDF is missing/unreadable
    documents: int = 0
    passages: int = 0
    model: str = ""
    seconds: float = 0.0
    # stage -> "hit@5" -> {"per_doc": x, "shared": y}; `hits` is the production stage's
    stages: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    hits: dict[str, dict[str, float]] = field(default_factory=dict)
    per_question: list[dict] = field(default_factory=list)  # id, doc, gold pages, 1-based ranks or None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """The one-line JSON the CLI prints: the production stage's hit@k first, then every stage."""
        return {
            **self.hits,
            "stages": self.stages,
            "n": self.questions,
            "skipped": self.skipped,
            "documents": self.documents,
            "passages": self.passages,
            "model": self.model,
            "weights": self.weights,
            "seconds": round(self.seconds, 2),
            "seconds_per_question": round(self.timings.get("search", 0.0) / max(self.questions, 1), 4),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }


def find_pdfs(docs_dir: Path) -> list[Path]:
    """`DIR/*.pdf`, or `DIR/pdfs/*.pdf` as FinanceBench ships them."""
    if not docs_dir.is_dir():
        raise ConfigError(f"{docs_dir}: documents folder not found (pass the folder holding the PDFs)")
    pdfs = sorted(docs_dir.glob("*.pdf")) or sorted((docs_dir / "pdfs").glob("*.pdf"))
    if not pdfs:
        raise ConfigError(f"{docs_dir}: no .pdf files in it (or in its pdfs/ subfolder)")
    return pdfs


def baseline_windows(doc: Document, words: int = BASELINE_WORDS) -> list[Passage]:
    """The naive reference units: each page's text in consecutive `words`-word windows."""
    pages: dict[int, list[str]] = {}
    for section in doc.sections:
        pages.setdefault(section.page, []).extend(section.text.split())
    out: list[Passage] = []
    for page, tokens in sorted(pages.items()):
        for start in range(0, len(tokens), words):
            text = " ".join(tokens[start : start + words])
            out.append(
                Passage(
                    passage_id=digest(f"{doc.doc_id}\nbaseline\n{page}\n{start}"),
                    doc_id=doc.doc_id,
                    corpus="filings",
                    ticker=doc.ticker,
                    source=doc.source,
                    form=doc.form,
                    date=doc.date,
                    section=f"PDF page {page + 1}",
                    title=doc.title,
                    url=doc.url,
                    text=text,
                    ordinal=len(out),
                    page=page,
                )
            )
    return out


def routing_names(path: Path, doc: Document) -> list[str]:
    """Names a question may call this document's company by: sidecar company, ticker, name prefix."""
    meta = pdf_meta(path)
    names = [n for n in dict.fromkeys((meta.company, doc.ticker, path.stem.split("_")[0])) if n]
    # Without a sidecar the company is the file name's "AMCOR": as an upper-case word of up to five
    # letters it would only match as written (rag/query.py treats it as a ticker), so a question
    # saying "Amcor" also needs the word form.
    return names + [n.title() for n in names if n.isupper() and n.isalpha() and len(n) > 3]


class _Corpus:
    """One in-memory store of the evaluated PDFs with the lookups the ranking stages need."""

    def __init__(self, store: CorpusStore, stem: dict[str, str]):
        self.store = store
        table = store.table
        self.row_doc = table["doc_id"].map(stem).to_numpy()
        self.row_page = table["page"].to_numpy(dtype=np.int64)
        self.first_text: dict[tuple[str, int], str] = {}
        for doc, page, text in zip(self.row_doc, self.row_page, table["text"], strict=True):
            self.first_text.setdefault((doc, int(page)), text)

    def key(self, row: int) -> tuple[str, int]:
        return (self.row_doc[row], int(self.row_page[row]))

    def mask(self, docs: set[str] | None) -> np.ndarray | None:
        return None if docs is None else np.isin(self.row_doc, sorted(docs))


def _build(docs: dict[str, Document], units: dict[str, list[Passage]], embedder) -> _Corpus:
    store = CorpusStore(Path("in-memory"), "filings", embedder.dim, embedder.signature)  # never saved
    texts = [p.text for ps in units.values() for p in ps]
    vectors = embedder.encode(texts)
    offset = 0
    for name, passages in units.items():
        store.upsert(docs[name], passages, vectors[offset : offset + len(passages)])
        offset += len(passages)
    return _Corpus(store, {doc.doc_id: name for name, doc in docs.items()})


def _stage_pages(
    corpus: _Corpus,
    stage: str,
    vec: np.ndarray,
    intent: QueryIntent,
    docs: set[str] | None,
    periods: dict[str, str],
    weights: Weights,
) -> list[PageHit]:
    """Pages ranked by one stage (not `baseline`) for one question under a document filter."""
    store, mask = corpus.store, corpus.mask(docs)
    words = intent.keywords or intent.text
    if stage == "lexical":
        scored = hybrid.fuse([], store.lexical_scores(words, mask), 1.0, weights.depth)
    else:
        dense = store.search(vec, weights.depth, mask)
        lex = store.lexical_scores(words, mask) if stage in ("fused", "rescored") else None
        scored = hybrid.fuse(dense, lex, weights.lexical, weights.depth)
    pages = hybrid.by_page(scored, corpus.key)
    if stage == "rescored":
        pages = hybrid.rescore(
            pages,
            intent,
            lambda p: corpus.first_text.get(p.key, ""),
            lambda p: periods.get(p.key[0], ""),
            weights,
        )
    return pages


def rank_pages(
    corpus: _Corpus,
    stage: str,
    vec: np.ndarray,
    intent: QueryIntent,
    docs: set[str] | None,
    periods: dict[str, str],
    weights: Weights = DEFAULT_WEIGHTS,
    k: int = 10,
) -> list[tuple[str, int]]:
    """Top-k (doc, page) of one ranking stage for one question under a document filter."""
    if stage == "baseline":  # windows as they come, duplicates of a page included
        return [corpus.key(r) for r, _ in corpus.store.search(vec, k, corpus.mask(docs))]
    return [p.key for p in _stage_pages(corpus, stage, vec, intent, docs, periods, weights)[:k]]


def best_passages(
    corpus: _Corpus,
    vec: np.ndarray,
    intent: QueryIntent,
    docs: set[str] | None,
    periods: dict[str, str],
    k: int = 3,
    weights: Weights = DEFAULT_WEIGHTS,
) -> list[Passage]:
    """The production ranking's top-k pages, each as its best passage: what `ask` answers from."""
    pages = _stage_pages(corpus, STAGES[-1], vec, intent, docs, periods, weights)
    return [corpus.store.passage(p.best.row) for p in pages[:k]]


def evaluate_retrieval(
    questions_path: Path,
    docs_dir: Path,
    embedder,
    ks: Sequence[int] = KS,
    progress: Callable[[str], None] = lambda msg: None,
    weights: Weights = DEFAULT_WEIGHTS,
    stages: Sequence[str] = STAGES,
) -> RetrievalEval:
    """Parse, chunk and embed every PDF under `docs_dir`, then score each question's retrieval at
    every ranking stage, per document and in one shared index.

    `embedder` is anything with `encode(texts) -> (n, dim) unit vectors`, `dim` and `signature`
    (rag.embedding.Embedder in production). Unusable input raises ConfigError; single bad
    questions or PDFs are skipped and listed in `warnings`.
    """
    t0 = time.perf_counter()
    questions, warnings_lines = load_questions(questions_path)
    result = RetrievalEval(model=embedder.signature, warnings=list(warnings_lines))
    result.weights = {k: float(v) for k, v in weights.__dict__.items()}
    docs: dict[str, Document] = {}
    known: dict[str, list[str]] = {}
    periods: dict[str, str] = {}
    for path in find_pdfs(Path(docs_dir)):
        progress(f"parse {path.name}")
        try:
            with collect_skips():
                docs[path.stem] = parse_pdf(path)
        except ResearchDeskError as exc:
            result.warnings.append(f"skipped document: {exc}")
            continue
        known[path.stem] = routing_names(path, docs[path.stem])
        periods[path.stem] = pdf_meta(path).period
    usable = [q for q in questions if q.doc in docs]
    for q in questions:
        if q.doc not in docs:
            result.warnings.append(
                f"question {q.qid}: document {q.doc!r} is not a readable PDF in {docs_dir}"
            )
    if not usable:
        raise ConfigError(
            f"no usable questions: {len(questions)} read from {questions_path}, none about a readable PDF "
            f"in {docs_dir}" + (f" ({result.warnings[0]})" if result.warnings else "")
        )
    result.timings["parse"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    ours = {name: chunk_document(doc) for name, doc in docs.items()}
    progress(f"embed {sum(map(len, ours.values()))} passages from {len(docs)} documents")
    corpus = _build(docs, ours, embedder)
    base = None
    if "baseline" in stages:
        windows = {name: baseline_windows(doc) for name, doc in docs.items()}
        progress(f"embed {sum(map(len, windows.values()))} baseline windows")
        base = _build(docs, windows, embedder)
    result.timings["chunk_embed"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    intents = [understand(q.text, known) for q in usable]
    raw_vecs = embedder.encode([q.text for q in usable])
    clean_vecs = embedder.encode([i.text for i in intents])
    k = max(ks)
    ranks: dict[str, dict[str, list[int | None]]] = {s: {m: [] for m in MODES} for s in stages}
    for n, (q, intent) in enumerate(zip(usable, intents, strict=True)):
        record: dict = {"id": q.qid, "doc": q.doc, "pages": sorted(p for d, p in q.gold if d == q.doc)}
        routed = set(intent.companies) or None
        for stage in stages:
            understood = stage not in ("baseline", "dense")
            vec = clean_vecs[n] if understood else raw_vecs[n]
            for mode in MODES:
                docs_filter = {q.doc} if mode == "per_doc" else (routed if understood else None)
                ranked = rank_pages(
                    base if stage == "baseline" and base is not None else corpus,
                    stage,
                    vec,
                    intent,
                    docs_filter,
                    periods,
                    weights,
                    k,
                )
                rank = first_hit(ranked, q.gold)
                ranks[stage][mode].append(rank)
                record.setdefault(stage, {})[mode] = None if rank is None else rank + 1
        record.update(record[stages[-1]])  # top-level per_doc/shared: the production stage's ranks
        result.per_question.append(record)
    result.timings["search"] = time.perf_counter() - t2

    for stage in stages:
        rates = {m: hit_rates(ranks[stage][m], ks) for m in MODES}
        result.stages[stage] = {f"hit@{kk}": {m: round(rates[m][kk], 4) for m in MODES} for kk in ks}
    result.hits = result.stages[stages[-1]]
    result.questions = len(usable)
    result.skipped = len(warnings_lines) + len(questions) - len(usable)
    result.documents = len(docs)
    result.passages = len(corpus.store)
    result.seconds = time.perf_counter() - t0
    return result
