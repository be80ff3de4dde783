"""Sources -> documents -> passages -> embeddings -> corpus stores, plus the facts and risk tables.

Incremental at two levels: a file whose bytes did not change since the last successful ingest is
not parsed again, and a document whose content digest did not change is not re-embedded. A file
that cannot be read is recorded (file, ticker, reason) and skipped; everything else still lands.
The summary is written next to the index so report runs can tell a ticker's data is incomplete.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag import facts as facts_mod
from rag import risk_factors as risks_mod
from rag import xbrl_instance
from rag.atomic import write_atomic
from rag.chunking import chunk_document
from rag.embedding import Embedder
from rag.errors import ConfigError, ResearchDeskError, SourceError
from rag.ingest_lock import holds_ingest_lock
from rag.sources import SOURCES, SourceSpec, collect_skips
from rag.store import CorpusStore, UpsertStats
from rag.types import Document, Fact, digest

SUMMARY_FILE = "ingest_summary.json"
FACTS_FILE = "facts.parquet"
RISKS_FILE = risks_mod.RISKS_FILE  # 10-K Item 1A risk headings (rag/risk_factors.py)

Progress = Callable[[str], None]


@dataclass
class FileFailure:
    file: str
    ticker: str
    source: str
    error: str


@dataclass
class FileSkip:
    """Part of a file that was dropped while the rest of it was ingested."""

    file: str
    ticker: str
    source: str
    reason: str


@dataclass
class IngestSummary:
    files_seen: int = 0
    files_skipped_unchanged: int = 0
    documents: int = 0
    corpora: dict[str, dict] = field(default_factory=dict)
    facts: int = 0
    facts_tickers: list[str] = field(default_factory=list)
    risk_factors: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    skips: list[FileSkip] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, index_dir: Path) -> IngestSummary | None:
        path = index_dir / SUMMARY_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["failures"] = [FileFailure(**f) for f in data.get("failures", [])]
        data["skips"] = [FileSkip(**s) for s in data.get("skips", [])]
        return cls(**data)

    def failures_for(self, ticker: str) -> list[FileFailure]:
        return [f for f in self.failures if f.ticker == ticker]


def ticker_from_filename(path: Path) -> str:
    """`aapl-10-k-2024-11-01.html.gz` -> AAPL, `NVDA.csv.gz` -> NVDA; "" when the name has no ticker."""
    m = re.match(r"([A-Za-z]{1,5})[-_.]", path.name)
    head = m.group(1).upper() if m else ""
    return "" if head in {"COMPANIES", "COMPANYFACTS"} else head


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


def _file_digest(path: Path) -> str:
    return digest(path.read_bytes())


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
            file_digests[rel] = _file_digest(path)
        except OSError as exc:
            summary.failures.append(
                FileFailure(rel, ticker_from_filename(path), spec.name, f"unreadable: {exc}")
            )
            continue
        if seen.get(rel) == file_digests[rel]:
            summary.files_skipped_unchanged += 1
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
        vectors = embedder.encode(texts, progress=lambda d, n, c=corpus: progress(f"  {c} {d}/{n}"))
        offset = 0
        for doc, passages in chunked:
            stats.merge(store.upsert(doc, passages, vectors[offset : offset + len(passages)]))
            offset += len(passages)
    if todo or store.unsaved or not (index_dir / corpus / "meta.json").exists():
        store.save()
    summary.corpora[corpus] = {**asdict(stats), "passages": len(store)}


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
        facts_sources = {"companyfacts", "inline-xbrl", xbrl_instance.SOURCE, "risk-factors"}
        kept = set(sources) | (facts_sources if facts_too else set())
        summary.failures += [f for f in previous.failures if f.source not in kept]
        summary.skips += [s for s in previous.skips if s.source not in kept]
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
    summary.seconds = time.perf_counter() - t0
    write_atomic(index_dir / SUMMARY_FILE, json.dumps(summary.to_json(), indent=1))
    return summary


def build_facts(data_dir: Path, index_dir: Path, summary: IngestSummary, progress: Progress) -> list[Fact]:
    """Companyfacts JSON where it ships, inline XBRL of 10-K and 10-Q filings otherwise (the 10-Q gives
    the latest quarter), and XBRL instance documents (`sec/xbrl/*.xml[.gz]`, `sec/filings/*_htm.xml[.gz]`)
    like inline XBRL; cached per file digest. An instance of a filing whose inline document is also
    there adds only what that lacks, so a filing is never counted twice. A file whose parser dropped
    part of it is recorded in `summary.skips` and not cached, so the note stays until it is fixed."""
    cache = index_dir / "facts_cache"
    cache.mkdir(exist_ok=True)

    def cached(path: Path, reader: Callable[[Path], list[Fact]], source: str) -> list[Fact]:
        target = cache / f"{_file_digest(path)}.parquet"
        if target.exists():
            return facts_mod.read_facts(target)
        progress(f"facts {path.name}")
        with collect_skips() as skips:
            rows = reader(path)
        rel = str(path.relative_to(data_dir))
        summary.skips += [FileSkip(rel, ticker_from_filename(path), source, reason) for reason in skips]
        if skips:
            progress(f"  partly skipped {rel}: {'; '.join(skips)}")
        else:
            facts_mod.write_facts(rows, target)
        return rows

    all_facts: list[Fact] = []
    covered: set[str] = set()
    for path in sorted((data_dir / "sec" / "companyfacts").glob("companyfacts_*.json*")):
        try:
            rows = cached(path, facts_mod.facts_from_companyfacts, "companyfacts")
        except ResearchDeskError as exc:
            ticker = path.name.split(".")[0].split("_")[-1].upper()
            summary.failures.append(
                FileFailure(str(path.relative_to(data_dir)), ticker, "companyfacts", str(exc))
            )
            continue
        all_facts.extend(rows)
        covered |= {f.ticker for f in rows}
    filings = data_dir / "sec" / "filings"
    seen: dict[xbrl_instance.FilingKey, set[xbrl_instance.FactKey]] = {}  # filing -> its facts so far
    for path in sorted([*filings.glob("*-10-k-*.htm*"), *filings.glob("*-10-q-*.htm*")]):
        ticker = ticker_from_filename(path)
        if ticker in covered or any(f.file.endswith(path.name) for f in summary.failures):
            continue
        try:
            rows = cached(path, facts_mod.facts_from_inline_xbrl, "inline-xbrl")
            all_facts.extend(xbrl_instance.note_rows(seen, rows))
        except ResearchDeskError as exc:
            summary.failures.append(
                FileFailure(str(path.relative_to(data_dir)), ticker, "inline-xbrl", str(exc))
            )
    for path in xbrl_instance.instance_files(data_dir):
        ticker = ticker_from_filename(path)
        if ticker in covered:
            continue
        try:
            rows = cached(path, xbrl_instance.facts_from_instance, xbrl_instance.SOURCE)
        except ResearchDeskError as exc:
            summary.failures.append(
                FileFailure(str(path.relative_to(data_dir)), ticker, xbrl_instance.SOURCE, str(exc))
            )
            continue
        rows = [f for f in rows if f.ticker not in covered]  # the dei symbol may name a covered ticker
        all_facts.extend(xbrl_instance.new_rows(seen, rows))
    facts_mod.write_facts(all_facts, index_dir / FACTS_FILE)
    return all_facts


def build_risk_factors(
    data_dir: Path, index_dir: Path, summary: IngestSummary, progress: Progress
) -> list[risks_mod.RiskFactor]:
    """Item 1A risk headings of every shipped 10-K into one table; cached per file digest.

    Why a per-file cache: extraction re-reads the whole HTML, which costs as much as parsing
    it for passages. The key also holds the file name (it gives ticker and doc_id) and the
    extractor's VERSION, so renamed files and improved extraction never reuse stale rows.
    A filing that failed to parse is left to its own failure entry.
    """
    cache = index_dir / "risk_factors_cache"
    cache.mkdir(exist_ok=True)
    rows: list[risks_mod.RiskFactor] = []
    for path in sorted((data_dir / "sec" / "filings").glob("*-10-k-*.htm*")):
        rel = str(path.relative_to(data_dir))
        if any(f.file == rel for f in summary.failures):
            continue
        try:
            key = digest(f"{_file_digest(path)}:{path.name}:{risks_mod.VERSION}")
            target = cache / f"{key}.parquet"
            if target.exists():
                rows.extend(risks_mod.read_risk_parquet(target))
                continue
            progress(f"risk factors {path.name}")
            found = risks_mod.risk_factors_from_filing(path)
        except (ResearchDeskError, OSError) as exc:
            summary.failures.append(FileFailure(rel, ticker_from_filename(path), "risk-factors", str(exc)))
            continue
        risks_mod.write_risk_factors(found, target)
        rows.extend(found)
    risks_mod.write_risk_factors(rows, index_dir / RISKS_FILE)
    return rows
