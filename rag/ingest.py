"""Sources -> documents -> passages -> embeddings -> corpus stores, plus the facts and risk tables.

Incremental at two levels: a file whose bytes did not change since the last successful ingest is
not parsed again, and a document whose content digest did not change is not re-embedded. A file
that cannot be read is recorded (file, ticker, reason) and skipped; everything else still lands.
The summary is written next to the index so report runs can tell a ticker's data is incomplete.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from rag import xbrl_instance
from rag.atomic import write_atomic
from rag.chunking import chunk_document
from rag.embedding import Embedder
from rag.errors import ConfigError, ResearchDeskError, SourceError
from rag.filing_tables import (
    FACTS_FILE,
    PRESS_SOURCE,
    RISKS_FILE,
    build_facts,
    build_risk_factors,
    file_digest,
)
from rag.ingest_lock import holds_ingest_lock
from rag.ingest_report import (
    SUMMARY_FILE,
    FileFailure,
    FileSkip,
    IngestSummary,
    finish_report,
    ticker_from_filename,
)
from rag.sources import SOURCES, SourceSpec, collect_skips
from rag.store import CorpusStore, UpsertStats
from rag.types import Document

__all__ = [
    "FACTS_FILE",
    "RISKS_FILE",
    "SUMMARY_FILE",
    "FileFailure",
    "FileSkip",
    "IngestSummary",
    "build_facts",
    "build_risk_factors",
    "discover",
    "ingest",
    "ticker_from_filename",
]

Progress = Callable[[str], None]
FACTS_SOURCES = {"companyfacts", "inline-xbrl", xbrl_instance.SOURCE, PRESS_SOURCE, "risk-factors"}


def discover(data_dir: Path, sources: Collection[str] | None = None) -> list[tuple[SourceSpec, Path]]:
    """Input files of every registered source, or only of the named ones (e.g. the hourly news)."""
    unknown = sorted(set(sources or ()) - SOURCES.keys())
    if unknown:
        raise ConfigError(f"unknown sources {unknown}; registered: {sorted(SOURCES)} (rag/sources/)")
    return [
        (spec, path)
        for spec in SOURCES.values()
        if sources is None or spec.name in sources
        for path in spec.files(data_dir)
    ]


def _other_embedder(index_dir: Path, embedder: Embedder) -> list[str]:
    """Corpora whose saved store was built by another embedder (model, backend or precision).

    Such a store opens empty (rag/store.py), so its documents must be parsed again even though
    their files did not change; otherwise an upgrade that changes the embedder would leave the
    index empty while files.json says everything is up to date.
    """
    stale = []
    for corpus in sorted({spec.corpus for spec in SOURCES.values()}):
        meta = index_dir / corpus / "meta.json"
        try:
            built = json.loads(meta.read_text()) if meta.exists() else None
        except (OSError, ValueError):
            built = None  # unreadable: CorpusStore.open says so
        if built and (built.get("embedder") != embedder.signature or built.get("dim") != embedder.dim):
            stale.append(corpus)
    return stale


def _parse_changed(
    data_dir: Path,
    sources: Collection[str] | None,
    seen: dict[str, str],
    previous: IngestSummary | None,
    summary: IngestSummary,
    progress: Progress,
) -> tuple[dict[str, list[Document]], dict[str, str]]:
    """Documents of every new or changed file, per corpus, and the digest of every file read.

    An unchanged file is not parsed again, so its partial-skip notes come from the last summary:
    a truncated filing stays reported until it is fixed, not just on the run that first saw it.
    """
    by_corpus: dict[str, list[Document]] = {}
    file_digests: dict[str, str] = {}
    found = discover(data_dir, sources)
    for i, (spec, path) in enumerate(found, start=1):
        summary.files_seen += 1
        rel = str(path.relative_to(data_dir))
        try:
            file_digests[rel] = file_digest(path)
        except OSError as exc:
            summary.failures.append(
                FileFailure(rel, ticker_from_filename(path), spec.name, f"unreadable: {exc}")
            )
            continue
        if seen.get(rel) == file_digests[rel]:
            summary.files_skipped_unchanged += 1
            summary.ledger.record(rel, spec.name, "unchanged")
            summary.skips += [s for s in (previous.skips if previous else []) if s.file == rel]
            continue
        progress(f"parse {i}/{len(found)} {rel}")
        try:
            with collect_skips() as skips:
                docs = spec.parse(path)
        except ResearchDeskError as exc:
            summary.failures.append(FileFailure(rel, ticker_from_filename(path), spec.name, str(exc)))
            progress(f"  skipped {rel}: {exc}")
            continue
        for reason in skips:
            summary.skips.append(FileSkip(rel, ticker_from_filename(path), spec.name, reason))
            progress(f"  partly skipped {rel}: {reason}")
        summary.ledger.record(rel, spec.name, "parsed")
        by_corpus.setdefault(spec.corpus, []).extend(docs)
        summary.documents += len(docs)
    return by_corpus, file_digests


def _index_corpus(
    corpus: str,
    docs: list[Document],
    index_dir: Path,
    embedder: Embedder,
    rebuild: bool,
    summary: IngestSummary,
    progress: Progress,
) -> None:
    """Chunk and embed the new or changed documents of one corpus into its store, saved atomically."""
    store = CorpusStore.open(index_dir, corpus, embedder.dim, embedder.signature)
    if rebuild:
        store = CorpusStore(index_dir / corpus, corpus, embedder.dim, embedder.signature)
    todo, unchanged = store.plan(docs)
    stats = UpsertStats(docs_unchanged=len(unchanged))
    chunked = [(doc, chunk_document(doc)) for doc in todo]
    texts = [p.text for _, ps in chunked for p in ps]
    if texts:
        progress(f"embed {corpus}: {len(texts)} passages from {len(todo)} documents")

        def embedded(done: int, total: int) -> None:
            progress(f"  {corpus} {done}/{total}")

        vectors = embedder.encode(texts, progress=embedded)
        offset = 0
        for doc, passages in chunked:
            stats.merge(store.upsert(doc, passages, vectors[offset : offset + len(passages)]))
            offset += len(passages)
    if todo or store.unsaved or not (index_dir / corpus / "meta.json").exists():
        store.save()
    summary.corpora[corpus] = {**asdict(stats), "passages": len(store)}


def _folders(sources: Collection[str], facts_too: bool) -> set[str]:
    """Top folders a filtered run reads ("news/"), for the file report."""
    folders = {
        str(PurePosixPath(p).parent) + "/" for n in sources if n in SOURCES for p in SOURCES[n].patterns
    }
    return folders | ({"sec/"} if facts_too else set())


@holds_ingest_lock  # one ingest per index directory at a time; others wait (rag/ingest_lock.py)
def ingest(
    data_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    progress: Progress = lambda msg: None,
    rebuild: bool = False,
    sources: Collection[str] | None = None,
) -> IngestSummary:
    """Bring the index under `index_dir` up to date with the files under `data_dir`.

    `sources` (registry names) limits discovery to those sources: other sources' passages stay
    in the index, and their failures and skips are carried over from the previous summary, so a
    news-only run does not forget a corrupt filing. Facts and risk factors are rebuilt when
    `filings` is included.
    """
    t0 = time.perf_counter()
    if not data_dir.is_dir():
        raise SourceError(f"{data_dir}: data directory does not exist")
    index_dir.mkdir(parents=True, exist_ok=True)
    summary = IngestSummary()
    seen_path = index_dir / "files.json"
    seen: dict[str, str] = {} if rebuild or not seen_path.exists() else json.loads(seen_path.read_text())
    previous = None if rebuild else IngestSummary.read(index_dir)

    # 1. parse changed files into documents, per corpus
    if rebuild and sources is not None:
        raise ConfigError("a rebuild re-reads every source; run it without a sources filter")
    facts_too = sources is None or "filings" in sources
    if sources is not None and previous:  # what this run does not look at stays reported
        kept = set(sources) | (FACTS_SOURCES if facts_too else set())
        summary.failures += [f for f in previous.failures if f.source not in kept]
        summary.skips += [s for s in previous.skips if s.source not in kept]
    for corpus in _other_embedder(index_dir, embedder):  # its store is rebuilt: re-read its files
        progress(f"{corpus}: index built by another embedder; re-embedding every {corpus} document")
        files = {str(p.relative_to(data_dir)) for spec, p in discover(data_dir) if spec.corpus == corpus}
        seen = {rel: d for rel, d in seen.items() if rel not in files}
    by_corpus, file_digests = _parse_changed(data_dir, sources, seen, previous, summary, progress)
    summary.timings["parse"] = time.perf_counter() - t0

    # 2. chunk + embed what changed, one store per corpus, saved atomically
    t1 = time.perf_counter()
    for corpus in sorted({spec.corpus for spec in SOURCES.values()}):
        _index_corpus(corpus, by_corpus.get(corpus, []), index_dir, embedder, rebuild, summary, progress)
    summary.timings["chunk_embed_index"] = time.perf_counter() - t1

    # 3. facts table from every facts-bearing file (companyfacts preferred per ticker)
    t2 = time.perf_counter()
    if facts_too:
        facts = build_facts(data_dir, index_dir, summary, progress)
        summary.facts = len(facts)
        summary.facts_tickers = sorted({f.ticker for f in facts})
    elif previous:
        summary.facts, summary.facts_tickers = previous.facts, previous.facts_tickers
    summary.timings["facts"] = time.perf_counter() - t2

    # 4. risk factor headings of every 10-K, for the report's "Key risks"
    t3 = time.perf_counter()
    if facts_too:
        summary.risk_factors = len(build_risk_factors(data_dir, index_dir, summary, progress))
    elif previous:
        summary.risk_factors = previous.risk_factors
    summary.timings["risk_factors"] = time.perf_counter() - t3

    failed = {f.file for f in summary.failures}
    seen.update({rel: d for rel, d in file_digests.items() if rel not in failed})
    for rel in failed:
        seen.pop(rel, None)
    # both atomically: a crash mid-write must not leave a torn files.json (the next run would
    # re-read everything) or a summary the flows cannot parse
    write_atomic(seen_path, json.dumps(seen, indent=1, sort_keys=True))
    finish_report(summary, data_dir, None if sources is None else _folders(sources, facts_too))
    summary.seconds = time.perf_counter() - t0
    write_atomic(index_dir / SUMMARY_FILE, json.dumps(summary.to_json(), indent=1))
    return summary
