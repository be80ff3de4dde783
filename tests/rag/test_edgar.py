"""Live EDGAR client against a real local HTTP server serving real EDGAR responses and documents.

Nothing of ours is mocked: requests go over TCP to `tests/edgar_server.py`, which serves the
trimmed real submissions/company_tickers JSON and the shipped primary documents under EDGAR's
URL layout, and records what arrived (headers, timestamps).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path, PurePosixPath

import pytest

from rag.catalog import load_companies
from rag.edgar import Filing, _read_by_source, fetch_edgar, filing_path, parse_submissions
from rag.edgar_http import EdgarClient, EdgarHTTPError, RateLimiter, _retry_after, check_user_agent
from rag.errors import ConfigError, SourceError
from rag.facts import facts_from_companyfacts
from rag.sources import SOURCES
from rag.sources.filings import parse_filing
from tests.edgar_server import (
    DATA,
    FIXTURES,
    NVDA,
    NVDA_NEW_8K,
    EdgarServer,
    edgar_tree,
    publish_submissions,
    submissions,
)

UA = "Researchdesk Tests tests@researchdesk.example"
TICKERS_PATH = "/www/files/company_tickers.json"


@pytest.fixture
def server(tmp_path: Path):
    srv = EdgarServer(edgar_tree(tmp_path / "edgar")).start()
    yield srv
    srv.stop()


def client(server: EdgarServer, **kw) -> EdgarClient:
    return EdgarClient(UA, www_url=server.www, data_url=server.data, **kw)


@pytest.mark.parametrize("ua", ["", "   ", "research@acme.com", "Acme Research", "Acme research at acme.com"])
def test_refuses_to_fetch_without_a_declared_user_agent(ua: str, server: EdgarServer):
    with pytest.raises(ConfigError, match="RESEARCHDESK_EDGAR_USER_AGENT"):
        EdgarClient(ua, www_url=server.www, data_url=server.data)
    assert server.requests == []


@pytest.mark.parametrize("ua", [UA, "Acme Research research@acme.com", "jane.doe@uni.edu Jane Doe"])
def test_accepts_name_plus_email(ua: str):
    assert check_user_agent(f"  {ua} ") == ua


@pytest.mark.parametrize("rate", [0, -1, 10.5, 100])
def test_rate_above_secs_ceiling_is_refused(rate: float):
    with pytest.raises(ConfigError, match="rate limit"):
        RateLimiter(rate)


def test_fetch_lands_files_readable_by_sources_and_second_run_fetches_nothing(
    server: EdgarServer, tmp_path: Path
):
    data, state = tmp_path / "data", tmp_path / "var" / "edgar_state.json"
    lines: list[str] = []
    first = fetch_edgar(
        client(server), ["AAPL", "nvda", "NOPE"], data, state, forms=("10-K", "10-Q"), first_run=1,
        progress=lines.append,
    )  # fmt: skip
    filings = {
        "sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.html.gz": "aapl-10-k-2024-11-01.html.gz",
        "sec/filings/aapl-10-q-2025-08-01.0000320193-25-000073.html.gz": "aapl-10-q-2025-08-01.html.gz",
        "sec/filings/nvda-10-k-2025-02-26.0001045810-25-000023.html.gz": "nvda-10-k-2025-02-26.html.gz",
        "sec/filings/nvda-10-q-2025-08-27.0001045810-25-000209.html.gz": "nvda-10-q-2025-08-27.html.gz",
    }
    facts = {
        "sec/companyfacts/companyfacts_CIK0000320193_AAPL.json.gz",
        "sec/companyfacts/companyfacts_CIK0001045810_NVDA.json.gz",
    }
    assert set(first.fetched) == set(filings) | facts
    assert first.tickers["AAPL"].status == first.tickers["NVDA"].status == "fetched"
    assert "NOPE" in first.failed and "not an SEC-registered ticker" in first.failed["NOPE"][0]
    for rel, shipped in filings.items():  # the bytes SEC sent, gzipped on write
        got = gzip.decompress((data / rel).read_bytes())
        assert got == gzip.decompress((DATA / "sec/filings" / shipped).read_bytes())
        assert any(rel in line for line in lines)

    # Every request declared the User-Agent and accepted gzip.
    assert len(server.requests) == 9  # tickers + 2 submissions + 4 documents + 2 companyfacts
    assert {r.headers.get("User-Agent") for r in server.requests} == {UA}
    assert all("gzip" in r.headers.get("Accept-Encoding", "") for r in server.requests)

    # The existing sources and facts reader take the files as they are.
    assert load_companies(data / "sec/company_tickers.json.gz")["NVDA"].cik == NVDA
    assert [str(p.relative_to(data)) for p in SOURCES["filings"].files(data)] == sorted(filings)
    doc = parse_filing(data / "sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.html.gz")
    assert (doc.ticker, doc.form, doc.date) == ("AAPL", "10-K", "2024-11-01")
    assert doc.url == (
        "https://www.sec.gov/Archives/edgar/data/320193/000032019324000123/0000320193-24-000123-index.htm"
    )
    assert "1A" in {s.key for s in doc.sections}
    companyfacts = sorted((data / "sec/companyfacts").glob("companyfacts_*.json*"))  # build_facts' glob
    assert [str(p.relative_to(data)) for p in companyfacts] == sorted(facts)
    assert {f.ticker for f in facts_from_companyfacts(companyfacts[0])} == {"AAPL"}

    saved = json.loads(state.read_text())["ciks"][NVDA]["forms"]["10-Q"]
    assert "0001045810-25-000209" in saved["seen"] and saved["last_filing_date"] == "2025-08-27"

    before = len(server.requests)
    second = fetch_edgar(client(server), ["AAPL", "NVDA"], data, state, forms=("10-K", "10-Q"), first_run=1)
    assert second.fetched == [] and second.up_to_date == ["AAPL", "NVDA"] and second.failed == {}
    assert sorted(r.path for r in server.requests[before:]) == sorted(  # no documents, no companyfacts
        [TICKERS_PATH, "/data/submissions/CIK0000320193.json", f"/data/submissions/CIK{NVDA}.json"]
    )


def test_new_filing_since_last_run_is_fetched_and_a_404_is_reported_not_retried(
    server: EdgarServer, tmp_path: Path
):
    data, state = tmp_path / "data", tmp_path / "var" / "edgar_state.json"
    forms = ("10-K", "10-Q", "8-K")
    missing = "/www/Archives/edgar/data/1045810/000104581025000207/nvda-20250827.htm"  # not served

    first = fetch_edgar(client(server), ["NVDA"], data, state, forms=forms, first_run=1)
    nvda = first.tickers["NVDA"]
    assert nvda.status == "partial"
    assert [PurePosixPath(p).name[:21] for p in nvda.fetched] == [
        "nvda-10-k-2025-02-26.",
        "nvda-10-q-2025-08-27.",
        "companyfacts_CIK00010",
    ]
    assert len(nvda.failed) == 1 and "404" in nvda.failed[0] and missing in nvda.failed[0]
    assert len(server.hits(missing)) == 1  # a 404 is final: no retry

    # SEC lists a new 8-K: the next run fetches it, retries the failed one, and nothing else.
    publish_submissions(server.root, NVDA, submissions(NVDA, [NVDA_NEW_8K]))
    second = fetch_edgar(client(server), ["NVDA"], data, state, forms=forms, first_run=1)
    new_8k = "sec/filings/nvda-8-k-2026-03-06.0001045810-26-000024.html.gz"
    assert second.tickers["NVDA"].fetched == [
        new_8k,
        "sec/companyfacts/companyfacts_CIK0001045810_NVDA.json.gz",
    ]
    assert gzip.decompress((data / new_8k).read_bytes()) == gzip.decompress(
        (FIXTURES / "nvda-20260302.htm.gz").read_bytes()
    )
    assert len(server.hits(missing)) == 2 and missing in second.tickers["NVDA"].failed[0]

    third = fetch_edgar(client(server), ["NVDA"], data, state, forms=forms, first_run=1)
    assert third.tickers["NVDA"].fetched == [] and len(server.hits(missing)) == 3


@pytest.mark.parametrize(
    "ticker, form, doc, expected",
    [
        (
            "AAPL",
            "10-K",
            "aapl-20240928.htm",
            "sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.html.gz",
        ),
        ("AAPL", "10-K/A", "a.htm", "sec/filings/aapl-10-k-a-2024-11-01.0000320193-24-000123.html.gz"),
        ("BRK-B", "8-K", "x.html", "sec/filings/brk.b-8-k-2024-11-01.0000320193-24-000123.html.gz"),
        ("AAPL", "DEF 14A", "p.htm", "sec/DEF-14A/aapl-def-14a-2024-11-01.0000320193-24-000123.html.gz"),
        (
            "AAPL",
            "10-K",
            "0000320193-24-000123.txt",
            "sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.txt.gz",
        ),
    ],
)
def test_file_names_follow_the_filings_source_convention(ticker, form, doc, expected):
    filing = Filing("0000320193-24-000123", "2024-11-01", form, doc)
    assert str(filing_path(ticker, filing)) == expected


@pytest.mark.parametrize(
    "rel, readers",
    [
        ("sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.html.gz", ["filings"]),
        ("sec/filings/nvda-8-k-2026-03-06.0001045810-26-000024.html.gz", ["filings"]),
        ("sec/DEF-14A/aapl-def-14a-2026-01-08.0001308179-26-000008.html.gz", []),
    ],
)
def test_written_files_are_checked_against_registered_source_globs(rel: str, readers: list[str]):
    assert _read_by_source(PurePosixPath(rel)) == readers


@pytest.mark.parametrize("threads", [1, 4])
def test_rate_limit_holds_across_threads(server: EdgarServer, threads: int):
    c = client(server, rate=10)

    def work(n: int) -> None:
        for _ in range(n):
            c.get(server.www + "/files/company_tickers.json")

    pool = [threading.Thread(target=work, args=(12 // threads,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stamps = sorted(r.at for r in server.requests)
    assert len(stamps) == 12
    assert stamps[-1] - stamps[0] >= 1.0  # 12 requests at 10/s: 11 intervals of 0.1 s


def test_503_is_retried_with_backoff(server: EdgarServer):
    server.fail(TICKERS_PATH, 503, times=2)
    body = client(server, backoff=0.01).get(server.www + "/files/company_tickers.json")
    assert json.loads(body) == json.loads((FIXTURES / "company_tickers.json").read_text())
    assert len(server.hits(TICKERS_PATH)) == 3


@pytest.mark.parametrize("retry_after", ["1", "http-date"])
def test_429_honours_retry_after(server: EdgarServer, retry_after: str):
    if retry_after == "http-date":  # HTTP dates have whole seconds: ask for 2 s, expect >= 1
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.fail(TICKERS_PATH, 429, {"Retry-After": retry_after})
    client(server, backoff=0.01).get(server.www + "/files/company_tickers.json")
    first, second = server.hits(TICKERS_PATH)
    assert second.at - first.at >= 0.95  # the backoff alone would have waited ~0.01-0.02 s


@pytest.mark.parametrize(
    "status, message",
    [(404, "404 Not Found"), (403, "User-Agent"), (400, "HTTP 400")],
)
def test_client_errors_are_not_retried(server: EdgarServer, status: int, message: str):
    path = "/www/Archives/edgar/data/320193/000032019399000001/missing.htm"
    if status != 404:
        server.fail(path, status, times=3)
    with pytest.raises(EdgarHTTPError, match=message) as info:
        client(server, backoff=0.01).get(server.url + path)
    assert info.value.status == status and path in str(info.value)
    assert len(server.hits(path)) == 1


def test_gives_up_after_max_retries(server: EdgarServer):
    server.fail(TICKERS_PATH, 502, times=10)
    with pytest.raises(EdgarHTTPError, match="giving up after 3 attempts .HTTP 502") as info:
        client(server, backoff=0.01, max_retries=2).get(server.www + "/files/company_tickers.json")
    assert info.value.status == 502 and len(server.hits(TICKERS_PATH)) == 3


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = EdgarClient(UA, www_url=f"http://127.0.0.1:{port}", backoff=0.01, max_retries=2, timeout=2)
    t0 = time.monotonic()
    with pytest.raises(EdgarHTTPError, match="giving up after 3 attempts .connection error"):
        c.get(c.www("files/company_tickers.json"))
    assert c.requests == 3 and time.monotonic() - t0 < 5


def test_unreachable_ticker_list_falls_back_to_the_local_copy(server: EdgarServer, tmp_path: Path):
    data = tmp_path / "data"
    server.fail(TICKERS_PATH, 404, times=2)
    with pytest.raises(SourceError, match="no local"):
        fetch_edgar(client(server), ["AAPL"], data, tmp_path / "state.json", forms=("10-K",), first_run=1)
    (data / "sec").mkdir(parents=True)
    (data / "sec/company_tickers.json.gz").write_bytes(
        gzip.compress((FIXTURES / "company_tickers.json").read_bytes())
    )
    summary = fetch_edgar(
        client(server), ["AAPL"], data, tmp_path / "state.json", forms=("10-K",), first_run=1
    )
    assert any("using the local" in w for w in summary.warnings)
    assert summary.tickers["AAPL"].status == "fetched"


@pytest.mark.parametrize(
    "payload",
    [{}, {"filings": {}}, {"filings": {"recent": {"accessionNumber": ["a"], "filingDate": []}}}],
)
def test_malformed_submissions_raise_source_error(payload: dict):
    with pytest.raises(SourceError, match="submissions"):
        parse_submissions(payload, "submissions")


def test_submissions_rows_come_out_newest_first():
    rows = parse_submissions(submissions(NVDA, [NVDA_NEW_8K]))
    assert rows[0].accession == "0001045810-26-000024" and rows[0].items == "5.02,9.01"
    assert [r.filing_date for r in rows] == sorted((r.filing_date for r in rows), reverse=True)


@pytest.mark.parametrize(
    "value, low, high", [("3", 3, 3), ("0", 0, 0), ("soon", None, None), (None, None, None)]
)
def test_retry_after_parsing(value, low, high):
    got = _retry_after(value)
    assert got == low if low is None else low <= got <= high
