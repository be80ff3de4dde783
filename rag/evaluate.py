"""Retrieval quality on FinanceBench-format questions: evidence-page hit@k, per document and shared.

FinanceBench gives, per question, the PDF (`doc_name`) and the 0-based page(s) holding the
evidence. A retrieval hit is a retrieved passage from the right document AND the right page.
Two settings, because they answer different questions:
- `per_doc`: search restricted to the question's document (Faiss ID selector over its rows), as a
  report section searching one ticker's filing does;
- `shared`: one index over every document, unfiltered, which also measures cross-document
  confusion (another 10-K's balance sheet looks a lot like this one's).

The PDFs are parsed with the production PDF source and chunker and embedded with the production
embedder into an in-memory store, so the numbers are the pipeline's, not a re-implementation's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.chunking import chunk_document
from rag.errors import ConfigError, ResearchDeskError
from rag.sources import collect_skips
from rag.sources.pdf import parse_pdf
from rag.store import CorpusStore
from rag.types import Document

KS = (1, 5, 10)
MODES = ("per_doc", "shared")


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


def load_questions(path: Path) -> tuple[list[Question], list[str]]:
    """Questions of a FinanceBench JSONL file, and a warning per line that had to be skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: questions file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read questions file ({exc})") from exc
    questions, warnings = [], []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            questions.append(_question(json.loads(line), n))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            warnings.append(f"{path}:{n}: {str(exc).splitlines()[0]}; question skipped")
    return questions, warnings


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
    hits: dict[str, dict[str, float]] = field(default_factory=dict)  # "hit@5" -> {"per_doc": x, "shared": y}
    per_question: list[dict] = field(default_factory=list)  # id, doc, gold pages, 1-based ranks or None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """The one-line JSON the CLI prints: hit@k first, then the setup."""
        return {
            **self.hits,
            "n": self.questions,
            "skipped": self.skipped,
            "documents": self.documents,
            "passages": self.passages,
            "model": self.model,
            "seconds": round(self.seconds, 2),
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


def evaluate_retrieval(
    questions_path: Path,
    docs_dir: Path,
    embedder,
    ks: Sequence[int] = KS,
    progress: Callable[[str], None] = lambda msg: None,
) -> RetrievalEval:
    """Parse, chunk and embed every PDF under `docs_dir`, then score each question's retrieval.

    `embedder` is anything with `encode(texts) -> (n, dim) unit vectors`, `dim` and `signature`
    (rag.embedding.Embedder in production). Unusable input raises ConfigError; single bad
    questions or PDFs are skipped and listed in `warnings`.
    """
    t0 = time.perf_counter()
    questions, warnings_lines = load_questions(questions_path)
    result = RetrievalEval(model=embedder.signature, warnings=list(warnings_lines))
    docs: dict[str, Document] = {}
    for path in find_pdfs(Path(docs_dir)):
        progress(f"parse {path.name}")
        try:
            with collect_skips():
                docs[path.stem] = parse_pdf(path)
        except ResearchDeskError as exc:
            result.warnings.append(f"skipped document: {exc}")
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
    store = CorpusStore(Path("in-memory"), "filings", embedder.dim, embedder.signature)  # never saved
    chunked = [(doc, chunk_document(doc)) for doc in docs.values()]
    texts = [p.text for _, ps in chunked for p in ps]
    progress(f"embed {len(texts)} passages from {len(docs)} documents")
    vectors = embedder.encode(texts)
    offset = 0
    for doc, passages in chunked:
        store.upsert(doc, passages, vectors[offset : offset + len(passages)])
        offset += len(passages)
    result.timings["chunk_embed"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    stem = {doc.doc_id: name for name, doc in docs.items()}
    row_doc = store.table["doc_id"].map(stem).to_numpy()
    row_page = store.table["page"].to_numpy(dtype=np.int64)
    query_vecs = embedder.encode([q.text for q in usable])
    k = max(ks)
    ranks: dict[str, list[int | None]] = {m: [] for m in MODES}
    for q, vec in zip(usable, query_vecs, strict=True):
        mask = (store.table["doc_id"] == docs[q.doc].doc_id).to_numpy()
        record = {"id": q.qid, "doc": q.doc, "pages": sorted(p for d, p in q.gold if d == q.doc)}
        for mode, sel in (("per_doc", mask), ("shared", None)):
            rows = [r for r, _ in store.search(vec, k, sel)]
            rank = first_hit([(row_doc[r], int(row_page[r])) for r in rows], q.gold)
            ranks[mode].append(rank)
            record[mode] = None if rank is None else rank + 1
        result.per_question.append(record)
    result.timings["search"] = time.perf_counter() - t2

    rates = {m: hit_rates(ranks[m], ks) for m in MODES}
    result.hits = {f"hit@{kk}": {m: round(rates[m][kk], 4) for m in MODES} for kk in ks}
    result.questions = len(usable)
    result.skipped = len(warnings_lines) + len(questions) - len(usable)
    result.documents = len(docs)
    result.passages = len(store)
    result.seconds = time.perf_counter() - t0
    return result
