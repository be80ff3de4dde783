"""Per-call objects of the generation engine (models/engine.py): a prepared request, one `generate`.

Everything one `generate` call changes while it runs lives on its `GenerationRun`, never on the
engine, so two calls on one engine do not see each other's counters; the engine only folds a
finished run into its lifetime `stats` and `last_job`. `left_pad` is the batching helper that
scoring (models/scoring.py) and the benchmarks share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from models.devices import PeakMemory
from models.types import Completion, GenerationRequest, Progress


@dataclass
class Job:
    """One valid request, tokenized and with its effective parameters resolved."""

    index: int
    ids: list[int]
    max_new: int
    stops: tuple[str, ...]
    temperature: float  # <= 0: greedy
    top_k: int
    top_p: float
    seed: int
    sentences: int = 0  # stop after this many complete sentences (0: no such stop)


@dataclass
class GenerationRun:
    """The state and accounting of one `generate` call; `job` is its summary once it `finish`es."""

    requests: list[GenerationRequest]
    progress: Progress | None
    memory: PeakMemory
    results: list[Completion | None] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    done: int = 0  # requests answered so far (errors included)
    batches: int = 0  # decode attempts (a retried half counts again)
    oom_splits: int = 0
    error_splits: int = 0
    prefill_seconds: float = 0.0
    prefill_tokens: int = 0
    decode_seconds: float = 0.0
    ttft: list[float] = field(default_factory=list)  # seconds from `started`, per decoded request
    seconds: float = 0.0
    job: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.results:
            self.results = [None] * len(self.requests)

    def set(self, index: int, completion: Completion) -> None:
        self.results[index] = completion
        self.done += 1
        if self.progress:
            self.progress(self.done, len(self.results))

    @property
    def completions(self) -> list[Completion]:
        final = [c for c in self.results if c is not None]
        assert len(final) == len(self.requests)
        return final

    def finish(self, backend: str) -> dict[str, Any]:
        """Stop the clock and summarise the call (the run manifest's `job`, the engine's `last_job`)."""
        self.seconds = seconds = time.perf_counter() - self.started
        final = self.completions
        ttft = sorted(self.ttft)
        tokens_out = sum(c.tokens_out for c in final)
        self.job = {
            "requests": len(self.requests),
            "errors": sum(c.finish_reason == "error" for c in final),
            "tokens_in": sum(c.tokens_in for c in final if c.finish_reason != "error"),
            "tokens_out": tokens_out,
            "seconds": round(seconds, 3),
            "tokens_per_second": round(tokens_out / seconds, 2) if seconds else 0.0,
            "prefill_seconds": round(self.prefill_seconds, 3),
            "prefill_tokens_per_second": (
                round(self.prefill_tokens / self.prefill_seconds, 1) if self.prefill_seconds else 0.0
            ),
            "decode_seconds": round(self.decode_seconds, 3),
            # Time to first token, measured per request from the start of this call (queueing included).
            "ttft_seconds_p50": round(ttft[len(ttft) // 2], 3) if ttft else 0.0,
            "ttft_seconds_max": round(ttft[-1], 3) if ttft else 0.0,
            "peak_memory_bytes": self.memory.bytes(),
            "peak_memory_kind": "cuda_max_allocated" if self.memory.cuda else "process_rss",
            "backend": backend,
        }
        return self.job


def left_pad(rows: list[list[int]], pad_id: int, device: str) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, position_ids), left padded: every row ends at the last column."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    # Positions count real tokens only, so a padded row sees the same positions as unpadded.
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), pos.to(device)
