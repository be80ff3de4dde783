"""Ingest flow: refresh the Faiss indexes and the facts table from the files under `data_dir`.

Run it:
    researchdesk ingest                  # CLI (in-process Prefect, no server needed)
    python -m flows.ingest               # same, directly

Incremental: unchanged files are not parsed again, unchanged documents are not re-embedded, so
the nightly flow calls this first and it costs seconds when nothing changed. Files that cannot be
read are listed in the summary (and in `var/index/ingest_summary.json`); the rest still lands.
"""

from __future__ import annotations

from functools import cache

from prefect import flow, get_run_logger

from flows.settings import Settings
from rag.embedding import Embedder
from rag.ingest import IngestSummary, ingest


@cache
def shared_embedder(name: str) -> Embedder:
    """One embedder per process: ingest and retrieval in the same run reuse the loaded model."""
    return Embedder(name)


@flow(name="ingest", log_prints=False)
def ingest_flow(rebuild: bool = False) -> dict:
    settings = Settings()
    logger = get_run_logger()
    summary: IngestSummary = ingest(
        settings.data_dir,
        settings.index_dir,
        shared_embedder(settings.embedder),
        progress=logger.info,
        rebuild=rebuild,
    )
    for failure in summary.failures:
        logger.warning("skipped %s (%s): %s", failure.file, failure.ticker or "-", failure.error)
    for skip in summary.skips:
        logger.warning("partly skipped %s (%s): %s", skip.file, skip.ticker or "-", skip.reason)
    logger.info(
        "ingest done in %.1fs: %d files (%d unchanged), %d documents, %s, %d facts, "
        "%d failures, %d partial skips",
        summary.seconds,
        summary.files_seen,
        summary.files_skipped_unchanged,
        summary.documents,
        ", ".join(f"{c}={v['passages']} passages" for c, v in summary.corpora.items()),
        summary.facts,
        len(summary.failures),
        len(summary.skips),
    )
    return summary.to_json()


if __name__ == "__main__":
    ingest_flow()
