"""Resume state of a report run: which sections are generated and which reports are published.

A crashed nightly is resumed by running it again with the same (as_of, tickers): it lands in the
same run folder (flows/runtime.py `run_key`), reports whose publish record is in the result store
are not touched again, and sections whose completion is stored are not sent to the model again.
Section completions are stored as soon as their generation job returns, so a crash loses at most
the job in flight (RESEARCHDESK_GENERATION_JOB_TICKERS tickers).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.generate import run_generation
from flows.runtime import IO_TASK, result_store, section_key
from flows.settings import Settings
from models.batch import read_completions, write_completions, write_requests
from models.types import Completion, GenerationRequest


@task(name="store-sections", **IO_TASK)
def store_sections_task(completions: dict[str, dict]) -> int:
    """Persist generated sections under their keys (result store I/O, retried with backoff)."""
    store = result_store(Settings())
    for key, completion in completions.items():
        store.write(completion, key=key)
    return len(completions)


def published_record(store, key: str) -> dict | None:
    """The publish record of a report finished by an earlier attempt of this run, if any."""
    return store.read(key).result if store.exists(key) else None


def generate_job(
    tickers: list[str],
    requests: dict[str, list[GenerationRequest]],
    as_of: str,
    model: str,
    job: str,
    job_dir: Path,
    settings: Settings,
    reuse: bool,
) -> tuple[Path, dict, int]:
    """Completions for these tickers' sections: stored ones reused, the rest generated in one job.

    Returns (completions file in request order, the job's accounting or {}, sections reused).
    """
    logger = get_run_logger()
    store = result_store(settings)
    job_dir.mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}
    cached: dict[str, Completion] = {}
    missing: list[GenerationRequest] = []
    ordered = [(t, r) for t in tickers for r in requests[t]]
    for ticker, r in ordered:
        keys[r.request_id] = section_key(ticker, as_of, asdict(r), model)
        if reuse and store.exists(keys[r.request_id]):
            cached[r.request_id] = Completion(
                **{**store.read(keys[r.request_id]).result, "request_id": r.request_id}
            )
        else:
            missing.append(r)
    generation: dict = {}
    new: dict[str, Completion] = {}
    if missing:
        write_requests(missing, job_dir / "requests.jsonl")
        generation = run_generation(job_dir / "requests.jsonl", job_dir / "generated.jsonl", job, settings)
        new = read_completions(job_dir / "generated.jsonl")
        store_sections_task(
            {keys[rid]: asdict(c) for rid, c in new.items() if c.finish_reason != "error" and rid in keys}
        )
    for ticker in tickers:
        reused = sum(r.request_id in cached for r in requests[ticker])
        if reused:
            logger.info(
                "%s: %d/%d sections reused from the result store", ticker, reused, len(requests[ticker])
            )
    merged = {**cached, **new}
    out = job_dir / "completions.jsonl"
    write_completions([merged[r.request_id] for _, r in ordered if r.request_id in merged], out)
    return out, generation, len(cached)


generation_job_task = task(
    name="generation-job", task_run_name="generation-job-{job}", cache_policy=NO_CACHE
)(generate_job)


def merge_generation(total: dict, job: dict) -> dict:
    """Accounting over the jobs of a run: counters add up, the rest comes from the latest job."""
    if not job:
        return total
    counters = ("requests", "tokens_in", "tokens_out", "seconds")
    merged = {**total, **job, **{k: total.get(k, 0) + job.get(k, 0) for k in counters}}
    merged["tokens_per_second"] = (
        round(merged["tokens_out"] / merged["seconds"], 2) if merged["seconds"] else 0.0
    )
    merged["jobs"] = total.get("jobs", 0) + 1
    return merged
