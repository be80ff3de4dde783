"""The batch generation job as a file-to-file step: requests JSONL in, completions JSONL out.

This is the seam between the CPU flow and the generation node: the flow writes every prompt of a
run into one file, one process (or one torchrun process group on a GPU node) loads the model once
and answers all of them, and the flow reads the answers back. Files, not payloads, cross it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from models.types import Completion, Engine, GenerationRequest


def write_requests(requests: list[GenerationRequest], path: Path) -> None:
    _write_jsonl(path, [asdict(r) for r in requests])


def read_requests(path: Path) -> list[GenerationRequest]:
    return [GenerationRequest(**row) for row in _read_jsonl(path)]


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
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
