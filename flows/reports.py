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
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import ingest_flow
from flows.params import check_as_of, check_ticker_list
from flows.resources import settings_retriever, shared_embedder, shared_engine, shared_prompt_budget
from flows.run_steps import RunFailed as RunFailed  # re-exported: the CLI and callers catch it here
from flows.run_steps import (
    build_contexts,
    finish,
    generation_jobs,
    plan_jobs,
    prepare_requests,
    run_job,
    skip_published,
    start_run,
)
from flows.runtime import io_error_only, settings_task_runner
from flows.settings import Settings
from models.batch import read_completions, read_requests
from models.moderation import decide
from models.presets import get_preset
from models.screens import make_checks, screen
from rag import facts as facts_mod
from rag.catalog import load_companies, resolve
from rag.errors import NoDataError, ResearchDeskError
from rag.ingest import FACTS_FILE, IngestSummary
from rag.risk_factors import read_risk_factors
from reports.assemble import assemble_report, verdict_reason
from reports.audit import section_records
from reports.audit_trail import completion_digest, verdict_digest
from reports.context import TickerContext, build_context
from reports.facts_view import facts_prompt_text
from reports.financials import report_facts
from reports.model import CheckResult, InputVerdict, Verdict
from reports.publish import publish_report, sha256_hex, write_atomic
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
    facts_path = settings.index_dir / FACTS_FILE
    if not facts_path.exists():  # e.g. `run --no-ingest` on a fresh var folder
        raise NoDataError(f"nothing ingested yet ({facts_path} is missing): run `researchdesk ingest` first")
    facts = [  # point in time: only what had been filed by the report date
        f
        for f in facts_mod.read_facts(facts_path, ticker=company.ticker)
        if not f.filed or f.filed <= as_of
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
        risks=read_risk_factors(settings.index_dir, ticker=company.ticker),
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


@task(
    name="publish",
    task_run_name="publish-{ticker}",
    retries=2,
    retry_delay_seconds=[2, 10],  # backoff: a full disk or a flaky network mount needs a moment
    retry_condition_fn=io_error_only,
)
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
    generated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = assemble_report(
        ctx, completions, verdicts, run_id, model, encode=embedder.encode, generated_at=generated_at
    )
    files = publish_report(report, run_dir)
    rids = [u.request_id for plan in ctx.sections for u in plan.units]
    return {
        "entry": run_entry(report, md=f"{report.ticker}.md", html=f"{report.ticker}.html").model_dump(),
        "record": {
            "status": report.status,
            "files": files,
            "warnings": report.warnings,
            "sections": section_records(ctx, report, completions),
            "inputs_dropped": [d.model_dump() for d in ctx.dropped],
            "documents": ctx.documents,
            # what reports/audit_trail.py `rerender` needs to rebuild the files byte for byte
            "generated_at": generated_at,
            "model": model,
            "inputs": {
                "context": {
                    "path": f"audit/{context_path.name}",
                    "sha256": sha256_hex(context_path.read_bytes()),
                },
                "completions": {r: completion_digest(completions[r]) for r in rids if r in completions},
                "verdicts": {r: verdict_digest(verdicts[r].model_dump()) for r in rids if r in verdicts},
            },
            "generation": _sampling(run_dir / "audit" / "requests.jsonl", set(rids)),
        },
    }


def _sampling(requests_path: Path, rids: set[str]) -> dict[str, dict]:
    """Sampling parameters of the ticker's requests, per request id (None: the preset's default)."""
    if not requests_path.is_file():
        return {}
    keys = ("max_new_tokens", "temperature", "top_k", "top_p", "seed", "stop_words")
    requests = [r for r in read_requests(requests_path) if r.request_id in rids]
    return {r.request_id: {k: getattr(r, k) for k in keys} for r in requests}


def _checked_params(tickers: list[str] | None, as_of: str | None) -> tuple[list[str], str | None]:
    """The flow parameters as start_run may use them: validated, tickers de-duplicated in order."""
    settings = Settings()
    if tickers is None:
        checked = check_ticker_list(settings.watchlist, "RESEARCHDESK_WATCHLIST")
    else:
        checked = check_ticker_list(tickers, "the tickers parameter")
    return checked, check_as_of(as_of, settings.timezone, "as_of")


@flow(name="nightly-reports", task_runner=settings_task_runner())
def nightly_reports(
    tickers: list[str] | None = None, as_of: str | None = None, ingest: bool = True, resume: bool = True
) -> dict:
    """Write one report per ticker (default: the watchlist); returns the run manifest.

    The run folder is keyed by (as_of, tickers, report settings): running the same again resumes
    it (finished reports kept, stored sections reused). `resume=False` starts a fresh folder.
    Steps and run state: flows/run_steps.py; each timer covers exactly its stage.
    Bad parameters (a `../x` ticker, an empty or oversized list, a date before 1993 or in the
    future) fail the flow with the CLI's one-line error before a run folder exists (flows/params.py).
    """
    tickers, as_of = _checked_params(tickers, as_of)
    run = start_run(tickers, as_of, resume)
    with run.timer("ingest"):
        run.ingest_info = ingest_flow() if ingest else None
    with run.timer("retrieve"):  # 1. context per ticker; a ticker that cannot be covered fails alone
        build_contexts(run, build_context_task)
    with run.timer("generate_moderate_publish"):
        prepare_requests(run)  # 2. prompts and resume keys; reports published earlier are kept
        skip_published(run)
        for job, outcome in generation_jobs(run, plan_jobs(run)):  # 3. jobs of N tickers each
            run_job(run, job, outcome, moderate=moderate_task, publish=publish_task)
    return finish(run)  # 4. manifest, index, artifacts; RunFailed when no report was produced


@flow(name="ticker-report")
def ticker_report(ticker: str, as_of: str | None = None, resume: bool = True) -> dict:
    """On-demand report for one ticker (same stages as the nightly run)."""
    checked, as_of = _checked_params([ticker], as_of)  # before the subflow: a `../x` stops here
    return nightly_reports(tickers=checked, as_of=as_of, resume=resume)


if __name__ == "__main__":
    nightly_reports()
