"""A real local HTTP server laid out like EDGAR, for testing the live client without sec.gov.

Serves files from a folder (URL path = file path; `/www/...` stands for www.sec.gov and
`/data/...` for data.sec.gov), gzip-encodes bodies when the client accepts it (as SEC does),
records every request (monotonic time, path, headers), and can be told to answer a path with
error statuses first (`fail(path, 503)`, `fail(path, 429, {"Retry-After": "1"})`).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "edgar"
DATA = REPO / "data"

AAPL, NVDA = "0000320193", "0001045810"
# (cik, accession, primary document, shipped file holding that document)
SERVED_DOCS = [
    (AAPL, "0000320193-24-000123", "aapl-20240928.htm", DATA / "sec/filings/aapl-10-k-2024-11-01.html.gz"),
    (AAPL, "0000320193-25-000073", "aapl-20250628.htm", DATA / "sec/filings/aapl-10-q-2025-08-01.html.gz"),
    (NVDA, "0001045810-25-000023", "nvda-20250126.htm", DATA / "sec/filings/nvda-10-k-2025-02-26.html.gz"),
    (NVDA, "0001045810-25-000209", "nvda-20250727.htm", DATA / "sec/filings/nvda-10-q-2025-08-27.html.gz"),
    (NVDA, "0001045810-26-000024", "nvda-20260302.htm", FIXTURES / "nvda-20260302.htm.gz"),
]

# NVIDIA's 8-K filed after the NVDA submissions snapshot, as its row in `filings.recent` would read.
# Values from the SGML header of the real submission 0001045810-26-000024.txt (ACCESSION NUMBER,
# FILED AS OF DATE 20260306, CONFORMED PERIOD OF REPORT 20260302, ITEM INFORMATION 5.02 and 9.01,
# ACCEPTANCE-DATETIME 20260306161125, FILM NUMBER 26731070) and its primary document's name.
NVDA_NEW_8K = {
    "accessionNumber": "0001045810-26-000024",
    "filingDate": "2026-03-06",
    "reportDate": "2026-03-02",
    "acceptanceDateTime": "2026-03-06T16:11:25.000Z",
    "act": "34",
    "form": "8-K",
    "fileNumber": "000-23985",
    "filmNumber": "26731070",
    "items": "5.02,9.01",
    "core_type": "XBRL",
    "size": 0,
    "isXBRL": 1,
    "isInlineXBRL": 1,
    "primaryDocument": "nvda-20260302.htm",
    "primaryDocDescription": "8-K",
}


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() when the request line arrived
    path: str
    headers: dict[str, str]


class EdgarServer:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[Request] = []
        self._script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                with server._lock:
                    server.requests.append(Request(time.monotonic(), self.path, dict(self.headers)))
                    queued = server._script.get(self.path)
                    error = queued.pop(0) if queued else None
                if error is not None:
                    status, headers = error
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                file = server.root / self.path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                body = file.read_bytes()
                self.send_response(200)
                if "gzip" in self.headers.get("Accept-Encoding", ""):
                    body = gzip.compress(body)
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> EdgarServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, path: str, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        with self._lock:
            self._script.setdefault(path, []).extend([(status, headers or {})] * times)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    @property
    def www(self) -> str:
        return self.url + "/www"

    @property
    def data(self) -> str:
        return self.url + "/data"


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def submissions(cik: str, new_rows: list[dict] | None = None) -> dict:
    """The trimmed real submissions JSON of a fixture company, optionally with newer rows on top."""
    name = {AAPL: "AAPL", NVDA: "NVDA"}[cik]
    data = json.loads(gzip.decompress((FIXTURES / f"submissions_CIK{cik}_{name}.json.gz").read_bytes()))
    recent = data["filings"]["recent"]
    for row in reversed(new_rows or []):
        for key in recent:
            recent[key].insert(0, row[key])
    return data


def publish_submissions(root: Path, cik: str, data: dict) -> None:
    _put(root / f"data/submissions/CIK{cik}.json", json.dumps(data).encode())


def edgar_tree(root: Path) -> Path:
    """Lay out the fixture files under `root` the way EDGAR's URLs name them."""
    _put(root / "www/files/company_tickers.json", (FIXTURES / "company_tickers.json").read_bytes())
    for cik in (AAPL, NVDA):
        publish_submissions(root, cik, submissions(cik))
    for path in (DATA / "sec/companyfacts").glob("companyfacts_CIK*.json.gz"):
        cik = path.name.split("_")[1][3:]
        _put(root / f"data/api/xbrl/companyfacts/CIK{cik}.json", gzip.decompress(path.read_bytes()))
    for cik, accession, doc, source in SERVED_DOCS:
        folder = f"www/Archives/edgar/data/{int(cik)}/{accession.replace('-', '')}"
        _put(root / folder / doc, gzip.decompress(source.read_bytes()))
    return root
