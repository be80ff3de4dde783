"""The end of a report run: manifest.json, index.html, the `latest` link and the Prefect artifacts.

Called once by the report flow (flows/reports.py) after every ticker was published or failed; what
it writes is the run's audit record, so the flow's own file stays about running the stages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from flows.artifacts import publish_run_artifacts
from flows.redact import redact_text
from flows.settings import Settings
from reports.audit_trail import canonical, chain_hash, file_table, previous_link
from reports.manifest import SCHEMA_VERSION, ModelInfo, ResumeInfo, RunManifest
from reports.model import RunEntry, RunSummary
from reports.publish import sha256_hex, write_atomic, write_index


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_label(generation: dict, model_id: str) -> str:
    """preset@revision as reported by the generation jobs (the resume key's identity if none ran)."""
    preset, revision = model_id.split("@", 1)
    return f"{generation.get('preset', preset)}@{generation.get('revision', revision)}"


def link_latest(reports_dir: Path, run_id: str) -> None:
    """Point `latest` at the run folder, replacing the old link in one rename: a reader (e.g.
    `researchdesk eval faithfulness var/reports/latest`) never finds it missing."""
    from rag.atomic import replace_symlink

    replace_symlink(reports_dir / "latest", run_id)


def _seal(manifest: RunManifest, run_dir: Path, reports_dir: Path) -> None:
    """Schema 2 audit fields: every file's digest, record digests, the link to the previous run
    and the chain hash over all of it (reports/audit_trail.py `verify_run` checks them)."""
    manifest.schema_version = SCHEMA_VERSION
    manifest.files = file_table(run_dir)
    manifest.records_sha256 = {tk: sha256_hex(canonical(r)) for tk, r in manifest.tickers.items()}
    manifest.previous = previous_link(reports_dir, manifest.run_id)
    dumped = manifest.model_dump()
    manifest.chain_sha256 = chain_hash(dumped, (manifest.previous or {}).get("chain_sha256", ""))


def finish_run(
    *,
    run_id: str,
    as_of: str,
    started: str,
    tickers: list[str],
    outs: dict[str, dict],
    failures: dict[str, str],
    generation: dict,
    moderation: dict,
    cached_sections: int,
    model_id: str,
    ingest_info: dict | None,
    timings: dict[str, float],
    seconds: dict[str, float],
    settings: Settings,
) -> RunManifest:
    """Write the run's manifest, index page, `latest` link and artifacts; returns the manifest.

    `latest` moves only when the run published at least one report: a failed run (nothing
    ingested, every ticker unknown) must not hide the last run that has reports.
    """
    run_dir: Path = settings.reports_dir / run_id
    entries: list[RunEntry] = []
    records: dict[str, dict] = {}
    for ticker in tickers:
        if ticker in failures or ticker not in outs:
            error = failures.get(ticker, f"{ticker}: not produced")
            entries.append(RunEntry(ticker=ticker, status="failed", error=error))
            records[ticker] = {"status": "failed", "error": error}
        else:
            entries.append(RunEntry(**outs[ticker]["entry"]))
            records[ticker] = outs[ticker]["record"]
    published = sum(1 for ticker in tickers if ticker in outs and ticker not in failures)
    model = model_label(generation, model_id)
    manifest = RunManifest(
        run_id=run_id,
        as_of=as_of,
        started_at=started,
        finished_at=utc_now(),
        status="completed" if not failures else ("partial" if published else "failed"),
        tickers=records,
        failed=failures,
        resume=ResumeInfo(
            resumed_tickers=[tk for tk, r in records.items() if r.get("resumed")],
            sections_cached=cached_sections,
            sections_generated=generation.get("requests", 0),
            model_key=model_id,
        ),
        model=ModelInfo(
            chat=generation or {"preset": settings.chat_preset, "revision": model_id.split("@")[-1]},
            moderation=moderation,
            embedder=settings.embedder,
            policy=settings.policy,
        ),
        ingest=ingest_info
        and {k: ingest_info[k] for k in ("files_seen", "documents", "corpora", "facts", "failures")},
        timings_s={k: round(v, 2) for k, v in timings.items()},
        settings=json.loads(redact_text(settings.model_dump_json())),  # no credentials in the record
    )
    summary = RunSummary(
        run_id=run_id,
        generated_at=manifest.finished_at,
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
    write_index(summary, run_dir)  # before the manifest, so the manifest lists index.html's digest
    _seal(manifest, run_dir, settings.reports_dir)
    write_atomic(run_dir / "manifest.json", json.dumps(manifest.model_dump(), indent=1))
    if published:  # a run that wrote nothing keeps its folder, but `latest` stays on the last good one
        link_latest(settings.reports_dir, run_id)
    publish_run_artifacts(manifest.model_dump(), run_dir, seconds, settings.report_base_url)
    return manifest
