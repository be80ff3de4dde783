"""Generation flow: one batch manifest in, one completions file out (the GPU node's job).

Deploy and run it on a GPU node (see README "Production setup"):
    prefect work-pool create gpu --type process
    PROJECT_DIR=$PWD prefect --no-prompt deploy --all            # registers generate/gpu
    CUDA_VISIBLE_DEVICES=0,1,2,3 prefect worker start --pool gpu --limit 1
    RESEARCHDESK_GENERATION_DEPLOYMENT=generate/gpu   # on the CPU worker: hand batches to it

Problem: the CPU flow (retrieval, moderation, publish) and the model (tens of GB of weights,
tensor-parallel over several GPUs) belong on different machines. Solution: the CPU flow writes
the prompts of a batch into one JSONL file, uploads it to the result store and calls
`run_deployment("generate/gpu", {"manifest": ...})`; this flow downloads it, loads the model once
(`--tp N`: `python -m models.batch` under torchrun), answers every request and uploads the
completions. Only paths/URIs cross the boundary, never payloads. With no deployment configured
(the embedded default) the CPU flow calls `generate_batch` in-process: the same code.

Each GPU node runs one worker with `--limit 1`: one job owns that node's GPUs. With several
nodes, RESEARCHDESK_GENERATION_PARALLEL_JOBS=<nodes> keeps that many jobs in flight (tickers
sharded across nodes, RESEARCHDESK_GENERATION_JOB_TICKERS per job).
Prefect's timeouts cannot stop blocking GPU work, so limits are enforced by the engine
(max_new_tokens per request); `RESEARCHDESK_GENERATION_TIMEOUT_S` only bounds the CPU side's wait.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.resources import shared_engine
from flows.runtime import IO_TASK, apply_model_source, result_storage
from flows.settings import Settings
from rag.atomic import write_atomic
from rag.errors import ModelError

STORE = "store:"  # manifest URIs under the result store (shared by the CPU and GPU nodes)


@task(name="fetch-file", **IO_TASK)
def fetch_file(uri: str, dest: Path) -> Path:
    """Copy a manifest URI (store:KEY or a path) to a local file; retried, it is network I/O."""
    if uri.startswith(STORE):
        dest.write_bytes(result_storage(Settings()).read_path(uri.removeprefix(STORE)))
        return dest
    return Path(uri)


@task(name="put-file", **IO_TASK)
def put_file(src: Path, uri: str) -> str:
    """Upload a local file to a manifest URI (store:KEY); a plain path is written in place."""
    if uri.startswith(STORE):
        result_storage(Settings()).write_path(uri.removeprefix(STORE), src.read_bytes())
    elif Path(uri) != src:  # a shared folder the other node reads: never half a file
        write_atomic(Path(uri), src.read_bytes())
    return uri


def _run_relaying_stderr(cmd: list[str], logger) -> tuple[int, str, str]:
    """Run the job; its stderr lines (progress, warnings) go to the flow log as they come, so an
    hour-long GPU job is visible in the Prefect UI. Returns (exit code, stdout, last stderr line)."""
    last = ""
    with tempfile.TemporaryFile("w+") as out:
        with subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, bufsize=1) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.strip():
                    last = line.strip()
                    logger.info("generation job: %s", last)
        out.seek(0)
        return proc.returncode, out.read(), last


@task(name="generate", cache_policy=NO_CACHE)
def generate_task(requests_path: Path, completions_path: Path, preset: str, tp: int) -> dict:
    """Answer every request of the batch with one model load; returns the job's accounting."""
    settings = Settings()
    logger = get_run_logger()
    if tp > 1:  # tensor parallel: models.batch relaunches itself under torchrun, rank 0 writes the file
        cmd = [sys.executable, "-m", "models.batch", "--requests", str(requests_path), "--out"]
        cmd += [str(completions_path), "--preset", preset, "--tp", str(tp)]
        cmd += ["--cache-dir", str(settings.models_dir), "--batch-size", str(settings.batch_size)]
        cmd += ["--source", settings.chat_source] if settings.chat_source else []
        logger.info("generation: %s", " ".join(cmd))
        code, out, last = _run_relaying_stderr(cmd, logger)
        if code != 0:
            why = last or (out.strip().splitlines() or [f"exit {code}"])[-1]
            raise ModelError(f"generation job ({' '.join(cmd[1:4])} --tp {tp}) failed: {why}")
        return json.loads(out.strip().splitlines()[-1])

    from models.batch import run_batch

    # the process-wide engine (flows/resources.py): moderation in this process shares it
    engine = shared_engine(preset, str(settings.models_dir), settings.batch_size)
    engine.progress = lambda done, total: logger.info("generated %d/%d sections", done, total)
    counters = ("requests", "tokens_in", "tokens_out", "seconds")
    before = {k: getattr(engine.stats, k) for k in counters}  # the engine lives across jobs
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
        "tp": 1,
        **run,
        "tokens_per_second": round(rate, 2),
        "load_seconds": engine.stats.load_seconds,
        "device": engine.stats.device,
        "dtype": engine.stats.dtype,
        # prefill s, time to first token, peak memory, backend (models/engine.py; fakes keep it empty)
        "job": engine.last_job,
    }


@flow(name="generate")
def generate_batch(manifest: dict) -> dict:
    """Run one batch manifest {requests, completions, preset, tp}; returns the job's accounting.

    `requests`/`completions` are local paths (in-process) or `store:KEY` URIs (across nodes);
    the accounting is also written next to the completions as `summary.json`.
    """
    settings = Settings()
    apply_model_source(settings)
    with tempfile.TemporaryDirectory(prefix="researchdesk-gen-") as tmp:
        local = Path(tmp)
        requests = fetch_file(manifest["requests"], local / "requests.jsonl")
        remote_out = manifest["completions"].startswith(STORE)
        out = local / "completions.jsonl" if remote_out else Path(manifest["completions"])
        summary = generate_task(
            requests, out, manifest.get("preset", settings.chat_preset), manifest.get("tp", 1)
        )
        if remote_out:
            put_file(out, manifest["completions"])
            (local / "summary.json").write_text(json.dumps(summary))
            put_file(local / "summary.json", manifest["completions"].rsplit("/", 1)[0] + "/summary.json")
    return summary


def run_generation(requests_path: Path, completions_path: Path, job: str, settings: Settings) -> dict:
    """CPU side: hand one batch to the generation job and wait for it; returns its accounting.

    With RESEARCHDESK_GENERATION_DEPLOYMENT set the batch goes through the result store to that
    deployment (a flow run on the GPU pool, shown as a subflow); otherwise it runs in-process.
    """
    manifest = {"preset": settings.chat_preset, "tp": settings.generation_tp}
    if not settings.generation_deployment:
        return generate_batch(
            {**manifest, "requests": str(requests_path), "completions": str(completions_path)}
        )

    from prefect.deployments import run_deployment

    storage = result_storage(settings)
    base = f"batches/{job}"
    put_file(requests_path, f"{STORE}{base}/requests.jsonl")
    manifest |= {
        "requests": f"{STORE}{base}/requests.jsonl",
        "completions": f"{STORE}{base}/completions.jsonl",
    }
    run = run_deployment(
        settings.generation_deployment,
        parameters={"manifest": manifest},
        timeout=settings.generation_timeout_s,
        poll_interval=2,
        flow_run_name=f"generate-{job.replace('/', '-')}",
    )
    state = run.state
    if state is None or not state.is_completed():
        raise ModelError(
            f"generation job {run.name} on {settings.generation_deployment} ended "
            f"{state.name if state else 'without a state'}"
            + (f": {state.message}" if state and state.message else "")
            + "; is a worker running on its pool (prefect worker start --pool gpu)?"
        )
    fetch_file(f"{STORE}{base}/completions.jsonl", completions_path)
    return json.loads(storage.read_path(f"{base}/summary.json"))


if __name__ == "__main__":
    generate_batch(json.loads(sys.argv[1]))
