"""Bad-input matrix (issue 15): each row is (name, input, expected one-line error or flag).

Boundaries: CLI arguments and settings (in-process, `flows.cli.main`: dates, tickers, watchlists,
EDGAR User-Agent, S3 URLs, moderation policy), flow parameters without the CLI (`nightly_reports`,
`ticker_report`), files at ingest (gzip bomb, truncated gzip, PDF page cap, a 50 MB line, UTF-16
and Latin-1), model output (sanitizer bound, repetition, markup through assemble + render). No
traceback, never a crash; caps come from rag/limits.py.
"""

from __future__ import annotations

import gzip
import re
import resource
import shutil
import time
from pathlib import Path

import pytest

import flows.cli as cli
from flows.fetch import fetch_flow
from flows.params import check_ticker_list
from flows.reports import _checked_params, nightly_reports, ticker_report
from models.types import Completion
from rag.catalog import load_companies
from rag.errors import ConfigError, SourceError, UnknownTickerError
from rag.limits import MAX_DECOMPRESSED_BYTES, MAX_MODEL_TEXT_CHARS, MAX_PDF_PAGES, MAX_WATCHLIST
from rag.sources import collect_skips
from rag.sources.filings import parse_filing
from rag.sources.html_text import decompress
from rag.sources.news import parse_news_csv
from reports.assemble import assemble_report
from reports.compose import CLAIM_SYSTEM, SectionPlan, UnitPlan
from reports.context import TickerContext
from reports.model import SourceRef, Verdict
from reports.render import render_html, render_markdown
from reports.sanitize import sanitize_model_text

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at a data folder with SEC's real company_tickers list only."""
    for key in [k for k in __import__("os").environ if k.startswith("RESEARCHDESK_")]:
        monkeypatch.delenv(key)
    (tmp_path / "data" / "sec").mkdir(parents=True)
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "data" / "sec")
    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    return tmp_path


def _not_listed(n: int) -> list[str]:
    """`n` well-shaped tickers SEC does not list (checked against the real company_tickers list)."""
    known = load_companies(DATA / "sec" / "company_tickers.json.gz")
    names = (f"Q{i:05d}X" for i in range(10 * n))
    return [t for t in names if t not in known][:n]


TOMORROW_ERA = "2999-01-01"
RANGE = r"use a date from 1993-01-01 to today \(\d{4}-\d\d-\d\d, America/New_York\)$"
POLICY = "RESEARCHDESK_MODERATION_POLICY"
CLI_ROWS = [  # (name, argv, extra env, exit code, regex on the one stderr line)
    ("path ticker", ["report", "../etc"], {}, 2, r"'\.\./etc' is not a ticker"),
    ("path tickers", ["run", "--tickers", "../a,AAPL,x/y"], {}, 2,
     r"2 entries of --tickers are not tickers \(.*\): '\.\./a', 'x/y'$"),
    ("unknown ticker", ["report", "ZZZZQ"], {}, 2, r"ZZZZQ: not an SEC-registered ticker"),
    ("month 13", ["report", "AAPL", "--as-of", "2024-13-45"], {}, 2, r"must be a date like"),
    ("not a date", ["run", "--as-of", "yesterday"], {}, 2, r"must be a date like"),
    ("as-of 1800", ["report", "AAPL", "--as-of", "1800-01-01"], {}, 2,
     r"^error: --as-of 1800-01-01 is before 1993-01-01, when EDGAR's electronic filings start; " + RANGE),
    ("as-of future", ["run", "--as-of", TOMORROW_ERA, "--no-ingest"], {}, 2,
     r"^error: --as-of 2999-01-01 is in the future \(a report as of it would use today's data\); " + RANGE),
    ("empty watchlist", ["run"], {"RESEARCHDESK_WATCHLIST": ""}, 2,
     r"^error: the watchlist is empty: RESEARCHDESK_WATCHLIST names no ticker; set RESEARCHDESK_WATCHLIST="),
    ("blank watchlist", ["run"], {"RESEARCHDESK_WATCHLIST": " , ,"}, 2, r"the watchlist is empty"),
    ("empty --tickers", ["run", "--tickers", ""], {}, 2, r"the watchlist is empty: --tickers names no ticker"),
    ("comma --tickers", ["run", "--tickers", ","], {}, 2, r"the watchlist is empty: --tickers names no ticker"),
    ("fetch empty --tickers", ["fetch", "--tickers", ","], {}, 2, r"the watchlist is empty: --tickers"),
    ("huge watchlist", ["run"], {"RESEARCHDESK_WATCHLIST": ",".join(f"T{i}" for i in range(20_000))}, 2,
     rf"RESEARCHDESK_WATCHLIST names 20000 tickers, more than rag/limits.py MAX_WATCHLIST={MAX_WATCHLIST}"),
    ("huge fetch watchlist", ["fetch"], {"RESEARCHDESK_WATCHLIST": ",".join(f"T{i}" for i in range(20_000))},
     2, r"names 20000 tickers, more than rag/limits.py MAX_WATCHLIST"),
    ("unknown --tickers", ["run", "--tickers", ",".join(["AAPL", *_not_listed(4999)])], {}, 2,
     r"4999 of 5000 tickers in --tickers are not SEC-registered tickers .*: "
     r"Q00000X, Q00001X, Q00002X, Q00003X, Q00004X \.\.\. \(4994 more\)$"),
    ("all-unknown watchlist", ["run"], {"RESEARCHDESK_WATCHLIST": ",".join(_not_listed(3))}, 2,
     r"3 of 3 tickers in RESEARCHDESK_WATCHLIST are not SEC-registered tickers .*: Q00000X, Q00001X, Q00002X$"),
    ("no user-agent", ["fetch", "--tickers", "AAPL"], {}, 2,
     r"EDGAR requires a declared User-Agent .*set RESEARCHDESK_EDGAR_USER_AGENT"),
    ("name-only user-agent", ["fetch"], {"RESEARCHDESK_EDGAR_USER_AGENT": "Acme"}, 2,
     r"\(got 'Acme'\): set RESEARCHDESK_EDGAR_USER_AGENT"),
    ("s3 no bucket", ["ingest"], {"RESEARCHDESK_RESULT_STORE": "s3://"}, 2,
     r"RESEARCHDESK_RESULT_STORE: .*'s3://' names no bucket"),
    ("s3 empty bucket", ["ingest"], {"RESEARCHDESK_RESULT_STORE": "s3:///key"}, 2,
     r"RESEARCHDESK_RESULT_STORE: .*names no bucket"),
    ("s3 bad bucket", ["ingest"], {"RESEARCHDESK_RESULT_STORE": "s3://Bad_Bucket!/x"}, 2,
     r"RESEARCHDESK_RESULT_STORE: .*'Bad_Bucket!' is not a valid S3 bucket name"),
    ("s3 secret not echoed", ["ingest"], {"RESEARCHDESK_RESULT_STORE": "s3://AKEY:SECRETX@Bad_Bucket/x"}, 2,
     r"'s3://\*\*\*@Bad_Bucket/x': 'Bad_Bucket' is not a valid S3 bucket name"),
    ("s3 secret with slash", ["ingest"], {"RESEARCHDESK_RESULT_STORE": "s3://AKEY:SECRETX/x+y@Bad_Bucket/x"}, 2,
     r"'s3://\*\*\*@Bad_Bucket/x': 'Bad_Bucket' is not a valid S3 bucket name"),
    ("http result store", ["ingest"], {"RESEARCHDESK_RESULT_STORE": "https://example.com/results"}, 2,
     r"RESEARCHDESK_RESULT_STORE: .*an HTTP URL cannot hold results"),
    ("http model source", ["ingest"], {"RESEARCHDESK_CHAT_SOURCE": "http://example.com/m.tar"}, 2,
     r"RESEARCHDESK_CHAT_SOURCE: .*is not an s3:// URL"),
    ("s3 source no key", ["ingest"], {"RESEARCHDESK_CHAT_SOURCE": "s3://models"}, 2,
     r"RESEARCHDESK_CHAT_SOURCE: .*names no key"),
    ("s3 source not tar", ["ingest"], {"RESEARCHDESK_CHAT_SOURCE": "s3://models/m.zip"}, 2,
     r"RESEARCHDESK_CHAT_SOURCE: .*must name a \.tar, \.tar\.gz or \.tgz archive"),
    ("bad policy json", ["report", "ZZZZQ"], {POLICY: "{bad"}, 2, POLICY),
    ("policy unknown label", ["run"], {POLICY: '{"nonsense": "publish"}'}, 2,
     rf"{POLICY}: moderation policy: unknown labels \['nonsense'\] \(known: "),
    ("policy unknown action", ["run"], {POLICY: '{"casual": "shrug"}'}, 2,
     rf"{POLICY}: moderation policy: unknown actions \['shrug'\]"),
    ("policy not an object", ["run"], {POLICY: '["publish"]'}, 2, POLICY),
]


def test_a_stale_watchlist_entry_warns_and_the_others_still_run(env, monkeypatch, capsys):
    """A delisted company in the standing watchlist must not stop the nightly: one warning line,
    and the flow gets every ticker (it fails the unknown one alone, as its own tests show)."""
    seen = []
    monkeypatch.setattr(cli, "_reports", lambda args, tickers, started: seen.append(tickers) or 0)
    monkeypatch.setenv("RESEARCHDESK_WATCHLIST", "aapl,Q00000X,NVDA")
    assert cli.main(["run", "--no-ingest"]) == 0
    err = capsys.readouterr().err.strip()
    assert seen == [["AAPL", "Q00000X", "NVDA"]]
    assert re.fullmatch(
        r"warning: 1 of 3 tickers in RESEARCHDESK_WATCHLIST are not SEC-registered tickers \(.*\): "
        r"Q00000X; their reports fail, the others are written", err
    ), err


@pytest.mark.parametrize("name, argv, extra, code, pattern", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_row(name, argv, extra, code, pattern, env, monkeypatch, capsys):
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    started = time.perf_counter()
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusals (a malformed date) exit from parse_args
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err.strip()), err
    assert "SECRETX" not in err
    assert time.perf_counter() - started < 10, "refused before any flow starts"


def test_check_ticker_list_dedupes_in_order_and_upper_cases():
    assert check_ticker_list(["nvda", " AAPL", "NVDA", "aapl", "", "msft"], "--tickers") == ["NVDA", "AAPL", "MSFT"]
    assert cli.check_tickers(["brk-b", "AAPL", "aapl"], DATA / "sec" / "company_tickers.json.gz") == ["BRK-B", "AAPL"]
    assert len(check_ticker_list(["AAPL"] * 20_000, "x")) == 1  # the cap counts distinct tickers


FLOW_ROWS = [  # (name, call of the flow's function, error type, regex on its one-line message)
    ("path ticker", lambda: nightly_reports.fn(tickers=["AAPL", "../x"]), UnknownTickerError,
     r"^'\.\./x' is not a ticker \(1-10 letters"),
    ("report path ticker", lambda: ticker_report.fn("../x"), UnknownTickerError, r"^'\.\./x' is not a ticker"),
    ("future as_of", lambda: nightly_reports.fn(as_of=TOMORROW_ERA), ConfigError,
     r"^as_of 2999-01-01 is in the future .*" + RANGE),
    ("1800 as_of", lambda: ticker_report.fn("AAPL", as_of="1800-01-01"), ConfigError,
     r"^as_of 1800-01-01 is before 1993-01-01, when EDGAR's electronic filings start"),
    ("bad as_of", lambda: nightly_reports.fn(as_of="2024-02-30"), ConfigError, r"^as_of must be a date like"),
    ("empty tickers", lambda: nightly_reports.fn(tickers=[]), ConfigError,
     r"^the watchlist is empty: the tickers parameter names no ticker"),
    ("huge tickers", lambda: nightly_reports.fn(tickers=[f"T{i}" for i in range(20_000)]), ConfigError,
     r"the tickers parameter names 20000 tickers, more than rag/limits.py MAX_WATCHLIST=5000"),
    ("fetch path ticker", lambda: fetch_flow.fn(tickers=["../x"]), UnknownTickerError, r"^'\.\./x' is not a ticker"),
    ("fetch empty tickers", lambda: fetch_flow.fn(tickers=[" "]), ConfigError, r"^the watchlist is empty"),
]


@pytest.mark.parametrize("name, call, error, pattern", FLOW_ROWS, ids=[r[0] for r in FLOW_ROWS])
def test_flow_parameter_row(name, call, error, pattern, env):
    """Flow parameters given without the CLI (a deployment, a script) fail with the CLI's line,
    before a run folder exists: nothing is created under var/."""
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message and re.search(pattern, message), message
    assert not (env / "var" / "reports").exists()


def test_empty_watchlist_flow_parameter(env, monkeypatch):
    monkeypatch.setenv("RESEARCHDESK_WATCHLIST", "")
    with pytest.raises(ConfigError, match=r"^the watchlist is empty: RESEARCHDESK_WATCHLIST names no ticker"):
        nightly_reports.fn()
    assert _checked_params(["aapl", "NVDA", "AAPL"], None) == (["AAPL", "NVDA"], None)


@pytest.mark.integration  # the in-process Prefect API starts for it: 15-55 s on 2 busy cores
def test_real_flow_call_refuses_a_path_ticker(env):
    """The Prefect flow itself (not `.fn`): the parameter check runs inside the flow run."""
    with pytest.raises(UnknownTickerError, match=r"'\.\./x' is not a ticker"):
        ticker_report("../x")
    assert not (env / "var" / "reports").exists()


def test_gzip_bomb_is_refused_with_bounded_memory(tmp_path: Path):
    """1 GB of zeros compressed to ~1 MB: refused at the cap, never fully decompressed."""
    bomb = tmp_path / "bomb.html.gz"
    member = gzip.compress(bytes(16 * 2**20), compresslevel=9)  # 16 MB of zeros in ~16 KB
    bomb.write_bytes(member * 64)  # 64 gzip members, read as one stream: 1 GB, compressed once
    assert bomb.stat().st_size < 2 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(SourceError, match=r"expands past 256 MB.*MAX_DECOMPRESSED_BYTES"):
        decompress(bomb.read_bytes(), bomb)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < 2 * MAX_DECOMPRESSED_BYTES + 64 * 2**20, grown  # bounded by the cap, not 1 GB


def test_binary_garbage_named_gz_is_one_line(tmp_path: Path):
    junk = tmp_path / "x.html.gz"
    junk.write_bytes(b"\x00\xff" * 1000)
    with pytest.raises(SourceError, match="named .gz but is not gzip data"):
        decompress(junk.read_bytes(), junk)


def test_pdf_page_cap(tmp_path: Path):
    pdfium = pytest.importorskip("pypdfium2")
    from rag.sources.pdf_text import page_lines

    doc = pdfium.PdfDocument.new()
    for _ in range(MAX_PDF_PAGES + 5):
        doc.new_page(200, 200)
    path = tmp_path / "big.pdf"
    doc.save(str(path))
    doc.close()
    with collect_skips() as skips:
        pages = page_lines(path.read_bytes(), path)
    assert len(pages) == MAX_PDF_PAGES
    assert any(f"{MAX_PDF_PAGES + 5} pages, read the first {MAX_PDF_PAGES}" in s for s in skips), skips


MODEL_ROWS = [  # (name, model output, substring that must not survive)
    ("script tag", "Revenue rose [1]. <script>alert(1)</script>", "<script"),
    ("javascript link", "See [this](javascript:alert(1)) [1].", "javascript:"),
    ("encoded script", "&lt;script&gt;alert(1)&lt;/script&gt;", "<script"),
]


@pytest.mark.parametrize("name, text, banned", MODEL_ROWS, ids=[r[0] for r in MODEL_ROWS])
def test_model_output_row(name, text, banned):
    assert banned not in sanitize_model_text(text).lower()


def test_ten_mb_model_output_is_cut_quickly():
    text = "Revenue rose 5% [1]. " * (10 * 2**20 // 21)
    started = time.perf_counter()
    out = sanitize_model_text(text)
    assert time.perf_counter() - started < 2.0
    assert len(out) <= MAX_MODEL_TEXT_CHARS


def test_empty_model_output_is_empty():
    assert sanitize_model_text("") == ""


# -- files ------------------------------------------------------------------------------------

HEADER = "title,published,body\n"
FIFTY_MB = 50 * 2**20


@pytest.fixture
def news_dir(tmp_path: Path) -> Path:
    """<data>/news next to SEC's company_tickers list (the news reader tags tickers with it)."""
    (tmp_path / "data" / "sec").mkdir(parents=True)
    (tmp_path / "data" / "news").mkdir()
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "data" / "sec")
    return tmp_path / "data" / "news"


ROW = "Apple opens a store in Paris,2025-01-02,Apple Inc. opened its largest European store in Paris.\n"
FILE_ROWS = [  # (name, file name, bytes, regex on the SourceError, or on a skip reason when parsed)
    ("50 MB field, last row", "AAPL.csv", (HEADER + ROW + "Big,2025-01-03," + "x" * FIFTY_MB).encode(),
     r"skip: row 2: malformed CSV \(field larger than field limit \(131072\)\); the rest of the file was not read"),
    ("50 MB field, only row", "AAPL.csv", (HEADER + "Big,2025-01-03," + "x" * FIFTY_MB).encode(),
     r"error: .*AAPL\.csv: news CSV has a header but no articles: all 1 row dropped: "
     r"1 malformed CSV \(field larger than field limit \(131072\)\)"),
    ("50 MB header", "AAPL.csv", ("title," + "x" * FIFTY_MB + "\n").encode(),
     r"error: .*malformed CSV header \(field larger than field limit \(131072\)\)"),
    ("UTF-16 CSV", "AAPL.csv", (HEADER + ROW).encode("utf-16"),
     r"error: .*not UTF-8 text \(NUL bytes: binary or UTF-16; save it as UTF-8\)"),
    ("Latin-1 CSV", "AAPL.csv", (HEADER + ROW.replace("Paris.", "Paris, caf\u00e9 \u00e0 la carte.")).encode("latin-1"),
     r"skip: not UTF-8 \(invalid continuation byte at byte \d+\): read as Windows-1252"),
    ("truncated gzip CSV", "AAPL.csv.gz", (DATA / "news" / "AAPL.csv.gz").read_bytes()[:3000],
     r"error: .*corrupt or truncated gzip \(Compressed file ended before the end-of-stream marker"),
]


@pytest.mark.parametrize("name, filename, raw, pattern", FILE_ROWS, ids=[r[0] for r in FILE_ROWS])
def test_news_file_row(name, filename, raw, pattern, news_dir):
    path = news_dir / filename
    path.write_bytes(raw)
    del raw
    started = time.perf_counter()
    try:
        with collect_skips() as skips:
            docs = parse_news_csv(path)
        lines = [f"skip: {s}" for s in skips]
        assert docs and all(d.ticker == "AAPL" for d in docs)  # the good row is kept
    except SourceError as exc:
        lines = [f"error: {exc}"]
    assert time.perf_counter() - started < 5
    assert all("\n" not in line and len(line) < 1000 for line in lines), lines  # bounded, one line each
    assert any(re.search(pattern, line) for line in lines), lines


FILING = next((DATA / "sec" / "filings").glob("aapl-10-q-*.html.gz"))


def test_filing_html_on_one_50_mb_line_is_refused_in_seconds(tmp_path: Path):
    path = tmp_path / FILING.name.removesuffix(".gz")
    path.write_bytes(b"<html><body><p>" + b"A" * FIFTY_MB + b"</p></body></html>")
    started = time.perf_counter()
    with pytest.raises(SourceError, match=r"no 10-Q Item headings found") as raised:
        parse_filing(path)
    assert time.perf_counter() - started < 15 and "\n" not in str(raised.value)


def test_real_filing_without_newlines_still_parses(tmp_path: Path):
    raw = gzip.decompress(FILING.read_bytes())
    path = tmp_path / FILING.name.removesuffix(".gz")
    path.write_bytes(raw.replace(b"\n", b" ").replace(b"\r", b" "))
    assert parse_filing(path).sections  # one long line is markup like any other


@pytest.mark.parametrize(
    "name, encode, pattern",
    [
        ("UTF-16", lambda text: text.encode("utf-16"), r"not HTML text \(NUL bytes: UTF-16 or binary\); save it as UTF-8"),
        ("UTF-16 no BOM", lambda text: text.encode("utf-16-le"), r"NUL bytes: UTF-16 or binary"),
        ("Latin-1", lambda text: text.encode("latin-1", "replace"), None),
    ],
)
def test_filing_in_another_encoding(name, encode, pattern, tmp_path: Path):
    path = tmp_path / FILING.name.removesuffix(".gz")
    path.write_bytes(encode(gzip.decompress(FILING.read_bytes()).decode("utf-8")))
    if pattern is None:  # lxml reads Latin-1 markup; the text survives (accents may be wrong)
        assert parse_filing(path).sections
        return
    with pytest.raises(SourceError, match=pattern):
        parse_filing(path)


def test_truncated_gzip_filing_is_one_line(tmp_path: Path):
    path = tmp_path / FILING.name
    path.write_bytes(FILING.read_bytes()[:5000])
    with pytest.raises(SourceError, match=r"corrupt or truncated gzip") as raised:
        parse_filing(path)
    assert "\n" not in str(raised.value)


# -- model output through assemble + render ------------------------------------------------------

SOURCE = (
    "Total net sales increased 2% or $7.8 billion during 2024 compared to 2023. The increase was driven by "
    "higher net sales of Services, partially offset by lower net sales of iPhone and Wearables."
)
GOOD = "Total net sales increased 2% during 2024, driven by higher net sales of Services"
OK = Verdict(label="casual", action="publish", scores={}, margin=1.0, reason="")


def _report(text: str):
    """A report whose one model answer is `text`, built as the publish task builds it."""
    unit = UnitPlan(
        request_id="AAPL:financials:0", mode="claim", source_map={1: 3}, source_texts={1: SOURCE},
        system=CLAIM_SYSTEM, user=f"{SOURCE}\n\nSummarize.", question="Summarize.", max_new_tokens=72,
        allowed_numbers=[], allowed_citations=[], group="g0",
    )
    src = SourceRef(
        n=3, passage_id="p3", corpus="filings", ticker="AAPL", form="10-K", date="2024-11-01",
        title="Apple Inc. 10-K 2024", section="Item 7. MD&A", url="https://www.sec.gov/x.htm", excerpt=SOURCE,
    )
    plan = SectionPlan(key="financials", title="Financial performance", units=[unit], sources=[3])
    ctx = TickerContext(
        ticker="AAPL", company="Apple Inc.", cik="0000320193", as_of="2025-06-01", sources=[src],
        facts=None, facts_text="", sections=[plan], documents=[], warnings=[],
    )
    completions = {unit.request_id: Completion(unit.request_id, text)}
    return assemble_report(ctx, completions, {unit.request_id: OK}, "run-1", "m@1", generated_at="2025-06-02T00:00:00Z")


RENDER_ROWS = [  # (name, model output): a supported sentence wrapped in hostile markup
    ("script tag", f"{GOOD}. <script>alert(1)</script>"),
    ("script before", f"<script>alert(1)</script>{GOOD}."),
    ("javascript link", f"{GOOD.replace('Services', '[Services](javascript:alert(1))')}."),
    ("javascript autolink", f"{GOOD} <javascript:alert(1)>."),
    ("encoded script", f"&lt;script&gt;alert(1)&lt;/script&gt;{GOOD}."),
    ("double encoded", f"&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;{GOOD}."),
    ("event handler", f'<img src=x onerror="alert(1)">{GOOD}.'),
    ("unclosed handler", f"{GOOD}. <svg onload=alert(1)"),
    ("10 MB", f"{GOOD}. " + "<b onmouseover=alert(1)>x</b> " * (10 * 2**20 // 30)),
]
_HANDLER = re.compile(r"<[^>]*\son\w+\s*=", re.I)


@pytest.mark.parametrize("name, text", RENDER_ROWS, ids=[r[0] for r in RENDER_ROWS])
def test_model_output_through_assemble_and_render(name, text):
    started = time.perf_counter()
    report = _report(text)
    html, md = render_html(report), render_markdown(report)
    assert time.perf_counter() - started < 10
    for out in (html, md):
        low = out.lower()
        assert "<script" not in low and "javascript:" not in low and "alert(1)" not in low
        assert not _HANDLER.search(out)
        assert "onerror" not in low and "onload" not in low and "onmouseover" not in low
    assert len(html) < 200_000 and len(md) < 50_000
    (section,) = report.sections
    shown = " ".join(p.text for p in section.paragraphs)
    assert shown or section.dropped  # published, or dropped with a reason the audit shows
    if name != "10 MB":
        assert "Total net sales increased 2% during 2024" in shown, section.dropped


REPEAT_ROWS = [  # (name, runaway model output, regex on the reason the audit shows)
    ("same sentence x50,000", "The company grew. " * 50_000, r"the same sentence twice"),
    ("5-gram loop", "revenue grew as demand rose and " * 20_000, r"word \d-grams are repeats|times in a row"),
    ("numbers loop", " ".join(f"Revenue was {i} million." for i in range(20_000)), r"times with other numbers"),
]


@pytest.mark.parametrize("name, text, pattern", REPEAT_ROWS, ids=[r[0] for r in REPEAT_ROWS])
def test_endless_repetition_is_cut_and_flagged(name, text, pattern):
    started = time.perf_counter()
    report = _report(text)
    html = render_html(report)
    assert time.perf_counter() - started < 10
    (section,) = report.sections
    assert not any(p.origin == "model" for p in section.paragraphs)  # none of the loop is published
    reasons = [d.reason for d in section.dropped]
    assert any(re.search(pattern, r) for r in reasons), reasons
    assert all(len(d.text) <= 500 for d in section.dropped)  # the audit quotes a bounded piece
    assert len(html) < 200_000
