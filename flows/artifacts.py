"""Prefect artifacts of a report run: what an operator sees on the run's Artifacts tab.

One table per run (ticker, status, moderation, citation %, numbers verified, time), one link per
report (keyed per ticker, so the Artifacts page shows each ticker's latest report and its
history) and a markdown summary. Keys may hold only lowercase letters, digits and dashes.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


def artifact_key(*parts: str) -> str:
    """`report`, `BRK.B` -> `report-brk-b` (Prefect rejects any other character in a key)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-")


def report_link(run_dir: Path, ticker: str, base_url: str) -> str:
    """Where an operator opens the report: under RESEARCHDESK_REPORT_BASE_URL, else a file:// URI.
    Credentials in the base URL (https://user:pass@host) are masked: artifacts live in the API's DB."""
    if base_url:
        from flows.redact import redact_text

        return redact_text(f"{base_url.rstrip('/')}/{run_dir.name}/{ticker}.html")
    return (run_dir / f"{ticker}.html").resolve().as_uri()


def _moderation(record: dict) -> str:
    labels = [s["moderation"]["label"] for s in record.get("sections", []) if s.get("moderation")]
    return ", ".join(f"{label} x{labels.count(label)}" for label in sorted(set(labels))) or "-"


def table_rows(manifest: dict, seconds: dict[str, float]) -> list[dict]:
    """One row per ticker of the run, from the manifest records."""
    rows = []
    for ticker, record in manifest["tickers"].items():
        sections = record.get("sections", [])
        paragraphs = sum(s["paragraphs"] for s in sections)
        cited = sum(s["paragraphs_cited"] for s in sections)
        rows.append(
            {
                "ticker": ticker,
                "status": record["status"] + (" (resumed)" if record.get("resumed") else ""),
                "moderation": _moderation(record),
                "citation_pct": round(100 * cited / paragraphs, 1) if paragraphs else None,
                "numbers_verified": sum(s["numbers_verified"] for s in sections),
                "time_s": round(seconds.get(ticker, 0.0), 1),
                "error": record.get("error", ""),
            }
        )
    return rows


def publish_run_artifacts(manifest: dict, run_dir: Path, seconds: dict[str, float], base_url: str) -> None:
    """Table, per-report links and a markdown summary for the current flow run."""
    rows = table_rows(manifest, seconds)
    run_id = manifest["run_id"]
    create_table_artifact(
        rows, key="report-run", description=f"run {run_id}, as of {manifest['as_of']}: per-ticker status"
    )
    for ticker, record in manifest["tickers"].items():
        if record.get("files"):
            create_link_artifact(
                report_link(run_dir, ticker, base_url),
                link_text=f"{ticker} report ({manifest['as_of']})",
                key=artifact_key("report", ticker),
                description=f"{ticker}: {record['status']} in run {run_id}",
            )
    resumed = [t for t, r in manifest["tickers"].items() if r.get("resumed")]
    lines = [
        f"# Report run `{run_id}`: {manifest['status']}",
        "",
        f"As of **{manifest['as_of']}**, model `{manifest['model']['chat'].get('preset', '-')}`"
        f"@`{manifest['model']['chat'].get('revision', '-')}`; "
        f"{sum(1 for r in manifest['tickers'].values() if r['status'] != 'failed')}/{len(rows)} reports, "
        f"{len(resumed)} resumed from an earlier attempt, "
        f"{manifest['resume']['sections_cached']} sections reused, "
        f"{manifest['resume']['sections_generated']} generated.",
        "",
        "| ticker | status | moderation | cited % | numbers verified | time s |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['ticker']} | {r['status']} | {r['moderation']} | "
            f"{'-' if r['citation_pct'] is None else r['citation_pct']} | "
            f"{r['numbers_verified']} | {r['time_s']} |"
            for r in rows
        ),
    ]
    if manifest["failed"]:
        lines += ["", "**Failed**", "", *(f"- {error}" for error in manifest["failed"].values())]
    lines += ["", f"Run folder: `{run_dir}` (index.html, manifest.json, audit/)"]
    create_markdown_artifact("\n".join(lines), key="report-run-summary", description=f"run {run_id}")
