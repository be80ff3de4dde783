"""Live EDGAR fetch: ticker -> CIK -> new filings since the last run -> files under the data dir.

    company_tickers.json (www.sec.gov/files/)          -> data/sec/company_tickers.json.gz, ticker -> CIK
    submissions/CIK##########.json (data.sec.gov)      -> filings.recent: accession, date, form, document
    Archives/edgar/data/<cik>/<accession>/<document>   -> data/sec/filings/aapl-10-k-2024-11-01.<acc>.html.gz
    api/xbrl/companyfacts/CIK##########.json           -> data/sec/companyfacts/companyfacts_CIK…_AAPL.json.gz

Files land under the names the registered sources already glob (`rag/sources/filings.py`, the
companyfacts glob in `rag/ingest.py`), so `researchdesk ingest` picks them up with no extra step.
The accession number rides in the file name: the filings parser reads it from there and links the
passage to its EDGAR filing index. Writes are gzip (mtime 0, so a re-download of identical bytes
does not look changed to ingest) and atomic (temp file + rename).

"New since the last run" is per CIK and form, in a state file (`var/edgar_state.json`): the
accession numbers already handled. The first run for a form takes its latest N filings and marks
the older ones handled; later runs take every filing of that form not handled yet. A filing whose
download failed is not marked, so the next run tries it again. One failed ticker never stops the
others; the summary says per ticker what was fetched, what was up to date and what failed, and why.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from rag.atomic import write_atomic
from rag.catalog import Company, load_companies, resolve
from rag.edgar_http import EdgarClient
from rag.errors import ResearchDeskError, SourceError

STATE_VERSION = 1
DEFAULT_FORMS = ("10-K", "10-Q", "8-K")
TICKERS_FILE = PurePosixPath("sec/company_tickers.json.gz")
COMPANYFACTS_DIR = PurePosixPath("sec/companyfacts")
# Where each form's primary documents go: the forms the filings source parses (10-K, 10-Q, 8-K and
# amendments) where it globs them; any other form in its own folder, `sec/<form>/`, named the same
# way, and reported as not ingested until a source reads that folder.
FORM_DIRS = {f: "sec/filings" for f in ("10-K", "10-Q", "8-K", "10-K/A", "10-Q/A", "8-K/A")}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Filing:
    """One row of a submissions file's `filings.recent` table."""

    accession: str  # "0000320193-24-000123"
    filing_date: str  # ISO
    form: str  # "10-K", "8-K", "10-K/A", ...
    primary_document: str  # "aapl-20240928.htm"; "" for filings without one
    report_date: str = ""
    items: str = ""  # 8-K item codes, "2.02,9.01"


def parse_submissions(data: dict, source: str = "submissions") -> list[Filing]:
    """`filings.recent` column arrays -> Filing rows, newest first; SourceError if the shape is wrong."""
    try:
        recent = data["filings"]["recent"]
        cols = [recent[k] for k in ("accessionNumber", "filingDate", "form", "primaryDocument")]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"{source}: not an EDGAR submissions file (no filings.recent.{exc})") from exc
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise SourceError(f"{source}: filings.recent columns have different lengths")
    reports = recent.get("reportDate") or [""] * n
    items = recent.get("items") or [""] * n
    rows = [
        Filing(str(a), str(d), str(f), str(p or ""), str(r or ""), str(i or ""))
        for a, d, f, p, r, i in zip(*cols, reports, items, strict=False)
    ]
    return sorted(rows, key=lambda f: (f.filing_date, f.accession), reverse=True)


def document_url(client: EdgarClient, cik: str, filing: Filing) -> str:
    folder = f"{int(cik)}/{filing.accession.replace('-', '')}"
    return client.www(f"Archives/edgar/data/{folder}/{filing.primary_document}")


def filing_path(ticker: str, filing: Filing) -> PurePosixPath:
    """Data-dir-relative name: `sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.html.gz`."""
    form_slug = filing.form.lower().replace("/", "-").replace(" ", "-")
    folder = FORM_DIRS.get(filing.form, f"sec/{filing.form.replace('/', '-').replace(' ', '-')}")
    suffix = PurePosixPath(filing.primary_document).suffix.lower()
    suffix = ".html" if suffix in (".htm", ".html", "") else suffix
    stem = f"{ticker.lower().replace('-', '.')}-{form_slug}-{filing.filing_date}"
    name = f"{stem}.{filing.accession}{suffix}.gz"
    return PurePosixPath(folder) / name


def companyfacts_path(company: Company) -> PurePosixPath:
    return COMPANYFACTS_DIR / f"companyfacts_CIK{company.cik}_{company.ticker}.json.gz"


def write_gzip_atomic(path: Path, data: bytes) -> None:
    """gzip (mtime 0: same bytes in, same file out), written atomically (rag/atomic.py)."""
    write_atomic(path, gzip.compress(data, mtime=0))


def _read_by_source(rel: PurePosixPath) -> list[str]:
    """Registered sources whose glob matches `rel` (empty: nothing will ingest that file yet)."""
    from rag.sources import SOURCES

    return [s.name for s in SOURCES.values() if any(rel.match(p) for p in s.patterns)]


class EdgarState:
    """Per CIK and form: accession numbers already handled. Thread-safe; saved atomically."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.data: dict = {"version": STATE_VERSION, "ciks": {}}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SourceError(
                    f"{path}: unreadable EDGAR state ({exc}); delete it to start over "
                    "(the next fetch then takes the latest filings per form again)"
                ) from exc
            if loaded.get("version") == STATE_VERSION:
                self.data = loaded

    def seen(self, cik: str, form: str) -> set[str] | None:
        """Handled accessions, or None when this CIK/form was never fetched (first run)."""
        with self._lock:
            entry = self.data["ciks"].get(cik, {}).get("forms", {}).get(form)
            return None if entry is None else set(entry["seen"])

    def record(self, cik: str, ticker: str, form: str, seen: set[str], filings: list[Filing]) -> None:
        """Store what is handled for one form; accessions no longer listed by SEC are dropped."""
        listed = {f.accession for f in filings if f.form == form}
        dates = [f.filing_date for f in filings if f.form == form and f.accession in seen]
        with self._lock:
            entry = self.data["ciks"].setdefault(cik, {"ticker": ticker, "forms": {}})
            entry["ticker"] = ticker
            entry["updated"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            entry["forms"][form] = {
                "seen": sorted(seen & listed),
                "last_filing_date": max(dates, default=""),
            }

    def save(self) -> None:
        with self._lock:
            text = json.dumps(self.data, indent=1, sort_keys=True)
        write_atomic(self.path, text)


@dataclass
class TickerResult:
    ticker: str
    cik: str = ""
    fetched: list[str] = field(default_factory=list)  # data-dir-relative paths written this run
    failed: list[str] = field(default_factory=list)  # reasons, each naming the URL or ticker
    unread: list[str] = field(default_factory=list)  # written, but no registered source globs it yet

    @property
    def status(self) -> str:
        if self.failed:
            return "partial" if self.fetched else "failed"
        return "fetched" if self.fetched else "up-to-date"


@dataclass
class FetchSummary:
    tickers: dict[str, TickerResult] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def fetched(self) -> list[str]:
        return [p for r in self.tickers.values() for p in r.fetched]

    @property
    def up_to_date(self) -> list[str]:
        return [t for t, r in self.tickers.items() if r.status == "up-to-date"]

    @property
    def failed(self) -> dict[str, list[str]]:
        return {t: r.failed for t, r in self.tickers.items() if r.failed}

    def to_json(self) -> dict:
        out = asdict(self)
        for t, r in self.tickers.items():
            out["tickers"][t]["status"] = r.status
        return out


def refresh_company_tickers(client: EdgarClient, data_dir: Path, summary: FetchSummary) -> Path:
    """Download SEC's ticker -> CIK list; if that fails, carry on with the local copy and say so."""
    path = data_dir / TICKERS_FILE
    url = client.www("files/company_tickers.json")
    try:
        raw = client.get(url)
        json.loads(raw)  # never replace a good list with an error page
    except (ResearchDeskError, ValueError) as exc:
        if not path.exists():
            raise SourceError(f"cannot fetch {url} and there is no local {path}: {exc}") from exc
        summary.warnings.append(f"using the local {path}: {exc}")
        return path
    write_gzip_atomic(path, raw)
    load_companies.cache_clear()  # the cached ticker list of this process is stale now
    return path


def _select(filings: list[Filing], form: str, seen: set[str] | None, first_run: int) -> list[Filing]:
    rows = [f for f in filings if f.form == form]
    if seen is None:
        return rows[:first_run]
    return [f for f in rows if f.accession not in seen]


def fetch_ticker(
    client: EdgarClient,
    company: Company,
    forms: tuple[str, ...],
    data_dir: Path,
    state: EdgarState,
    first_run: int,
    progress: Progress,
) -> TickerResult:
    """New filings of one company, then its companyfacts when anything new arrived (or none is on disk)."""
    result = TickerResult(company.ticker, company.cik)
    url = client.data(f"submissions/CIK{company.cik}.json")
    try:
        filings = parse_submissions(json.loads(client.get(url)), url)
    except ValueError as exc:
        result.failed.append(f"{url}: not JSON ({exc})")
        return result
    except ResearchDeskError as exc:
        result.failed.append(str(exc))
        return result

    for form in forms:
        seen = state.seen(company.cik, form)
        todo = _select(filings, form, seen, first_run)
        done = set(seen) if seen is not None else {f.accession for f in filings if f.form == form}
        done -= {f.accession for f in todo}
        for filing in sorted(todo, key=lambda f: f.filing_date):
            rel = filing_path(company.ticker, filing)
            if not filing.primary_document:
                result.failed.append(f"{company.ticker} {form} {filing.accession}: no primary document")
                continue
            doc_url = document_url(client, company.cik, filing)
            try:
                body = client.get(doc_url)
                if not body.strip():
                    raise SourceError(f"{doc_url}: empty document")
                write_gzip_atomic(data_dir / rel, body)
            except (ResearchDeskError, OSError) as exc:
                result.failed.append(f"{company.ticker} {form} {filing.filing_date}: {exc}")
                progress(f"  {company.ticker}: FAILED {form} {filing.filing_date} {doc_url}: {exc}")
                continue
            done.add(filing.accession)
            result.fetched.append(str(rel))
            if not _read_by_source(rel):
                result.unread.append(str(rel))
            progress(f"  {company.ticker}: {form} {filing.filing_date} -> {rel} ({len(body) // 1024} KB)")
        state.record(company.cik, company.ticker, form, done, filings)

    facts_rel = companyfacts_path(company)
    if result.fetched or not (data_dir / facts_rel).exists():
        facts_url = client.data(f"api/xbrl/companyfacts/CIK{company.cik}.json")
        try:
            raw = client.get(facts_url)
            json.loads(raw)
            write_gzip_atomic(data_dir / facts_rel, raw)
            result.fetched.append(str(facts_rel))
            progress(f"  {company.ticker}: companyfacts -> {facts_rel} ({len(raw) // 1024} KB)")
        except (ResearchDeskError, ValueError, OSError) as exc:
            result.failed.append(f"{company.ticker} companyfacts: {exc}")
    return result


def fetch_edgar(
    client: EdgarClient,
    tickers: list[str],
    data_dir: Path,
    state_path: Path,
    forms: tuple[str, ...] = DEFAULT_FORMS,
    first_run: int = 2,
    workers: int = 4,
    progress: Progress = lambda msg: None,
) -> FetchSummary:
    """Fetch what is new for every ticker; the shared client keeps all threads within SEC's rate."""
    t0 = time.perf_counter()
    summary = FetchSummary()
    forms = tuple(dict.fromkeys(f.strip().upper() for f in forms if f.strip()))
    companies = load_companies(refresh_company_tickers(client, data_dir, summary))
    state = EdgarState(state_path)

    def one(ticker: str) -> TickerResult:
        try:
            company = resolve(ticker, companies)
        except ResearchDeskError as exc:
            return TickerResult(ticker.strip().upper(), failed=[str(exc)])
        progress(f"{company.ticker}: CIK {company.cik}")
        try:
            result = fetch_ticker(client, company, forms, data_dir, state, first_run, progress)
        except (ResearchDeskError, OSError, ValueError) as exc:  # e.g. disk full: this ticker only
            return TickerResult(company.ticker, company.cik, failed=[f"{company.ticker}: {exc}"])
        state.save()  # after every ticker: a crash later keeps what was fetched so far
        return result

    wanted = list(dict.fromkeys(t.strip().upper() for t in tickers if t.strip()))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(wanted) or 1))) as pool:
        for result in pool.map(one, wanted):
            summary.tickers[result.ticker] = result
    for result in summary.tickers.values():
        for rel in result.unread:
            summary.warnings.append(f"{rel}: no registered source reads this file yet; ingest skips it")
    summary.requests = client.requests
    summary.seconds = time.perf_counter() - t0
    return summary
