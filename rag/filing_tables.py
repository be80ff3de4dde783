"""Filings -> the facts table and the risk-factor table that reports read next to the passages.

Facts, in order of preference per ticker: EDGAR companyfacts JSON; else the inline XBRL of the
10-K/10-Q filings and XBRL instance documents (`sec/xbrl/*.xml[.gz]`, `sec/filings/*_htm.xml[.gz]`);
plus, always, the figures of 8-K earnings releases (EX-99), kept as source "press-release"
(unaudited) and never merged into the audited rows (rag/statements.py `audited`). Each file's rows
are cached per content digest. A file a reader could only partly use is noted in
`summary.skips` and not cached, so the note stays until the file is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag import facts as facts_mod
from rag import risk_factors as risks_mod
from rag import xbrl_instance
from rag.errors import ResearchDeskError
from rag.ingest_report import FileSkip, IngestSummary, ticker_from_filename
from rag.press_facts import facts_from_press_release
from rag.sources import collect_skips
from rag.types import Fact, digest

FACTS_FILE = "facts.parquet"
RISKS_FILE = risks_mod.RISKS_FILE  # 10-K Item 1A risk headings (rag/risk_factors.py)
PRESS_SOURCE = "press-release"
Progress = Callable[[str], None]


def file_digest(path: Path) -> str:
    return digest(path.read_bytes())


def _no_release(note: str) -> bool:
    """An 8-K that is not an earnings release (a director change, a vote) has no figures: that is
    normal, not part of a file dropped, so it is not a skip note."""
    return note.endswith("; no facts")


class _FactsCache:
    """One reader's rows per file, cached by content digest; partial-skip notes into the summary."""

    def __init__(self, data_dir: Path, index_dir: Path, summary: IngestSummary, progress: Progress):
        self.data_dir, self.summary, self.progress = data_dir, summary, progress
        self.dir = index_dir / "facts_cache"
        self.dir.mkdir(exist_ok=True)

    def read(self, path: Path, reader: Callable[[Path], list[Fact]], source: str) -> list[Fact]:
        rel = str(path.relative_to(self.data_dir))
        target = self.dir / f"{file_digest(path)}.parquet"
        status = "unchanged"  # served from the cache: read by an earlier run, same bytes
        if target.exists():
            rows = facts_mod.read_facts(target)
        else:
            status = "parsed"
            self.progress(f"facts {path.name}")
            with collect_skips() as notes:
                rows = reader(path)
            skips = [n for n in notes if not (source == PRESS_SOURCE and _no_release(n))]
            ticker = ticker_from_filename(path)
            self.summary.skips += [FileSkip(rel, ticker, source, reason) for reason in skips]
            if skips:
                self.progress(f"  partly skipped {rel}: {'; '.join(skips)}")
            else:
                facts_mod.write_facts(rows, target)
        if rows:
            self.summary.ledger.record(rel, source, status)
        return rows


def _inline_and_instances(
    cache: _FactsCache, data_dir: Path, summary: IngestSummary, covered: set[str]
) -> list[Fact]:
    """Facts of tickers without companyfacts: inline XBRL 10-K/10-Q, then instance documents; an
    instance of a filing whose inline document is also there adds only what that lacks."""
    out: list[Fact] = []
    seen: dict[xbrl_instance.FilingKey, set[xbrl_instance.FactKey]] = {}  # filing -> its facts so far
    filings = data_dir / "sec" / "filings"
    for path in sorted([*filings.glob("*-10-k-*.htm*"), *filings.glob("*-10-q-*.htm*")]):
        ticker = ticker_from_filename(path)
        rel = str(path.relative_to(data_dir))
        if ticker in covered:
            summary.ledger.record(rel, "", "parsed", f"XBRL facts not used: companyfacts covers {ticker}")
            continue
        if any(f.file.endswith(path.name) for f in summary.failures):
            continue
        try:
            out.extend(
                xbrl_instance.note_rows(
                    seen, cache.read(path, facts_mod.facts_from_inline_xbrl, "inline-xbrl")
                )
            )
        except ResearchDeskError as exc:
            summary.fail(data_dir, path, "inline-xbrl", str(exc))
    for path in xbrl_instance.instance_files(data_dir):
        ticker = ticker_from_filename(path)
        if ticker in covered:
            reason = f"companyfacts covers {ticker}: its facts are preferred"
            summary.ledger.record(str(path.relative_to(data_dir)), xbrl_instance.SOURCE, "set aside", reason)
            continue
        try:
            rows = cache.read(path, xbrl_instance.facts_from_instance, xbrl_instance.SOURCE)
        except ResearchDeskError as exc:
            summary.fail(data_dir, path, xbrl_instance.SOURCE, str(exc))
            continue
        rows = [f for f in rows if f.ticker not in covered]  # the dei symbol may name a covered ticker
        out.extend(xbrl_instance.new_rows(seen, rows))
    return out


def _press_releases(cache: _FactsCache, data_dir: Path, summary: IngestSummary) -> list[Fact]:
    """Figures of 8-K earnings releases: standalone EX-99 files and full submissions."""
    paths = [
        *(data_dir / "sec" / "filings").glob("*-8-k*.htm*"),
        *(data_dir / "sec" / "submissions").glob("*.txt*"),
    ]
    out: list[Fact] = []
    for path in sorted(p for p in paths if p.name.lower().endswith((".htm", ".html", ".txt", ".gz"))):
        if any(f.file.endswith(path.name) for f in summary.failures):
            continue  # the passage parser already said why it cannot be read
        try:
            out.extend(cache.read(path, facts_from_press_release, PRESS_SOURCE))
        except ResearchDeskError as exc:
            summary.fail(data_dir, path, PRESS_SOURCE, str(exc))
    return out


def build_facts(data_dir: Path, index_dir: Path, summary: IngestSummary, progress: Progress) -> list[Fact]:
    """Every facts-bearing file -> `index_dir/facts.parquet`; see the module docstring for the order."""
    cache = _FactsCache(data_dir, index_dir, summary, progress)
    all_facts: list[Fact] = []
    covered: set[str] = set()
    for path in sorted((data_dir / "sec" / "companyfacts").glob("companyfacts_*.json*")):
        try:
            rows = cache.read(path, facts_mod.facts_from_companyfacts, "companyfacts")
        except ResearchDeskError as exc:
            ticker = path.name.split(".")[0].split("_")[-1].upper()
            summary.fail(data_dir, path, "companyfacts", str(exc), ticker)
            continue
        all_facts.extend(rows)
        covered |= {f.ticker for f in rows}
    all_facts += _inline_and_instances(cache, data_dir, summary, covered)
    all_facts += _press_releases(cache, data_dir, summary)
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
            key = digest(f"{file_digest(path)}:{path.name}:{risks_mod.VERSION}")
            target = cache / f"{key}.parquet"
            status = "unchanged" if target.exists() else "parsed"
            if target.exists():
                found = risks_mod.read_risk_parquet(target)
            else:
                progress(f"risk factors {path.name}")
                found = risks_mod.risk_factors_from_filing(path)
                risks_mod.write_risk_factors(found, target)
        except (ResearchDeskError, OSError) as exc:
            summary.fail(data_dir, path, "risk-factors", str(exc))
            continue
        if found:
            summary.ledger.record(rel, "risk-factors", status)
        rows.extend(found)
    risks_mod.write_risk_factors(rows, index_dir / RISKS_FILE)
    return rows
