"""Resume, per-job failures, source-filtered ingest and the orchestration settings, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.artifacts import artifact_key, report_link
from flows.ingest import ingest_flow
from flows.reports import RunFailed, nightly_reports
from flows.runtime import result_storage, run_key, section_key, storage_ref, task_runner
from flows.settings import Settings
from rag.errors import ConfigError
from rag.ingest import IngestSummary
from tests.flows.conftest import DATA


@pytest.fixture
def two_tickers(fakes, sample_data: Path):
    """AAPL and NVDA both complete (NVDA's 10-K, companyfacts and news added to the sample)."""
    import shutil

    shutil.copy(DATA / "sec" / "filings" / "nvda-10-k-2025-02-26.html.gz", sample_data / "sec" / "filings")
    shutil.copy(next((DATA / "sec" / "companyfacts").glob("*NVDA*")), sample_data / "sec" / "companyfacts")
    shutil.copy(DATA / "news" / "NVDA.csv.gz", sample_data / "news")
    return fakes


def test_rerun_resumes_the_same_run_folder_and_publishes_nothing_twice(two_tickers, monkeypatch):
    monkeypatch.setenv("RESEARCHDESK_GENERATION_JOB_TICKERS", "1")
    first = nightly_reports(tickers=["AAPL", "NVDA"], as_of="2025-06-01")
    run_dir = Path(first["run_dir"])
    assert first["status"] == "completed" and first["model"]["chat"]["jobs"] == 2
    units = {  # generation units per ticker, from the contexts the run wrote
        t: sum(len(s["units"]) for s in json.loads((run_dir / "audit" / f"context-{t}.json").read_text())["sections"])
        for t in ("AAPL", "NVDA")
    }
    assert [len(call) for call in two_tickers.calls] == [units["AAPL"], units["NVDA"]]  # one job per ticker
    stamps = {p.name: p.stat().st_mtime_ns for p in run_dir.glob("*.html")}

    second = nightly_reports(tickers=["NVDA", "AAPL"], as_of="2025-06-01", ingest=False)
    assert second["run_dir"] == first["run_dir"]  # same (as_of, tickers, settings) -> same folder
    assert len(two_tickers.calls) == 2  # nothing generated again
    assert second["resume"]["resumed_tickers"] == ["NVDA", "AAPL"]
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.glob("*.html") if p.name != "index.html"} == {
        k: v for k, v in stamps.items() if k != "index.html"
    }
    assert second["tickers"]["AAPL"]["sections"] == first["tickers"]["AAPL"]["sections"]

    fresh = nightly_reports(tickers=["AAPL", "NVDA"], as_of="2025-06-01", ingest=False, resume=False)
    assert fresh["run_dir"] != first["run_dir"] and len(two_tickers.calls) == 4  # regenerated
    assert not fresh["resume"]["resumed_tickers"]


def test_stored_sections_are_reused_when_a_crash_hit_before_publish(two_tickers):
    first = nightly_reports(tickers=["AAPL"], as_of="2025-06-01")
    run_dir = Path(first["run_dir"])
    # the crash: the report record and files are gone, the generated sections are stored
    for path in (Settings().results_dir / "reports").rglob("*.json"):
        path.unlink()
    (run_dir / "AAPL.html").unlink()
    again = nightly_reports(tickers=["AAPL"], as_of="2025-06-01", ingest=False)
    assert len(two_tickers.calls) == 1  # sections came from the result store
    units = sum(len(s["units"]) for s in json.loads((run_dir / "audit" / "context-AAPL.json").read_text())["sections"])
    assert again["resume"] == {**again["resume"], "sections_cached": units, "sections_generated": 0}
    assert (run_dir / "AAPL.html").is_file() and again["tickers"]["AAPL"]["status"] == "published"


def test_a_failed_generation_job_fails_only_its_tickers(two_tickers, monkeypatch):
    monkeypatch.setenv("RESEARCHDESK_GENERATION_JOB_TICKERS", "1")
    real = two_tickers.generate

    def generate(requests):
        if any(":NVDA:" in r.request_id for r in requests):
            raise ConfigError("the GPU node ran out of memory")
        return real(requests)

    monkeypatch.setattr(two_tickers, "generate", generate)
    result = nightly_reports(tickers=["NVDA", "AAPL"], as_of="2025-06-01")
    assert result["status"] == "partial"
    assert result["failed"] == {"NVDA": "NVDA: generation failed: the GPU node ran out of memory"}
    assert result["tickers"]["AAPL"]["status"] == "published"


def test_run_fails_only_when_nothing_is_produced_and_still_writes_the_manifest(fakes):
    with pytest.raises(RunFailed) as exc:
        nightly_reports(tickers=["ZZZZ"], as_of="2025-06-01", ingest=False)
    manifest = json.loads((Path(exc.value.result["run_dir"]) / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "ZZZZ" in manifest["failed"]


def test_news_only_ingest_keeps_other_corpora_and_their_failures(fakes, sample_data: Path):
    full = ingest_flow()
    assert any(f["file"].endswith("tsla-10-k-2025-01-30.html.gz") for f in full["failures"])
    news = ingest_flow(sources=["news", "news-json", "news-feed"])
    assert news["files_seen"] == 1  # news/AAPL.csv.gz, the only news file: nothing else was looked at
    assert news["corpora"]["filings"]["passages"] == full["corpora"]["filings"]["passages"] > 0
    assert news["corpora"]["wikipedia"]["passages"] == full["corpora"]["wikipedia"]["passages"] > 0
    assert news["facts"] == full["facts"] > 0
    # the corrupt TSLA filing is still reported, so TSLA's report is still refused
    summary = IngestSummary.read(Settings().index_dir)
    assert [f.source for f in summary.failures_for("TSLA")] == ["filings"]
    with pytest.raises(ConfigError, match=r"unknown sources \['tweets'\]"):
        ingest_flow(sources=["tweets"])


def test_run_key_depends_on_what_changes_a_report(monkeypatch):
    base = run_key("2025-06-01", ["AAPL", "NVDA"], Settings())
    assert base == run_key("2025-06-01", ["NVDA", "AAPL"], Settings())
    assert base != run_key("2025-06-02", ["AAPL", "NVDA"], Settings())
    monkeypatch.setenv("RESEARCHDESK_WATCHLIST", "MSFT")  # not report content: same key
    assert base == run_key("2025-06-01", ["AAPL", "NVDA"], Settings())
    monkeypatch.setenv("RESEARCHDESK_CHAT_PRESET", "other")
    assert base != run_key("2025-06-01", ["AAPL", "NVDA"], Settings())


def test_section_key_ignores_the_run_but_not_the_prompt_or_model():
    req = {"request_id": "run-a:AAPL:risks", "user": "prompt", "system": "", "seed": 0}
    key = section_key("AAPL", "2025-06-01", req, "p@r1")
    assert key.startswith("sections/2025-06-01/AAPL/risks-")
    assert key == section_key("AAPL", "2025-06-01", {**req, "request_id": "run-b:AAPL:risks"}, "p@r1")
    assert key != section_key("AAPL", "2025-06-01", {**req, "user": "prompt 2"}, "p@r1")
    assert key != section_key("AAPL", "2025-06-01", req, "p@r2")


@pytest.mark.parametrize(
    "store, expected",
    [
        ("", "var/results"),
        ("file:///srv/results", "/srv/results"),
        ("/srv/results", "/srv/results"),
    ],
)
def test_result_store_folders(monkeypatch, tmp_path: Path, store: str, expected: str):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEARCHDESK_RESULT_STORE", store)
    storage = result_storage(Settings())
    assert storage.basepath == str(
        (tmp_path / expected).resolve() if not expected.startswith("/") else expected
    )
    assert storage_ref(Settings()) == Path(storage.basepath)


def test_result_store_errors_name_the_fix(monkeypatch):
    monkeypatch.setenv("RESEARCHDESK_RESULT_STORE", "s3://bucket/results")
    with pytest.raises(ConfigError, match="needs the s3fs package"):
        result_storage(Settings())
    monkeypatch.setenv("RESEARCHDESK_RESULT_STORE", "block:s3-bucket/results")
    assert storage_ref(Settings()) == "s3-bucket/results"  # resolved by Prefect at run time


@pytest.mark.parametrize(
    "name, message",
    [
        ("dask", "needs the prefect-dask package"),
        ("ray", "needs the prefect-ray package"),
        ("spark", "use thread, dask or ray"),
    ],
)
def test_task_runner_setting_errors_are_clear(name: str, message: str):
    with pytest.raises(ConfigError, match=message):
        task_runner(name)


def test_task_runner_default_is_threads():
    assert type(task_runner("thread")).__name__ == "ThreadPoolTaskRunner"


@pytest.mark.parametrize(
    "parts, key",
    [(("report", "AAPL"), "report-aapl"), (("report", "BRK.B"), "report-brk-b"), (("a--b",), "a-b")],
)
def test_artifact_keys_are_valid(parts, key):
    assert artifact_key(*parts) == key


def test_report_link(tmp_path: Path):
    run = tmp_path / "2025-06-01-abc"
    assert (
        report_link(run, "AAPL", "https://desk/reports/") == "https://desk/reports/2025-06-01-abc/AAPL.html"
    )
    assert report_link(run, "AAPL", "") == (run / "AAPL.html").resolve().as_uri()


def test_a_missing_task_runner_extra_fails_the_run_with_the_fix(fakes, monkeypatch):
    monkeypatch.setenv("RESEARCHDESK_TASK_RUNNER", "dask")
    with pytest.raises(ConfigError, match=r"pip install prefect-dask"):
        ingest_flow()


def test_ad_hoc_as_of_is_today_in_the_desk_timezone(monkeypatch):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from flows.runtime import default_as_of

    dates = {}
    for tz in ("Pacific/Kiritimati", "Etc/GMT+12"):  # UTC+14 and UTC-12: always different dates
        monkeypatch.setenv("RESEARCHDESK_TIMEZONE", tz)
        dates[tz] = default_as_of(Settings())
        assert dates[tz] == datetime.now(ZoneInfo(tz)).date().isoformat()
    assert len(set(dates.values())) == 2


def test_unknown_timezone_is_a_setting_error(monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("RESEARCHDESK_TIMEZONE", "Mars/Olympus")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "RESEARCHDESK_TIMEZONE" in err and "unknown IANA timezone" in err


@pytest.mark.parametrize(
    "error, retried",
    [(OSError("disk full"), True), (ConnectionResetError("peer"), True), (ValueError("bad key"), False)],
)
def test_io_tasks_retry_io_errors_only(error: Exception, retried: bool):
    from prefect.states import Completed, Failed

    from flows.runtime import io_error_only

    assert io_error_only(None, None, Failed(data=error)) is retried
    assert io_error_only(None, None, Completed(data=1)) is False


def test_every_retried_task_retries_io_errors_only():
    from flows.generate import fetch_file, put_file
    from flows.reports import publish_task
    from flows.resume import store_sections_task
    from flows.runtime import io_error_only

    for t in (fetch_file, put_file, publish_task, store_sections_task):
        assert t.retries >= 2 and t.retry_condition_fn is io_error_only, t.name
