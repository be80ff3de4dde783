"""Report flows: the nightly watchlist run and the on-demand report for one ticker.

Run locally (in-process Prefect API, no server):
    researchdesk run                       # nightly_reports over the watchlist in settings
    researchdesk run --tickers AAPL,NVDA --as-of 2025-06-01
    researchdesk report AAPL               # ticker_report
    python -m flows.reports                # nightly_reports with defaults

Stages: ingest (incremental) -> context per ticker (retrieve + facts -> prompts) -> ONE batched
generation job for every prompt of the run (model loaded once) -> moderation of every section
(batched) -> checks, render, publish per ticker -> index.html + manifest.json. Tasks hand each
other files in the run folder (`audit/`), not payloads, so every input of a report stays on disk.
A ticker that fails (unknown, no data, unreadable filing) is recorded and the others complete.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import ingest_flow, shared_embedder
from flows.settings import Settings
from models.batch import read_completions, run_batch, write_requests
from models.engine import load_engine
from models.loading import prompt_counter
from models.moderation import decide
from models.screens import make_checks, screen
from rag import facts as facts_mod
from rag.catalog import load_companies, resolve
from rag.errors import ResearchDeskError
from rag.ingest import FACTS_FILE, IngestSummary
from rag.retrieve import Retriever
from reports.assemble import assemble_report, verdict_reason
from reports.audit import section_records
from reports.context import TickerContext, build_context, requests_for
from reports.facts_view import facts_prompt_text, facts_table
from reports.model import CheckResult, InputVerdict, RunEntry, RunSummary, Verdict
from reports.publish import publish_report, write_atomic, write_index
from reports.render import run_entry
from reports.sanitize import sanitize_model_text
from reports.spec import SECTIONS
from reports.trim import PromptBudget

# Sources whose failure makes a ticker's report untrustworthy (numbers and filings); a broken news
# or Wikipedia file only adds a warning.
CRITICAL_SOURCES = {"filings", "companyfacts", "inline-xbrl"}


@cache
def shared_engine(preset: str, models_dir: str, batch_size: int):
    """The model is loaded once per process and reused by generation and moderation."""
    return load_engine(preset, cache_dir=Path(models_dir), batch_size=batch_size)


@cache
def shared_prompt_budget(preset: str, models_dir: str) -> PromptBudget:
    """The chat model's tokenizer and context size: prompts are trimmed to fit (reports/trim.py)."""
    return PromptBudget(*prompt_counter(preset, cache_dir=Path(models_dir)))


@cache
def shared_okc_corpus(index_dir: Path, encoder: Path | None, window: int, threshold: float):
    """OpenChatKit's Wikipedia index and its encoder, loaded once per process (see rag/okc_index.py)."""
    from rag.okc_index import open_okc_corpus

    return open_okc_corpus(index_dir, encoder, window, threshold)


@cache
def shared_retriever(index_dir: Path, embedder: str, stamp: int, okc: tuple | None = None) -> Retriever:
    """One loaded index per process and index version (`stamp`): tickers of a run share it.

    `okc` (index dir, encoder dir, window, threshold), from settings: Wikipedia queries then go to
    OpenChatKit's pre-built index instead of the locally ingested Wikipedia articles.
    """
    external = {"wikipedia": shared_okc_corpus(*okc)} if okc else {}
    return Retriever(index_dir, shared_embedder(embedder), external)


def _okc_setting(settings: Settings) -> tuple | None:
    if settings.okc_index_dir is None:
        return None
    return (settings.okc_index_dir, settings.okc_encoder, settings.okc_window, settings.okc_window_threshold)


def _index_stamp(index_dir: Path) -> int:
    """Changes whenever ingest rewrites the index (it rewrites the summary last)."""
    summary = index_dir / "ingest_summary.json"
    return summary.stat().st_mtime_ns if summary.exists() else 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@task(name="build-context", cache_policy=NO_CACHE)
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
    table = facts_table(facts) if facts else None
    retriever = shared_retriever(
        settings.index_dir, settings.embedder, _index_stamp(settings.index_dir), _okc_setting(settings)
    )
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


@task(name="generate", cache_policy=NO_CACHE)
def generate_task(requests_path: Path, completions_path: Path) -> dict:
    """One batched generation job for the whole run (the GPU node's job in production)."""
    settings = Settings()
    logger = get_run_logger()
    engine = shared_engine(settings.chat_preset, str(settings.models_dir), settings.batch_size)
    engine.progress = lambda done, total: logger.info("generated %d/%d sections", done, total)
    counters = ("requests", "tokens_in", "tokens_out", "seconds")
    before = {k: getattr(engine.stats, k) for k in counters}  # the engine lives across runs
    completions = run_batch(requests_path, completions_path, engine)
    run = {k: getattr(engine.stats, k) - before[k] for k in counters}
    rate = run["tokens_out"] / run["seconds"] if run["seconds"] else 0.0
    logger.info(
        "generation: %d requests, %d tokens out in %.1fs (%.1f tok/s)",
        len(completions),
        run["tokens_out"],
        run["seconds"],
        rate,
    )
    return {
        "preset": engine.name,
        "revision": engine.revision,
        **run,
        "tokens_per_second": round(rate, 2),
        "load_seconds": engine.stats.load_seconds,
        "device": engine.stats.device,
        "dtype": engine.stats.dtype,
        # prefill s, time to first token, peak memory, backend (models/engine.py; fakes have none)
        "job": getattr(engine, "last_job", {}),
    }


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
            checks=[CheckResult(check=v.check, label=v.label, reason=v.reason) for v in s.verdicts],
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


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(
    context_path: Path, completions_path: Path, verdicts_path: Path, run_dir: Path, run_id: str, model: str
) -> dict:
    """Checks, render and atomic publish of one ticker's report; returns its manifest record."""
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


@flow(name="nightly-reports")
def nightly_reports(tickers: list[str] | None = None, as_of: str | None = None, ingest: bool = True) -> dict:
    """Write one report per ticker (default: the watchlist); returns the run manifest."""
    settings = Settings()
    logger = get_run_logger()
    t0 = time.perf_counter()
    started = _now()
    tickers = list(dict.fromkeys(t.strip().upper() for t in (tickers or settings.watchlist) if t.strip()))
    as_of = as_of or date.today().isoformat()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
    run_dir = settings.reports_dir / run_id
    audit_dir = run_dir / "audit"
    audit_dir.mkdir(parents=True)
    timings: dict[str, float] = {}
    logger.info("run %s: %d tickers as of %s -> %s", run_id, len(tickers), as_of, run_dir)

    ingest_info = ingest_flow() if ingest else None
    timings["ingest"] = time.perf_counter() - t0

    # 1. context per ticker; a ticker that cannot be covered fails alone
    t = time.perf_counter()
    contexts: dict[str, Path] = {}
    failures: dict[str, str] = {}
    for ticker in tickers:
        try:
            contexts[ticker] = build_context_task(ticker, as_of, run_id, audit_dir)
        except ResearchDeskError as exc:
            failures[ticker] = str(exc)
            logger.error("%s", exc)
    timings["retrieve"] = time.perf_counter() - t

    # 2. one generation job and one moderation pass for every prompt of the run
    requests = []
    for path in contexts.values():
        requests += requests_for(TickerContext.model_validate_json(path.read_text()), seed=settings.seed)
    requests_path, completions_path = audit_dir / "requests.jsonl", audit_dir / "completions.jsonl"
    verdicts_path = audit_dir / "moderation.json"
    write_requests(requests, requests_path)
    t = time.perf_counter()
    generation = generate_task(requests_path, completions_path) if requests else {}
    timings["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    moderation = moderate_task(completions_path, verdicts_path) if requests else {}
    timings["moderate"] = time.perf_counter() - t
    if not requests:
        write_atomic(completions_path, "")
        write_atomic(verdicts_path, "{}")

    # 3. checks, render, publish per ticker
    t = time.perf_counter()
    model = f"{generation.get('preset', settings.chat_preset)}@{generation.get('revision', '-')}"
    entries: list[RunEntry] = []
    records: dict[str, dict] = {}
    for ticker in tickers:
        if ticker in failures:
            entries.append(RunEntry(ticker=ticker, status="failed", error=failures[ticker]))
            records[ticker] = {"status": "failed", "error": failures[ticker]}
            continue
        try:
            out = publish_task(contexts[ticker], completions_path, verdicts_path, run_dir, run_id, model)
        except ResearchDeskError as exc:
            failures[ticker] = str(exc)
            entries.append(RunEntry(ticker=ticker, status="failed", error=str(exc)))
            records[ticker] = {"status": "failed", "error": str(exc)}
            continue
        entries.append(RunEntry(**out["entry"]))
        records[ticker] = out["record"]
        logger.info("%s: %s -> %s", ticker, out["entry"]["status"], run_dir / f"{ticker}.html")
    timings["publish"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    published = len(tickers) - len(failures)
    manifest = {
        "run_id": run_id,
        "as_of": as_of,
        "started_at": started,
        "finished_at": _now(),
        "status": "completed" if not failures else ("partial" if published else "failed"),
        "tickers": records,
        "failed": failures,
        "model": {
            "chat": generation,
            "moderation": moderation,
            "embedder": settings.embedder,
            "policy": settings.policy,
        },
        "ingest": ingest_info
        and {k: ingest_info[k] for k in ("files_seen", "documents", "corpora", "facts", "failures")},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "settings": json.loads(settings.model_dump_json()),
    }
    write_atomic(run_dir / "manifest.json", json.dumps(manifest, indent=1))
    summary = RunSummary(
        run_id=run_id,
        generated_at=manifest["finished_at"],
        as_of=as_of,
        model=model,
        entries=entries,
        totals={
            "tickers": len(tickers),
            "reports": published,
            "failed": len(failures),
            "tokens_out": generation.get("tokens_out", 0),
        },
        timings={k: round(v, 1) for k, v in timings.items()},
    )
    write_index(summary, run_dir)
    latest = settings.reports_dir / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(run_id)
    logger.info(
        "run %s %s in %.1fs: %d/%d reports; open %s",
        run_id,
        manifest["status"],
        timings["total"],
        published,
        len(tickers),
        run_dir / "index.html",
    )
    return {"run_dir": str(run_dir), **manifest}


@flow(name="ticker-report")
def ticker_report(ticker: str, as_of: str | None = None) -> dict:
    """On-demand report for one ticker (same stages as the nightly run)."""
    return nightly_reports(tickers=[ticker], as_of=as_of)


if __name__ == "__main__":
    nightly_reports()
