"""Every file under the data folder, and what ingest did with it: the per-file part of the summary.

Why a full walk and not only the files the sources matched: a research team drops whatever it has
into the data folder, and a file that no source recognises used to vanish without a word (29 files
reported of 35 placed). Now every file gets one entry: parsed, unchanged, partly parsed, failed
(why), set aside (recognised but deliberately not used, and why), ignored (documentation, hidden
files, XBRL linkbases) or not recognised, with what would make it recognised.

The stages of ingest record what they did in a `FileLedger`; `file_report` walks the folder at the
end and classifies the rest. The summary types live here too (not in rag/ingest.py) so the stages
in rag/ingest.py and rag/filing_tables.py share them without importing each other.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

SUMMARY_FILE = "ingest_summary.json"

STATUSES = ("parsed", "unchanged", "partly parsed", "failed", "set aside", "not recognised", "ignored")


@dataclass
class FileEntry:
    """One file under the data folder; `file` is relative to it, with forward slashes."""

    file: str
    status: str  # one of STATUSES
    sources: list[str] = field(default_factory=list)  # registry / facts readers that used the file
    reason: str = ""


@dataclass
class _Use:
    sources: list[str] = field(default_factory=list)
    status: str = ""
    reasons: list[str] = field(default_factory=list)


# Worst first: a file parsed for passages whose facts failed is reported as failed.
_RANK = {"failed": 0, "partly parsed": 1, "parsed": 2, "unchanged": 3, "set aside": 4, "ignored": 5}


class FileLedger:
    """What each ingest stage did with a file; several stages may use the same file (a 10-K gives
    passages, facts and risk factors)."""

    def __init__(self) -> None:
        self._uses: dict[str, _Use] = {}

    def record(self, rel: str, source: str, status: str, reason: str = "") -> None:
        use = self._uses.setdefault(PurePosixPath(Path(rel)).as_posix(), _Use())
        if source and source not in use.sources:
            use.sources.append(source)
        if not use.status or _RANK[status] < _RANK[use.status]:
            use.status = status
        if reason and reason not in use.reasons:
            use.reasons.append(reason)

    def __contains__(self, rel: str) -> bool:
        return rel in self._uses

    def entry(self, rel: str) -> FileEntry:
        use = self._uses[rel]
        return FileEntry(rel, use.status, list(use.sources), "; ".join(use.reasons))


_LINKBASE_RE = re.compile(r"_(cal|def|lab|pre)\.xml$")
_DOCS = {"readme", "license", "licence", "notice", "changelog"}
_KNOWN_DIRS = (
    "sec/filings",
    "sec/submissions",
    "sec/pdf",
    "sec/xbrl",
    "sec/companyfacts",
    "news",
    "wikipedia",
)


def _ignored(rel: PurePosixPath) -> str:
    """Why a file is not data at all, or ""."""
    name = rel.name.lower().removesuffix(".gz")
    if any(part.startswith(".") for part in rel.parts):
        return "hidden file"
    if name.split(".")[0] in _DOCS or name.endswith((".md", ".rst")):
        return "documentation"
    if _LINKBASE_RE.search(name) or name.endswith(".xsd"):
        return "XBRL schema or linkbase (labels, calculations): holds no facts"
    return ""


def _hint(rel: PurePosixPath) -> str:
    """What would make an unrecognised file recognised."""
    name = rel.name.lower()
    bare = name.removesuffix(".gz")
    ext = PurePosixPath(bare).suffix
    folder = rel.parent.as_posix()
    nested = next((d for d in _KNOWN_DIRS if folder.startswith(d + "/")), "")
    if nested:
        return f"subfolders are not searched: move it into {nested}/"
    if bare.startswith("companyfacts") and ext == ".json":
        return (
            "EDGAR companyfacts JSON: put it in sec/companyfacts/, named "
            "companyfacts_CIK<10 digits>_TICKER.json"
        )
    if bare.endswith("_htm.xml") or (ext == ".xml" and folder.startswith("sec")):
        return "an XBRL instance document? put it in sec/xbrl/"
    hints = {
        ".htm": "an SEC filing (10-K, 10-Q, 8-K or exhibit)? put it in sec/filings/, named like "
        "aapl-10-k-2024-11-01.htm",
        ".txt": "a full EDGAR submission (.txt with <SEC-HEADER>)? put it in sec/submissions/, named like "
        "aapl-8-k.0000320193-24-000123.txt",
        ".pdf": "a filing as PDF? put it in sec/pdf/",
        ".csv": "news? put it in news/ (CSV with a title and a date column)",
        ".xlsx": "spreadsheets are not read: save it as CSV (UTF-8) into news/",
        ".zip": "archives are not read: unpack it into the data folder",
    }
    for key, alts in {
        ".htm": (".html",),
        ".csv": (".tsv",),
        ".xlsx": (".xls", ".ods"),
        ".zip": (".tar", ".7z"),
    }.items():
        if ext in alts:
            ext = key
    if ext in (".json", ".jsonl", ".ndjson", ".rss", ".atom", ".xml"):
        return "news (JSON, JSON Lines, RSS, Atom)? put it in news/; Wikipedia articles (.jsonl): wikipedia/"
    if ext in hints:
        return hints[ext]
    kind = f"{ext} files" if ext else "files without an extension"
    return f"no source reads {kind} (data/README.md says what goes where)"


def _outside(key: str, looked_at: set[str]) -> bool:
    """A file in a source folder (sec/filings/, news/, ...) that this filtered run did not read."""
    in_source_dir = any(key.startswith(d + "/") for d in _KNOWN_DIRS)
    return in_source_dir and not any(key.startswith(d) for d in looked_at)


def file_report(data_dir: Path, ledger: FileLedger, looked_at: set[str] | None = None) -> list[FileEntry]:
    """One entry per file under `data_dir`, sorted by path.

    `looked_at`: the top folders this run read (a news-only run reads `news/`); files elsewhere that
    a source would read are reported as not looked at, not as unrecognised.
    """
    out: list[FileEntry] = []
    for path in sorted(p for p in Path(data_dir).rglob("*") if p.is_file()):
        rel = PurePosixPath(path.relative_to(data_dir).as_posix())
        key = rel.as_posix()
        if key in ledger:
            out.append(ledger.entry(key))
        elif key in ("sec/company_tickers.json", "sec/company_tickers.json.gz"):
            out.append(
                FileEntry(key, "parsed", ["company-tickers"], "ticker -> CIK list (coverage, news tags)")
            )
        elif why := _ignored(rel):
            out.append(FileEntry(key, "ignored", [], why))
        elif looked_at is not None and _outside(key, looked_at):
            out.append(FileEntry(key, "ignored", [], "not part of this run (sources filter)"))
        else:
            out.append(FileEntry(key, "not recognised", [], _hint(rel)))
    return out


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
    files: list[FileEntry] = field(default_factory=list)  # every file under the data dir (file_report)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    # what the stages did per file while the run is under way; not saved (`files` is its result)
    ledger: FileLedger = field(default_factory=lambda: FileLedger(), repr=False, compare=False)

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("ledger")
        return out

    @classmethod
    def read(cls, index_dir: Path) -> IngestSummary | None:
        path = index_dir / SUMMARY_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["failures"] = [FileFailure(**f) for f in data.get("failures", [])]
        data["skips"] = [FileSkip(**s) for s in data.get("skips", [])]
        data["files"] = [FileEntry(**e) for e in data.get("files", [])]
        return cls(**data)

    def failures_for(self, ticker: str) -> list[FileFailure]:
        return [f for f in self.failures if f.ticker == ticker]

    def fail(self, data_dir: Path, path: Path, source: str, error: str, ticker: str = "") -> None:
        """Record a file that a stage could not use at all."""
        rel = str(path.relative_to(data_dir))
        self.failures.append(FileFailure(rel, ticker or ticker_from_filename(path), source, error))


def ticker_from_filename(path: Path) -> str:
    """`aapl-10-k-2024-11-01.html.gz` -> AAPL, `NVDA.csv.gz` -> NVDA; "" when the name has no ticker."""
    m = re.match(r"([A-Za-z]{1,5})[-_.]", path.name)
    head = m.group(1).upper() if m else ""
    return "" if head in {"COMPANIES", "COMPANYFACTS"} else head


def finish_report(summary: IngestSummary, data_dir: Path, looked_at: set[str] | None) -> None:
    """Fill `summary.files`: what the stages recorded, failures and partial skips (carried-over
    ones included), then every other file under the data dir."""
    for f in summary.failures:
        summary.ledger.record(f.file, f.source, "failed", f.error)
    for s in summary.skips:
        summary.ledger.record(s.file, s.source, "partly parsed", s.reason)
    summary.files = file_report(data_dir, summary.ledger, looked_at)


def status_counts(entries: list[FileEntry]) -> dict[str, int]:
    """{"parsed": 31, "failed": 1, ...} in STATUSES order, zero counts left out."""
    counts = Counter(e.status for e in entries)
    return {s: counts[s] for s in STATUSES if counts[s]}
