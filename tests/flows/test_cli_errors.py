"""Bad input to the `researchdesk` CLI: one `error:` line, the documented exit code, no traceback.

Run as subprocesses (`python -m flows.cli`), as a user runs it, against throw-away data and var
folders: what is on the terminal is the whole of stdout and stderr, Prefect's log records included.
Most cases fail before any flow (or Prefect) starts and take under a second; the one that runs
flows (slow) uses the test harness's Prefect API (conftest.py) instead of starting its own server.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flows.cli as cli
from flows.logs import OneLineErrors
from flows.reports import RunFailed, nightly_reports

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def cli_run(args: list[str], data: Path, var: Path, prefect_api: bool = False) -> tuple[int, str, str]:
    """`python -m flows.cli ARGS` with settings pointing at `data` and `var` (never the repo's var/)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESEARCHDESK_", "PREFECT_"))}
    env.update(RESEARCHDESK_DATA_DIR=str(data), RESEARCHDESK_VAR_DIR=str(var), PREFECT_HOME=str(var / "prefect"))
    if prefect_api:  # the session's test harness server: no temporary server start (~15 s) per run
        from prefect.settings import PREFECT_API_URL

        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder holding only SEC's real company_tickers list: every ticker is known, nothing ingested."""
    (tmp_path / "data" / "sec").mkdir(parents=True)
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", tmp_path / "data" / "sec")
    return tmp_path / "data"


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def assert_one_line(rc: int, out: str, err: str, code: int, message: str) -> None:
    assert rc == code, (rc, out, err)
    assert "Traceback" not in out + err
    assert err.strip() == error_lines(err)[0], err  # the whole of stderr is that one line
    assert message in err, err


BAD_INPUT = [  # (args, exit code, the message in the one error line)
    (["report", "ZZZZQ"], 2, "ZZZZQ: not an SEC-registered ticker"),
    (["report", "APPL"], 2, "did you mean"),  # a typo: close matches are suggested
    (["report", "../etc"], 2, "'../etc' is not a ticker"),
    (["run", "--tickers", "AAPL,../etc"], 2, "'../etc' is not a ticker"),
    (["run", "--tickers", "AAPL,ZZZZQ", "--no-ingest"], 2, "ZZZZQ: not an SEC-registered ticker"),
    (["ask", "ZZZZQ", "What drove revenue?"], 2, "ZZZZQ: not an SEC-registered ticker"),
    (["report", "AAPL", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["run", "--as-of", "yesterday"], 2, "argument --as-of: must be a date like 2025-06-01, not 'yesterday'"),
    (["report"], 2, "the following arguments are required: ticker"),
    (["eval", "faithfulness", "no-such-run"], 2, "manifest.json not found"),
]


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(a) for a, _, _ in BAD_INPUT])
def test_bad_input_is_one_line_before_any_flow(args, code, message, data: Path, tmp_path: Path):
    rc, out, err = cli_run(args, data, tmp_path / "var")
    assert_one_line(rc, out, err, code, message)
    assert not (tmp_path / "var" / "reports").exists()  # refused before a run (or ingest) started
    assert not (tmp_path / "var" / "index").exists()


def test_missing_data_dir_is_one_line(tmp_path: Path):
    rc, out, err = cli_run(["report", "AAPL"], tmp_path / "nowhere", tmp_path / "var")
    assert_one_line(rc, out, err, 2, f"data directory {tmp_path / 'nowhere'} does not exist")


def test_missing_company_tickers_is_one_line(tmp_path: Path):
    (tmp_path / "data").mkdir()
    rc, out, err = cli_run(["ask", "AAPL", "What drove revenue?"], tmp_path / "data", tmp_path / "var")
    assert_one_line(rc, out, err, 2, "company_tickers.json.gz is missing")


@pytest.mark.parametrize("args", [["--debug", "report", "ZZZZQ"], ["report", "ZZZZQ", "--debug"]])
def test_debug_shows_the_traceback_before_or_after_the_subcommand(args, data: Path, tmp_path: Path):
    rc, out, err = cli_run(args, data, tmp_path / "var")
    assert rc == 2
    assert "Traceback (most recent call last)" in err and "UnknownTickerError" in err
    assert error_lines(err) == [error_lines(err)[-1]] and "ZZZZQ" in error_lines(err)[0]


def test_a_bug_is_an_internal_error_exit_3(monkeypatch, capsys):
    def broken(args, started):
        raise KeyError("sections")

    monkeypatch.setattr(cli, "_command", broken)
    assert cli.main(["eval", "faithfulness", "x"]) == 3
    err = capsys.readouterr().err
    assert err == "error: internal error: KeyError: 'sections' (run again with --debug for the traceback)\n"
    assert cli.main(["eval", "faithfulness", "x", "--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith("--debug for the traceback)\n")


def test_the_filter_keeps_messages_drops_tracebacks_and_repeats():
    """What Prefect's engines log for one failure: the task's exception, its state line, the flow's
    exception, the parent flow's (the same object again); a second, distinct error stays."""
    stream = _Stream()
    handler = logging.StreamHandler(stream)
    handler.addFilter(OneLineErrors())
    logger = logging.getLogger("test_cli_errors.engine")
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        for exc in (ValueError("IBM: nothing ingested"), RunFailed("run r: no report produced", {})):
            try:
                raise exc
            except Exception as caught:
                logger.error("Task run failed with exception: %r", caught, exc_info=True)
                logger.error("Finished in state Failed('Task run encountered an exception %s: %s')", type(caught).__name__, caught)
                logger.exception("Encountered exception during execution: %r", caught)  # parent flow
        logger.info("Finished in state Failed('Flow run encountered an exception: RunFailed: run r: ...')")
    finally:
        logger.removeHandler(handler)
    assert stream.lines == [
        "Task run failed with exception: ValueError('IBM: nothing ingested')",
        "Task run failed with exception: RunFailed('run r: no report produced')",
        "Finished in state Failed('Flow run encountered an exception: RunFailed: run r: ...')",
    ]


class _Stream:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def test_file_lines_name_what_to_act_on_and_count_statuses():
    summary = {
        "files": [
            {"file": "sec/filings/aapl-10-k-2024-11-01.html.gz", "status": "parsed", "sources": ["filings"], "reason": ""},
            {"file": "news/AAPL.csv.gz", "status": "unchanged", "sources": ["news"], "reason": ""},
            {"file": "sec/filings/tsla-10-k.html.gz", "status": "failed", "sources": ["filings"], "reason": "truncated gzip"},
            {"file": "notes.xlsx", "status": "not recognised", "sources": [], "reason": "save it as CSV"},
            {"file": "README.md", "status": "ignored", "sources": [], "reason": "documentation"},
            {"file": "sec/filings/aapl-10-q.html.gz", "status": "parsed", "sources": ["filings"], "reason": ""},
        ]
    }
    assert cli.file_lines(summary) == [
        "  failed         sec/filings/tsla-10-k.html.gz: truncated gzip",
        "  not recognised notes.xlsx: save it as CSV",
        "files: 2 parsed, 1 unchanged, 1 failed, 1 not recognised, 1 ignored",
    ]
    assert cli.file_lines({"documents": 3, "failures": []}) == []  # a summary from before per-file reports


@pytest.mark.slow  # ~35 s: two CLI processes, each importing Prefect and loading the real MiniLM embedder
def test_ingest_warns_of_a_corrupt_filing_and_a_ticker_without_data_is_one_error_line(data: Path, tmp_path: Path):
    """Real flow runs: an ingest that skips a corrupt file (exit 0, warnings, the summary as JSON),
    then a report run that fails in a task (nothing for IBM): Prefect's records are on stderr,
    their tracebacks are not, and `latest` does not move to a run that wrote nothing."""
    filings = data / "sec" / "filings"
    filings.mkdir()
    raw = (DATA / "sec" / "filings" / "tsla-10-k-2025-01-30.html.gz").read_bytes()
    (filings / "tsla-10-k-2025-01-30.html.gz").write_bytes(raw[: len(raw) // 2])  # a truncated download
    (data / "notes.xlsx").write_bytes(b"PK\x03\x04")
    var = tmp_path / "var"
    started = time.perf_counter()
    rc, out, err = cli_run(["ingest", "--json"], data, var, prefect_api=True)
    assert rc == 0, err
    assert "Traceback" not in out + err and error_lines(err) == []
    assert "warning: skipped sec/filings/tsla-10-k-2025-01-30.html.gz:" in err
    *human, last = out.rstrip().splitlines()
    summary = json.loads(last)
    assert [f["file"] for f in summary["failures"]] == ["sec/filings/tsla-10-k-2025-01-30.html.gz"]
    assert any(line.startswith("ingest: 0 new/changed documents") for line in human)
    statuses = {f["file"]: f["status"] for f in summary["files"]}  # the per-file report (rag/ingest_report.py)
    assert statuses["sec/filings/tsla-10-k-2025-01-30.html.gz"] == "failed"
    assert statuses["notes.xlsx"] == "not recognised"
    assert "  failed         sec/filings/tsla-10-k-2025-01-30.html.gz: " in out
    assert "  not recognised notes.xlsx: " in out
    assert any(line.startswith("files: ") and "1 failed, 1 not recognised" in line for line in human)

    rc, out, err = cli_run(["run", "--tickers", "IBM", "--no-ingest"], data, var, prefect_api=True)
    assert rc == 1, err
    assert "Traceback" not in out + err
    assert error_lines(err) == ["error: IBM: nothing ingested (no filings, news, Wikipedia or XBRL facts under data/)"]
    assert "Task run failed with exception: NoDataError" in err  # Prefect's record, one line
    assert "Task run encountered an exception NoDataError" not in err  # its state line repeats it
    assert err.count("Encountered exception during execution: RunFailed") == 1  # not again by the parent
    assert "IBM    failed" in out
    reports = var / "reports"
    (run_dir,) = list(reports.iterdir())
    assert (run_dir / "manifest.json").is_file() and (run_dir / "index.html").is_file()
    assert not (reports / "latest").exists()  # nothing published: `latest` is not moved to it
    # the same run again resumes that folder: same one-line error, not a missing completions file
    rc, out, err = cli_run(["run", "--tickers", "IBM", "--no-ingest"], data, var, prefect_api=True)
    assert rc == 1, err
    assert error_lines(err) == ["error: IBM: nothing ingested (no filings, news, Wikipedia or XBRL facts under data/)"]
    assert list(reports.iterdir()) == [run_dir]
    assert time.perf_counter() - started < 90


def test_latest_moves_only_to_a_run_that_wrote_a_report(fakes):
    good = nightly_reports(tickers=["AAPL"], as_of="2025-06-01")
    latest = Path(good["run_dir"]).parent / "latest"
    assert latest.resolve() == Path(good["run_dir"]).resolve()
    with pytest.raises(RunFailed) as failed:
        nightly_reports(tickers=["ZZZZ"], as_of="2025-06-01", ingest=False)
    bad_dir = Path(failed.value.result["run_dir"])
    assert (bad_dir / "manifest.json").is_file() and (bad_dir / "index.html").is_file()
    assert failed.value.result["status"] == "failed"
    assert latest.resolve() == Path(good["run_dir"]).resolve()  # still the run with a report
    again = nightly_reports(tickers=["AAPL", "ZZZZ"], as_of="2025-06-02", ingest=False)  # partial: one report
    assert latest.resolve() == Path(again["run_dir"]).resolve()


def test_a_report_on_a_never_ingested_index_says_to_ingest_first(tmp_path, monkeypatch):
    """`run --no-ingest` on a fresh var folder: one line naming the fix, not a parquet read error."""
    from flows.reports import build_context_task
    from rag.errors import NoDataError

    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(DATA))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    with pytest.raises(NoDataError, match=r"nothing ingested yet .*facts\.parquet is missing\): run `researchdesk ingest`"):
        build_context_task.fn("AAPL", "2025-06-01", "r1", tmp_path / "audit")
