"""Requests and results at the generation seam.

The pipeline builds `GenerationRequest`s (system + user text, per-request sampling params); the
engine formats them for its preset (OpenChatKit `<human>:` turns or the model's chat template),
so prompt-building code never depends on which model runs.

`allowed_numbers` / `allowed_citations` travel with the request, not the engine, because what a
model may cite is a property of that prompt's sources; the engine turns them into a decoding
constraint (models/constraint.py) and they survive the JSONL hand-off to a TP job (models/batch.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Progress = Callable[[int, int], None]  # (done requests, total requests)


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    user: str  # instruction + numbered sources; never trimmed from the instruction side
    system: str = ""
    max_new_tokens: int | None = None  # None -> preset default
    temperature: float | None = None  # None -> preset default; 0 -> greedy
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop_words: tuple[str, ...] | None = None  # None -> preset default; () -> none
    # Numbers as the sources spell them ("391,035", "$391.0 billion", "2%"): every digit run the
    # model writes must be a usual form of one of them. None -> unconstrained; () -> no digits.
    allowed_numbers: tuple[str, ...] | None = None
    # Source numbers a `[n]` marker may cite. None -> unconstrained; () -> no markers.
    allowed_citations: tuple[int, ...] | None = None
    # Stop once the answer holds this many complete sentences and starts another (claim units ask
    # for one; a small model otherwise rambles on to its token limit). None -> no such stop.
    max_sentences: int | None = None


@dataclass
class Completion:
    request_id: str
    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    error: str = ""


@dataclass
class GenerationStats:
    """Accounting for one batched job (recorded in the run manifest)."""

    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    prefill_seconds: float = 0.0
    peak_memory_bytes: int = 0  # highest per-job peak seen (CUDA allocator peak or process RSS)
    device: str = "cpu"
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_out / self.seconds if self.seconds else 0.0


class LabelScorer(Protocol):
    """What moderation (models/moderation.py) needs: continuation scoring, nothing else."""

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[list[float]]:
        """Per-token log-probabilities of each continuation given its raw (already formatted) context."""
        ...


class Engine(LabelScorer, Protocol):
    """What the pipeline needs from a model; the real engine and test fakes both satisfy it.

    Read by callers: `name`/`revision` (audit, run manifest), `stats` (cumulative accounting; the
    flows diff it around a job), `progress` (a callback the flows set before a job), `last_job`
    (accounting of the latest `generate`, models/engine.py; a fake's may stay empty).
    `generate` must not rely on `last_job` or `stats` to pass state between calls.
    """

    name: str  # preset name
    revision: str  # model revision/digest recorded for audit
    stats: GenerationStats  # summed over the engine's life (load, device, dtype, counters)
    progress: Progress | None  # called as (done, total) while `generate` runs
    last_job: dict[str, Any]  # accounting of the latest finished `generate` call

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]: ...


class TokenCounter(Protocol):
    """Optional on an `Engine`: what prompt trimming (models/moderation.py `_fit`) reads when present."""

    @property
    def context_tokens(self) -> int: ...  # prompt + answer must fit

    def count_tokens(self, text: str) -> int: ...


class PresetInfo(Protocol):
    """Optional `engine.preset`: models/screens.py trusts label scoring only from a moderation model."""

    role: str  # "chat" | "moderation"
