"""The steps of a report run, as plain functions over one run-state object (`ReportRun`).

flows/reports.py `nightly_reports` is the readable list of these steps; its Prefect tasks
(build-context, moderate, publish) stay there and are handed in, so this module holds only the
orchestration: which tickers are left after a resume, the generation-job scheduler, the bookkeeping
of completions, verdicts and moderation labels across jobs, and the end of the run.

Order: start_run -> build_contexts -> prepare_requests -> skip_published -> plan_jobs ->
generation_jobs / run_job per job -> finish.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prefect import get_run_logger
from prefect.cache_policies import CacheKeyFnPolicy

from flows.resources import shared_engine
from flows.resume import generate_job, generation_job_task, merge_generation, published_record
from flows.run_record import finish_run, model_label, utc_now
from flows.runtime import apply_model_source, default_as_of, report_key, result_store, run_key, storage_ref
from flows.settings import Settings
from models.batch import read_completions, write_completions, write_requests
from models.types import Completion, GenerationRequest
from rag.atomic import remove_stale_temps
from rag.errors import ResearchDeskError
from rag.types import digest
from reports.context import TickerContext, requests_for
from reports.publish import write_atomic


class RunFailed(ResearchDeskError):
    """No report could be produced; the manifest is written and `result` holds it (the flow fails)."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


@dataclass
class GenerationJob:
    """One generation job: the tickers whose sections go to the model together."""

    n: int
    tickers: list[str]
    name: str  # "<run_id>/<n:03d>", the job's name in Prefect and on the GPU deployment
    dir: Path  # audit/jobs/<n:03d>: requests, completions and moderation verdicts of this job
    started: float = 0.0  # perf_counter when the flow began waiting for it (per-ticker seconds)


@dataclass
class ReportRun:
    """State of one report run, filled in by the steps below in order."""

    settings: Settings
    tickers: list[str]
    as_of: str
    run_id: str
    resume: bool  # reuse stored sections and published reports of an earlier attempt
    resuming: bool  # an earlier attempt wrote this run folder
    run_dir: Path
    started: str = field(default_factory=utc_now)  # ISO UTC, for the manifest
    t0: float = field(default_factory=time.perf_counter)  # start of the run, for timings["total"]
    ingest_info: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    seconds: dict[str, float] = field(default_factory=dict)  # ticker -> seconds spent on it
    contexts: dict[str, Path] = field(default_factory=dict)  # ticker -> audit/context-<T>.json
    failures: dict[str, str] = field(default_factory=dict)  # ticker -> one-line reason
    model_id: str = ""  # preset@revision of the resume keys
    requests: dict[str, list[GenerationRequest]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # ticker -> publish cache key
    outs: dict[str, dict] = field(default_factory=dict)  # ticker -> publish record {entry, record}
    completions: dict[str, Completion] = field(default_factory=dict)  # request id -> completion
    verdicts: dict[str, dict] = field(default_factory=dict)  # request id -> moderation verdict
    generation: dict = field(default_factory=dict)  # accounting merged over the jobs
    moderation: dict = field(default_factory=dict)  # last job's moderation info, labels summed
    cached_sections: int = 0

    @property
    def audit_dir(self) -> Path:
        return self.run_dir / "audit"

    @contextmanager
    def timer(self, stage: str) -> Iterator[None]:
        """Seconds spent in the `with` block, recorded under `stage` (the manifest's timings_s)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = time.perf_counter() - t

    def fail(self, ticker: str, reason: str) -> None:
        self.failures[ticker] = reason
        get_run_logger().error("%s", reason)


def start_run(tickers: list[str] | None, as_of: str | None, resume: bool) -> ReportRun:
    """Settings, tickers, run id and run folder; the folder of an earlier attempt is resumed."""
    t0 = time.perf_counter()
    settings = Settings()
    apply_model_source(settings)
    tickers = list(dict.fromkeys(t.strip().upper() for t in (tickers or settings.watchlist) if t.strip()))
    as_of = as_of or default_as_of(settings)
    run_id = run_key(as_of, tickers, settings)
    if not resume:
        run_id += "-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = settings.reports_dir / run_id
    resuming = resume and (run_dir / "audit" / "requests.jsonl").is_file()
    (run_dir / "audit").mkdir(parents=True, exist_ok=True)
    for tmp in remove_stale_temps(run_dir):  # an earlier attempt was killed while writing it
        get_run_logger().info("removed %s, left by an attempt killed mid-write", tmp.name)
    get_run_logger().info(
        "run %s: %d tickers as of %s -> %s%s",
        run_id,
        len(tickers),
        as_of,
        run_dir,
        " (resuming an earlier attempt)" if resuming else "",
    )
    return ReportRun(settings, tickers, as_of, run_id, resume, resuming, run_dir, t0=t0)


def build_contexts(run: ReportRun, build_context: Callable) -> None:
    """Context per ticker (the build-context task); a ticker that cannot be covered fails alone."""
    parallel = run.settings.task_runner not in ("", "thread")
    args = {tk: (tk, run.as_of, run.run_id, run.audit_dir) for tk in run.tickers}
    futures = {tk: build_context.submit(*args[tk]) for tk in run.tickers} if parallel else {}
    for ticker in run.tickers:
        tc = time.perf_counter()
        try:
            run.contexts[ticker] = futures[ticker].result() if parallel else build_context(*args[ticker])
        except ResearchDeskError as exc:
            run.fail(ticker, str(exc))
        run.seconds[ticker] = time.perf_counter() - tc


def _model_identity(settings: Settings) -> str:
    """preset@revision for resume keys; a remote generation job's revision must be pinned to count."""
    if settings.generation_deployment:
        return f"{settings.chat_preset}@{settings.model_revision or 'unpinned'}"
    engine = shared_engine(settings.chat_preset, str(settings.models_dir), settings.batch_size)
    return f"{settings.chat_preset}@{engine.revision}"


def prepare_requests(run: ReportRun) -> None:
    """Generation requests of every covered ticker (audit/requests.jsonl) and their resume keys."""
    settings = run.settings
    run.model_id = _model_identity(settings) if run.contexts else f"{settings.chat_preset}@-"
    for ticker, path in run.contexts.items():
        ctx = TickerContext.model_validate_json(path.read_text())
        run.requests[ticker] = requests_for(ctx, seed=settings.seed)
        run.keys[ticker] = report_key(run.run_id, ticker, run.as_of, digest(path.read_bytes()), run.model_id)
    write_requests([r for rs in run.requests.values() for r in rs], run.audit_dir / "requests.jsonl")


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


def skip_published(run: ReportRun) -> None:
    """Resume: reports an earlier attempt of this run already published are kept as they are."""
    if not run.resume:
        return
    store = result_store(run.settings)
    for ticker in run.contexts:
        record = published_record(store, run.keys[ticker])
        if record:
            run.outs[ticker] = record
            record["record"]["resumed"] = True
            get_run_logger().info("%s: published by an earlier attempt of %s; kept as is", ticker, run.run_id)
    # what the earlier attempt generated and moderated stays in the audit files; an attempt that
    # failed before its first generation job finished wrote none, and there is nothing to reuse
    if run.resuming and (run.audit_dir / "completions.jsonl").is_file():
        run.completions = read_completions(run.audit_dir / "completions.jsonl")
        run.verdicts = _read_json(run.audit_dir / "moderation.json", {})


def plan_jobs(run: ReportRun) -> list[GenerationJob]:
    """Tickers left to publish, in jobs of RESEARCHDESK_GENERATION_JOB_TICKERS tickers each: a crash
    loses at most the job in flight."""
    todo = [tk for tk in run.contexts if tk not in run.outs]
    step = run.settings.generation_job_tickers or max(len(todo), 1)
    chunks = [todo[first : first + step] for first in range(0, len(todo), step)]
    return [
        GenerationJob(n, chunk, f"{run.run_id}/{n:03d}", run.audit_dir / "jobs" / f"{n:03d}")
        for n, chunk in enumerate(chunks)
    ]


def generation_jobs(
    run: ReportRun, jobs: list[GenerationJob]
) -> Iterator[tuple[GenerationJob, tuple[Path, dict, int] | ResearchDeskError]]:
    """Each job with its outcome, in order: (completions file, accounting, sections reused) or the error.

    Several GPU nodes (RESEARCHDESK_GENERATION_PARALLEL_JOBS with a generation deployment): keep
    that many jobs in flight, a task each so Prefect keeps the run context; in-process generation
    stays sequential (one model, one process).
    """
    settings = run.settings
    ahead = settings.generation_parallel_jobs if settings.generation_deployment else 1
    in_flight: dict[int, object] = {}

    def args(job: GenerationJob) -> tuple:
        return (job.tickers, run.requests, run.as_of, run.model_id, job.name, job.dir, settings, run.resume)

    for n, job in enumerate(jobs):
        job.started = time.perf_counter()
        for m in range(n, min(n + ahead, len(jobs))) if ahead > 1 else ():
            if m not in in_flight:  # each job is submitted once, `ahead` jobs in flight
                in_flight[m] = generation_job_task.submit(*args(jobs[m]))
        try:
            outcome = in_flight.pop(n).result() if n in in_flight else generate_job(*args(job))
        except ResearchDeskError as exc:
            outcome = exc
        yield job, outcome


def _add_moderation(total: dict, job: dict) -> dict:
    """Moderation info over the jobs: the latest job's, with its label counts added to the total's."""
    labels = total.get("labels", {})
    return {**job, "labels": {**labels, **{k: labels.get(k, 0) + v for k, v in job["labels"].items()}}}


def run_job(
    run: ReportRun,
    job: GenerationJob,
    outcome: tuple[Path, dict, int] | ResearchDeskError,
    moderate: Callable,
    publish: Callable,
) -> None:
    """Moderation (the moderate task) and publish (the publish task) of one generation job's tickers."""
    logger = get_run_logger()
    if isinstance(outcome, ResearchDeskError):
        for ticker in job.tickers:
            run.fail(ticker, f"{ticker}: generation failed: {outcome}")
        return
    job_completions, accounting, reused = outcome
    run.generation = merge_generation(run.generation, accounting)
    run.cached_sections += reused
    verdicts_path = job.dir / "moderation.json"
    if any(run.requests[tk] for tk in job.tickers):
        run.moderation = _add_moderation(run.moderation, moderate(job_completions, verdicts_path))
    else:
        write_atomic(verdicts_path, "{}")
    run.completions |= read_completions(job_completions)
    run.verdicts |= _read_json(verdicts_path, {})
    write_completions(list(run.completions.values()), run.audit_dir / "completions.jsonl")
    write_atomic(run.audit_dir / "moderation.json", json.dumps(run.verdicts, indent=1))
    model = model_label(run.generation, run.model_id)
    for ticker in job.tickers:
        # explicit cache key persisted to the result store: a resumed run skips this ticker
        keyed = publish.with_options(
            cache_policy=CacheKeyFnPolicy(cache_key_fn=lambda *_, k=run.keys[ticker]: k),
            result_storage=storage_ref(run.settings),
            result_serializer="json",
            persist_result=True,
        )
        try:
            run.outs[ticker] = keyed(
                ticker, run.contexts[ticker], job_completions, verdicts_path, run.run_dir, run.run_id, model
            )
        except ResearchDeskError as exc:
            run.fail(ticker, str(exc))
            continue
        status = run.outs[ticker]["entry"]["status"]
        logger.info("%s: %s -> %s", ticker, status, run.run_dir / f"{ticker}.html")
    for ticker in job.tickers:
        run.seconds[ticker] += (time.perf_counter() - job.started) / len(job.tickers)


def finish(run: ReportRun) -> dict:
    """Manifest, index, artifacts; returns the manifest with `run_dir`, raises RunFailed if empty."""
    run.timings["total"] = time.perf_counter() - run.t0
    manifest = finish_run(
        run_id=run.run_id,
        as_of=run.as_of,
        started=run.started,
        tickers=run.tickers,
        outs=run.outs,
        failures=run.failures,
        generation=run.generation,
        moderation=run.moderation,
        cached_sections=run.cached_sections,
        model_id=run.model_id,
        ingest_info=run.ingest_info,
        timings=run.timings,
        seconds=run.seconds,
        settings=run.settings,
    )
    published = len(run.tickers) - len(run.failures)
    get_run_logger().info(
        "run %s %s in %.1fs: %d/%d reports (%d resumed); open %s",
        run.run_id,
        manifest.status,
        run.timings["total"],
        published,
        len(run.tickers),
        len(manifest.resume.resumed_tickers),
        run.run_dir / "index.html",
    )
    result = {"run_dir": str(run.run_dir), **manifest.model_dump()}
    if run.tickers and not published:  # Failed only when nothing could be produced
        raise RunFailed(f"run {run.run_id}: no report produced; " + "; ".join(run.failures.values()), result)
    return result
