"""Ingest flow: refresh the Faiss indexes and the facts table from the files under `data_dir`.

Run it:
    researchdesk ingest                  # CLI (in-process Prefect, no server needed)
    python -m flows.ingest               # same, directly
Deployed (prefect.yaml): `ingest/filings-facts` daily and `ingest/news` hourly, each with a
`sources` parameter naming registry entries of rag/sources (e.g. ["news", "news-json"]):
    prefect deployment run 'ingest/news'
Both share one index folder; rag/ingest_lock.py makes a second ingest wait for the first.

Incremental: unchanged files are not parsed again, unchanged documents are not re-embedded, so
the nightly flow calls this first and it costs seconds when nothing changed. Files that cannot be
read are listed in the summary (and in `var/index/ingest_summary.json`); the rest still lands.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.resources import shared_embedder
from flows.runtime import settings_task_runner
from flows.settings import Settings
from rag.ingest import ingest


@task(name="ingest-sources", cache_policy=NO_CACHE)
def ingest_task(rebuild: bool, sources: list[str] | None) -> dict:
    """Parse, chunk, embed and index what changed; returns the summary as plain data."""
    settings = Settings()
    summary = ingest(
        settings.data_dir,
        settings.index_dir,
        shared_embedder(settings.embedder),
        progress=get_run_logger().info,
        rebuild=rebuild,
        sources=sources,
    )
    return summary.to_json()


@flow(name="ingest", log_prints=False, task_runner=settings_task_runner())
def ingest_flow(rebuild: bool = False, sources: list[str] | None = None) -> dict:
    """Ingest every source, or only the named ones; returns the ingest summary."""
    logger = get_run_logger()
    # submitted, so RESEARCHDESK_TASK_RUNNER=dask|ray runs parsing + embedding on that cluster
    summary = ingest_task.submit(rebuild, sources).result()
    for failure in summary["failures"]:
        logger.warning("skipped %s (%s): %s", failure["file"], failure["ticker"] or "-", failure["error"])
    for skip in summary["skips"]:
        logger.warning("partly skipped %s (%s): %s", skip["file"], skip["ticker"] or "-", skip["reason"])
    for entry in summary.get("files", []):  # a file dropped in but never read must not vanish silently
        if entry["status"] in ("not recognised", "set aside"):
            logger.warning("%s %s: %s", entry["status"], entry["file"], entry["reason"])
    logger.info(
        "ingest done in %.1fs: %d files (%d unchanged), %d documents, %s, %d facts, "
        "%d failures, %d partial skips",
        summary["seconds"],
        summary["files_seen"],
        summary["files_skipped_unchanged"],
        summary["documents"],
        ", ".join(f"{c}={v['passages']} passages" for c, v in summary["corpora"].items()),
        summary["facts"],
        len(summary["failures"]),
        len(summary["skips"]),
    )
    return summary


if __name__ == "__main__":
    ingest_flow()
