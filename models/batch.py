"""The batch generation job as a file-to-file step: requests JSONL in, completions JSONL out.

This is the seam between the CPU flow and the generation node: the flow writes every prompt of a
run into one file, one process (or one torchrun process group on a GPU node) loads the model once
and answers all of them, and the flow reads the answers back. Files, not payloads, cross it.
Every request field crosses (tuples as JSON lists), the decoding constraints included
(models/constraint.py), so a TP job bans exactly the tokens an in-process run would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from models.types import Completion, Engine, GenerationRequest
from rag.atomic import atomic_open
from rag.errors import ConfigError, ResearchDeskError


def write_requests(requests: list[GenerationRequest], path: Path) -> None:
    _write_jsonl(path, [asdict(r) for r in requests])


def read_requests(path: Path) -> list[GenerationRequest]:
    """The requests in a JSONL file; a malformed row is a ConfigError naming the file and row."""
    known = {f.name for f in fields(GenerationRequest)}
    out = []
    for n, row in enumerate(_read_jsonl(path), 1):
        if not isinstance(row, dict) or "request_id" not in row or "user" not in row or row.keys() - known:
            extra = sorted(row.keys() - known) if isinstance(row, dict) else []
            raise ConfigError(
                f"{path}: request {n} needs request_id and user and no other fields than "
                f"{', '.join(sorted(known))}" + (f" (unknown: {', '.join(extra)})" if extra else "")
            )
        if isinstance(row.get("stop_words"), list):
            row["stop_words"] = tuple(row["stop_words"])
        for key, kinds in (("allowed_numbers", (str, int, float)), ("allowed_citations", (int,))):
            value = row.get(key)
            if value is None:
                continue
            if not isinstance(value, list) or not all(
                isinstance(v, kinds) and not isinstance(v, bool) for v in value
            ):
                kind = "strings" if key == "allowed_numbers" else "integers"
                raise ConfigError(f"{path}: request {n}: {key} must be null or a list of {kind}")
            row[key] = tuple(str(v) for v in value) if key == "allowed_numbers" else tuple(value)
        out.append(GenerationRequest(**row))
    return out


def write_completions(completions: list[Completion], path: Path) -> None:
    _write_jsonl(path, [asdict(c) for c in completions])


def read_completions(path: Path) -> dict[str, Completion]:
    return {row["request_id"]: Completion(**row) for row in _read_jsonl(path)}


def run_batch(requests_path: Path, completions_path: Path, engine: Engine) -> list[Completion]:
    """Answer every request in the file with one engine call; completions keep the request order."""
    requests = read_requests(requests_path)
    completions = engine.generate(requests) if requests else []
    write_completions(completions, completions_path)
    return completions


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    rows = []
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise ConfigError(f"{path}:{n}: not a JSON object ({exc}); fix or drop that line") from exc
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m models.batch --requests R.jsonl --out C.jsonl --preset P [--tp N]`.

    With `--tp N` outside torchrun it re-launches itself under `torchrun --nproc_per_node N`; under
    torchrun every rank loads its shard and decodes, rank 0 reads and writes the files. The last
    stdout line is one JSON object with the job's accounting (models/jobs.py `GenerationRun.job`).
    """
    import argparse
    import subprocess

    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m models.batch", description=main.__doc__.split("\n")[0])
    ap.add_argument("--requests", type=Path, required=True, help="GenerationRequest rows, JSONL")
    ap.add_argument("--out", type=Path, required=True, help="where the Completion rows go, JSONL")
    ap.add_argument("--preset", default="smollm2-135m")
    ap.add_argument("--source", help="override the preset's weights (a local dir, s3://…, .gguf)")
    ap.add_argument("--cache-dir", type=Path, default=Path("var/models"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--backend", default="auto", help="auto | loop | paged (see models/engine.py)")
    ap.add_argument("--tp", type=int, default=1, help="tensor-parallel ranks (torchrun processes)")
    ap.add_argument("--tp-backend", default="transformers", help="transformers | deepspeed")
    args = ap.parse_args(argv)
    if args.tp > 1 and "WORLD_SIZE" not in os.environ:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={args.tp}",
            "-m",
            "models.batch",
            *argv,
        ]
        return subprocess.call(cmd)
    try:
        if args.source:  # every torchrun rank parses the same argv, so each registers the same preset
            from dataclasses import replace

            from models.presets import get_preset, register_preset

            register_preset(replace(get_preset(args.preset), source=args.source), replace=True)
        if "WORLD_SIZE" in os.environ:
            summary = _run_tp(args)
        else:
            from models.engine import load_engine

            requests = read_requests(args.requests)  # a bad file fails before a long model load
            engine = load_engine(
                args.preset, args.cache_dir, args.device, args.dtype, args.batch_size, backend=args.backend
            )
            engine.progress = stderr_progress()
            run = engine.generate_run(requests) if requests else None  # this call's own accounting
            write_completions(run.completions if run else [], args.out)
            job = run.job if run else {}
            summary = {"preset": engine.name, "revision": engine.revision, "tp": 1, **job}
    except ResearchDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary is not None:
        print(json.dumps(summary))
    return 0


def stderr_progress(every_s: float = 10.0) -> Callable[[int, int], None]:
    """`generated i/N requests` on stderr, at most every `every_s` seconds and at the end: a GPU job
    can run for an hour, and the flow that launched it relays these lines to its log."""
    last = [float("-inf")]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every_s:
            last[0] = now
            print(f"generated {done}/{total} requests", file=sys.stderr, flush=True)

    return report


def _run_tp(args: Any) -> dict | None:
    from models.tp import generate_all, load_tp_engine, shutdown

    engine, rank, world = load_tp_engine(
        args.preset, args.cache_dir, args.device, args.dtype, args.batch_size, args.tp_backend
    )
    try:
        if args.tp not in (1, world):
            raise ConfigError(f"--tp {args.tp} but torchrun started {world} ranks")
        requests: list[GenerationRequest] | str | None = None
        if rank == 0:
            engine.progress = stderr_progress()
            try:
                requests = read_requests(args.requests)
            except ResearchDeskError as exc:
                requests = str(exc)
        completions = generate_all(engine, requests, rank)
        if rank != 0:
            return None
        write_completions(completions, args.out)
        sharded = engine.stats.extra.get("tp_sharded_params", 0)
        return {
            "preset": engine.name,
            "revision": engine.revision,
            "tp": world,
            "tp_sharded_params": sharded,
            **engine.last_job,
        }
    finally:
        shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
