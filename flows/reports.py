"""Report flows: the nightly watchlist run and the on-demand report for one ticker.

Run locally (in-process Prefect API, no server):
    researchdesk run                       # nightly_reports over the watchlist in settings
    researchdesk run --tickers AAPL,NVDA --as-of 2025-06-01
    researchdesk report AAPL               # ticker_report
    python -m flows.reports                # nightly_reports with defaults
Deployed (prefect.yaml, README "Production setup"):
    PROJECT_DIR=$PWD prefect --no-prompt deploy --all
    prefect deployment run 'ticker-report/on-demand' --param ticker=AAPL
    prefect deployment run 'nightly-reports/nightly'     # also on its weeknight schedule

Stages: ingest (incremental) -> context per ticker (retrieve + facts -> prompts) -> batched
generation jobs of RESEARCHDESK_GENERATION_JOB_TICKERS tickers each (model loaded once per
process; on the GPU deployment when RESEARCHDESK_GENERATION_DEPLOYMENT is set) -> moderation of
each job's sections (batched) -> checks, render, publish per ticker -> index.html + manifest.json.
Tasks hand each other files in the run folder (`audit/`), not payloads, so every input of a
report stays on disk. A ticker that fails (unknown, no data, unreadable filing, failed job) is
recorded and the others complete; the run fails only when no report could be produced.

Resume (problem: Prefect's default cache is per flow run, a crashed nightly is resumed by a new
run; solution: explicit keys in the result store, see flows/runtime.py and flows/resume.py): the
run folder is keyed by (as_of, tickers, report settings), so the same nightly again lands in the
same folder, keeps reports already published and reuses stored sections.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy

from flows.ingest import ingest_flow
from flows.resources import settings_retriever, shared_embedder, shared_engine, shared_prompt_budget
from flows.resume import generate_job, generation_job_task, merge_generation, published_record
from flows.run_record import finish_run, model_label, utc_now
from flows.runtime import (
    apply_model_source,
    default_as_of,
    io_error_only,
    report_key,
    result_store,
    run_key,
    settings_task_runner,
    storage_ref,
)
from flows.settings import Settings
from models.batch import read_completions, write_completions, write_requests
from models.moderation import decide
from models.presets import get_preset
from models.screens import make_checks, screen
from rag import facts as facts_mod
from rag.catalog import load_companies, resolve
from rag.errors import ResearchDeskError
from rag.ingest import FACTS_FILE, IngestSummary
from rag.risk_factors import read_risk_factors
from rag.types import digest
from reports.assemble import assemble_report, verdict_reason
from reports.audit import section_records
from reports.context import TickerContext, build_context, requests_for
from reports.facts_view import facts_prompt_text
from reports.financials import report_facts
from reports.model import CheckResult, InputVerdict, Verdict
from reports.publish import publish_report, write_atomic
from reports.render import run_entry
from reports.sanitize import sanitize_model_text
from reports.spec import SECTIONS

# Sources whose failure makes a ticker's report untrustworthy (numbers and filings); a broken news
# or Wikipedia file only adds a warning.
CRITICAL_SOURCES = {"filings", "companyfacts", "inline-xbrl"}


@task(name="build-context", task_run_name="context-{ticker}", cache_policy=NO_CACHE)
def build_context_task(ticker: str, as_of: str, run_id: str, audit_dir: Path) -> Path:
    """Retrieve sources and write prompts for one ticker; raises ResearchDeskError naming the problem."""
    settings = Settings()
    company = resolve(ticker, load_companies(settings.company_tickers))
    summary = IngestSummary.read(settings.index_dir)
    critical = [
        f for f in (summary.failures_for(company.ticker) if summary else []) if f.source in CRITICAL_SOURCES
    ]
    if critical:
        f = critical[0]
        raise ResearchDeskError(f"{company.ticker}: cannot use {settings.data_dir / f.file}: {f.error}")
    facts = [  # point in time: only what had been filed by the report date
        f
        for f in facts_mod.read_facts(settings.index_dir / FACTS_FILE)
        if f.ticker == company.ticker and (not f.filed or f.filed <= as_of)
    ]
    table = report_facts(facts) if facts else None
    retriever = settings_retriever(settings)
    ctx = build_context(
        company.ticker,
        company.name,
        company.cik,
        as_of,
        retriever,
        list(SECTIONS.values()),
        table,
        facts_prompt_text(table) if table else "",
        run_id,
        settings.max_new_tokens,
        fit=shared_prompt_budget(settings.chat_preset, str(settings.models_dir)),
        screen=_input_screen(settings),
        unit=get_preset(settings.chat_preset).generation_unit,
        risks=[r for r in read_risk_factors(settings.index_dir) if r.ticker == company.ticker],
        encode=retriever.embedder.encode,
    )
    for d in ctx.dropped:
        get_run_logger().warning(
            "%s: input moderation dropped %s (%s): %s", ticker, d.title, d.label, d.reason
        )
    if summary:
        ctx.warnings.extend(
            f"{f.file} was skipped at ingest: {f.error}" for f in summary.failures_for(company.ticker)
        )
        ctx.warnings.extend(
            f"{s.file} was partly skipped at ingest: {s.reason}"
            for s in summary.skips
            if s.ticker == company.ticker
        )
    path = audit_dir / f"context-{company.ticker}.json"
    write_atomic(path, ctx.model_dump_json(indent=1))
    return path


def _checks(names: list[str], settings: Settings):
    """Moderation checks by name; the moderation model is loaded only if a check needs it."""
    preset = settings.moderation_preset or settings.chat_preset
    return make_checks(names, lambda: shared_engine(preset, str(settings.models_dir), settings.batch_size))


def _input_screen(settings: Settings):
    """Input moderation for build_context: a passage is dropped when the policy would withhold it."""
    checks, policy = _checks(settings.input_checks, settings), settings.policy

    def judge(texts: list[str]) -> list[InputVerdict]:
        return [
            InputVerdict(drop=decide(s.label, policy) == "withhold", label=s.label, reason=s.reasons())
            for s in screen(texts, checks)
        ]

    return judge


@task(name="moderate", cache_policy=NO_CACHE)
def moderate_task(completions_path: Path, verdicts_path: Path) -> dict:
    """Moderate every generated section with the configured checks, batched; fail closed on errors."""
    settings = Settings()
    preset = settings.moderation_preset or settings.chat_preset
    policy = settings.policy
    completions = [c for c in read_completions(completions_path).values() if c.finish_reason != "error"]
    screenings = screen(
        [sanitize_model_text(c.text) for c in completions], _checks(settings.output_checks, settings)
    )
    verdicts = {}
    for c, s in zip(completions, screenings, strict=True):
        action = decide(s.label, policy)
        judge = next((v for v in s.verdicts if v.check == "label-scoring"), s.deciding)
        verdicts[c.request_id] = Verdict(
            label=s.label,
            action=action,
            scores=judge.scores,
            margin=judge.margin,
            reason=verdict_reason(s.label, action, judge.margin, s.reasons()),
            checks=[
                CheckResult(check=v.check, label=v.label, reason=v.reason, advisory_label=v.advisory_label)
                for v in s.verdicts
            ],
        ).model_dump()
    write_atomic(verdicts_path, json.dumps(verdicts, indent=1))
    labels = [v["label"] for v in verdicts.values()]
    uses_model = "label-scoring" in settings.output_checks or "label-scoring" in settings.input_checks
    return {
        "preset": preset if uses_model else "",
        "revision": shared_engine(preset, str(settings.models_dir), settings.batch_size).revision
        if uses_model
        else "",
        "input_checks": settings.input_checks,
        "output_checks": settings.output_checks,
        "labels": {x: labels.count(x) for x in set(labels)},
    }


@task(name="publish", task_run_name="publish-{ticker}", retries=2, retry_condition_fn=io_error_only)
def publish_task(
    ticker: str,
    context_path: Path,
    completions_path: Path,
    verdicts_path: Path,
    run_dir: Path,
    run_id: str,
    model: str,
) -> dict:
    """Checks, render and atomic publish of one ticker's report; returns its manifest record.

    The flow gives it an explicit cache key (flows/runtime.py `report_key`) persisted to the result
    store: a resumed run finds that record and skips the ticker, so no report is published twice.
    """
    settings = Settings()
    ctx = TickerContext.model_validate_json(context_path.read_text())
    completions = read_completions(completions_path)
    verdicts = {k: Verdict(**v) for k, v in json.loads(verdicts_path.read_text()).items()}
    embedder = shared_embedder(settings.embedder)
    report = assemble_report(ctx, completions, verdicts, run_id, model, encode=embedder.encode)
    files = publish_report(report, run_dir)
    return {
        "entry": run_entry(report, md=f"{report.ticker}.md", html=f"{report.ticker}.html").model_dump(),
        "record": {
            "status": report.status,
            "files": files,
            "warnings": report.warnings,
            "sections": section_records(ctx, report, completions),
            "inputs_dropped": [d.model_dump() for d in ctx.dropped],
            "documents": ctx.documents,
        },
    }


class RunFailed(ResearchDeskError):
    """No report could be produced; the manifest is written and `result` holds it (the flow fails)."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def _model_identity(settings: Settings) -> str:
    """preset@revision for resume keys; a remote generation job's revision must be pinned to count."""
    if settings.generation_deployment:
        return f"{settings.chat_preset}@{settings.model_revision or 'unpinned'}"
    engine = shared_engine(settings.chat_preset, str(settings.models_dir), settings.batch_size)
    return f"{settings.chat_preset}@{engine.revision}"


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.is_file() else default


@flow(name="nightly-reports", task_runner=settings_task_runner())
def nightly_reports(
    tickers: list[str] | None = None, as_of: str | None = None, ingest: bool = True, resume: bool = True
) -> dict:
    """Write one report per ticker (default: the watchlist); returns the run manifest.

    The run folder is keyed by (as_of, tickers, report settings): running the same again resumes
    it (finished reports kept, stored sections reused). `resume=False` starts a fresh folder.
    """
    settings = Settings()
    apply_model_source(settings)
    logger = get_run_logger()
    t0 = time.perf_counter()
    started = utc_now()
    tickers = list(dict.fromkeys(t.strip().upper() for t in (tickers or settings.watchlist) if t.strip()))
    as_of = as_of or default_as_of(settings)
    run_id = run_key(as_of, tickers, settings)
    if not resume:
        run_id += "-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = settings.reports_dir / run_id
    audit_dir = run_dir / "audit"
    resuming = resume and (audit_dir / "requests.jsonl").is_file()
    audit_dir.mkdir(parents=True, exist_ok=True)
    store = result_store(settings)
    timings: dict[str, float] = {}
    seconds: dict[str, float] = {}
    logger.info(
        "run %s: %d tickers as of %s -> %s%s",
        run_id,
        len(tickers),
        as_of,
        run_dir,
        " (resuming an earlier attempt)" if resuming else "",
    )

    ingest_info = ingest_flow() if ingest else None
    timings["ingest"] = time.perf_counter() - t0

    # 1. context per ticker; a ticker that cannot be covered fails alone
    t = time.perf_counter()
    contexts: dict[str, Path] = {}
    failures: dict[str, str] = {}
    parallel = settings.task_runner not in ("", "thread")
    futures = (
        {tk: build_context_task.submit(tk, as_of, run_id, audit_dir) for tk in tickers} if parallel else {}
    )
    for ticker in tickers:
        tc = time.perf_counter()
        try:
            contexts[ticker] = (
                futures[ticker].result() if parallel else build_context_task(ticker, as_of, run_id, audit_dir)
            )
        except ResearchDeskError as exc:
            failures[ticker] = str(exc)
            logger.error("%s", exc)
        seconds[ticker] = time.perf_counter() - tc
    timings["retrieve"] = time.perf_counter() - t

    # 2. resume: reports an earlier attempt of this run already published are kept as they are
    model_id = _model_identity(settings) if contexts else f"{settings.chat_preset}@-"
    ctxs = {tk: TickerContext.model_validate_json(path.read_text()) for tk, path in contexts.items()}
    requests = {tk: requests_for(ctx, seed=settings.seed) for tk, ctx in ctxs.items()}
    write_requests([r for rs in requests.values() for r in rs], audit_dir / "requests.jsonl")
    keys = {
        tk: report_key(run_id, tk, as_of, digest(path.read_bytes()), model_id)
        for tk, path in contexts.items()
    }
    outs: dict[str, dict] = {}
    for ticker in contexts:
        record = published_record(store, keys[ticker]) if resume else None
        if record:
            outs[ticker] = record
            record["record"]["resumed"] = True
            logger.info("%s: published by an earlier attempt of %s; kept as is", ticker, run_id)
    todo = [tk for tk in contexts if tk not in outs]

    # 3. generation jobs of N tickers each (RESEARCHDESK_GENERATION_JOB_TICKERS), then moderation
    # and publish of those tickers: a crash loses at most the job in flight
    completions = read_completions(audit_dir / "completions.jsonl") if resuming else {}
    verdicts = _read_json(audit_dir / "moderation.json", {}) if resuming else {}
    generation: dict = {}
    moderation: dict = {}
    cached_sections = 0
    step = settings.generation_job_tickers or max(len(todo), 1)
    chunks = [todo[first : first + step] for first in range(0, len(todo), step)]
    # Several GPU nodes: keep that many jobs in flight (a task each, so Prefect keeps the run
    # context); in-process generation stays sequential (one model, one process).
    ahead = settings.generation_parallel_jobs if settings.generation_deployment else 1
    jobs: dict[int, object] = {}

    def job_args(n: int) -> tuple:
        return (chunks[n], requests, as_of, model_id, f"{run_id}/{n:03d}", audit_dir / "jobs" / f"{n:03d}")

    for n, chunk in enumerate(chunks):
        tc, job_dir = time.perf_counter(), audit_dir / "jobs" / f"{n:03d}"
        for m in range(n, min(n + ahead, len(chunks))) if ahead > 1 else ():
            if m not in jobs:  # each job is submitted once, `ahead` jobs in flight
                jobs[m] = generation_job_task.submit(*job_args(m), settings, resume)
        try:
            job_completions, job, reused = (
                jobs.pop(n).result() if n in jobs else generate_job(*job_args(n), settings, resume)
            )
        except ResearchDeskError as exc:
            for ticker in chunk:
                failures[ticker] = f"{ticker}: generation failed: {exc}"
                logger.error("%s", failures[ticker])
            continue
        generation, cached_sections = merge_generation(generation, job), cached_sections + reused
        if any(requests[tk] for tk in chunk):
            mod = moderate_task(job_completions, job_dir / "moderation.json")
            labels = {k: moderation.get("labels", {}).get(k, 0) + v for k, v in mod["labels"].items()}
            moderation = {**mod, "labels": {**moderation.get("labels", {}), **labels}}
        else:
            write_atomic(job_dir / "moderation.json", "{}")
        completions |= read_completions(job_completions)
        verdicts |= _read_json(job_dir / "moderation.json", {})
        write_completions(list(completions.values()), audit_dir / "completions.jsonl")
        write_atomic(audit_dir / "moderation.json", json.dumps(verdicts, indent=1))
        model = model_label(generation, model_id)
        for ticker in chunk:
            publish = publish_task.with_options(
                cache_policy=CacheKeyFnPolicy(cache_key_fn=lambda *_, k=keys[ticker]: k),
                result_storage=storage_ref(settings),
                result_serializer="json",
                persist_result=True,
            )
            try:
                outs[ticker] = publish(
                    ticker,
                    contexts[ticker],
                    job_completions,
                    job_dir / "moderation.json",
                    run_dir,
                    run_id,
                    model,
                )
            except ResearchDeskError as exc:
                failures[ticker] = str(exc)
                logger.error("%s", exc)
                continue
            logger.info("%s: %s -> %s", ticker, outs[ticker]["entry"]["status"], run_dir / f"{ticker}.html")
        for ticker in chunk:
            seconds[ticker] += (time.perf_counter() - tc) / len(chunk)
    timings["generate_moderate_publish"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    # 4. manifest, index, artifacts
    manifest = finish_run(
        run_id=run_id,
        as_of=as_of,
        started=started,
        tickers=tickers,
        outs=outs,
        failures=failures,
        generation=generation,
        moderation=moderation,
        cached_sections=cached_sections,
        model_id=model_id,
        ingest_info=ingest_info,
        timings=timings,
        seconds=seconds,
        settings=settings,
    )
    published = len(tickers) - len(failures)
    logger.info(
        "run %s %s in %.1fs: %d/%d reports (%d resumed); open %s",
        run_id,
        manifest["status"],
        timings["total"],
        published,
        len(tickers),
        len(manifest["resume"]["resumed_tickers"]),
        run_dir / "index.html",
    )
    result = {"run_dir": str(run_dir), **manifest}
    if tickers and not published:  # Failed only when nothing could be produced
        raise RunFailed(f"run {run_id}: no report produced; " + "; ".join(failures.values()), result)
    return result


@flow(name="ticker-report")
def ticker_report(ticker: str, as_of: str | None = None, resume: bool = True) -> dict:
    """On-demand report for one ticker (same stages as the nightly run)."""
    return nightly_reports(tickers=[ticker], as_of=as_of, resume=resume)


if __name__ == "__main__":
    nightly_reports()
