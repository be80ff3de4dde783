"""The generation engine: the ONLY module (with models/tp.py and models/cuda.py) that touches devices.

`load_engine(preset)` loads a preset once per batch job; `generate(requests)` answers every request
through one continuous-batching decoder (models/decode.py) and returns completions in input order.
Bad input never sinks the batch: an empty or over-long prompt becomes an error completion, and a
batch that runs out of memory is retried in halves until the request that cannot fit fails alone,
because a nightly run over a whole watchlist must not die on one oversized prompt.
`loglikelihood(pairs)` scores continuations for moderation labels. `last_job` holds the accounting
of the latest `generate` (tokens, tok/s, prefill time, time to first token, peak memory) that the
run manifest records.

CPU dtype: on CPUs with bf16 instructions (avx512_bf16 / AMX) the default "auto" keeps the
weights in bf16 for the whole generate (1.7x faster than fp32 end to end here, text still
sane); CPUs without them fall back to fp32, where bf16 would be emulated and slow. See
`resolve_dtype` for the numbers behind that choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.constraint import for_request, is_constrained
from models.decode import Decoder, Row
from models.devices import PeakMemory, is_out_of_memory, resolve_device, resolve_dtype
from models.loading import DEFAULT_CACHE_DIR, LoadedModel, load_model
from models.presets import ModelPreset, format_prompt, get_preset
from models.types import Completion, GenerationRequest, GenerationStats
from rag.errors import ConfigError

Progress = Callable[[int, int], None]  # (done requests, total requests)
BACKENDS = ("auto", "loop", "paged")


@dataclass
class _Job:
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


class TransformersEngine:
    """Batched generation + scoring on one device; satisfies `models.types.Engine`.

    `backend`: "loop" is models/decode.py (continuous batching with an in-place KV cache, any
    device); "paged" is transformers' `generate_batch` (paged attention, CUDA only, see
    models/cuda.py); "auto" picks paged on CUDA when the preset needs no n-gram ban, else loop.
    Requests with `allowed_numbers`/`allowed_citations` always take the loop: only it constrains.
    `place=False` leaves an already placed (e.g. tensor-parallel) model where it is.
    """

    def __init__(
        self,
        preset: ModelPreset,
        loaded: LoadedModel,
        device: str,
        dtype: str,
        batch_size: int = 16,
        progress: Progress | None = None,
        backend: str = "auto",
        place: bool = True,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "auto":
            paged = device.startswith("cuda") and not preset.no_repeat_ngram_size
            backend = "paged" if paged else "loop"
        if backend == "paged" and preset.no_repeat_ngram_size:
            raise ConfigError(f"preset {preset.name!r} bans repeated n-grams; the paged backend cannot")
        self.preset = preset
        self.name = preset.name
        self.revision = loaded.revision
        self.tokenizer = loaded.tokenizer
        model = loaded.model.to(device=device, dtype=getattr(torch, dtype)) if place else loaded.model
        self.model = model.eval()
        self.device = device
        self.batch_size = batch_size
        self.backend = backend
        self.progress = progress
        gen_cfg = self.model.generation_config
        eos = gen_cfg.eos_token_id if gen_cfg.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids: list[int] = [eos] if isinstance(eos, int) else list(eos or [])
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        self._specials = [t for t in getattr(self.tokenizer, "all_special_tokens", []) if t]
        self.stats = GenerationStats(
            load_seconds=loaded.seconds,
            device=device,
            dtype=dtype,
            extra={
                "batches": 0,
                "errors": 0,
                "from_cache": loaded.from_cache,
                "batch_size": batch_size,
                "backend": backend,
                "oom_splits": 0,
            },
        )
        self.last_job: dict[str, Any] = {}  # accounting of the latest `generate` call (run manifest)

    # -- helpers -----------------------------------------------------------------------------
    @property
    def context_tokens(self) -> int:
        return self.preset.context_tokens

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def prompt_tokens(self, system: str, user: str) -> int:
        """Tokens of the fully formatted prompt (chat template / OpenChatKit turns included)."""
        prompt = format_prompt(self.preset, self.tokenizer, system or self.preset.system_prompt, user)
        return len(self._encode(prompt))

    def _encode(self, text: str) -> list[int]:
        # No automatic BOS/EOS: the prompt format (or chat template) decides every token.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _left_pad(self, rows: list[list[int]]) -> tuple[Any, Any, Any]:
        """(input_ids, attention_mask, position_ids), left padded: every row ends at the last column."""
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        # Positions count real tokens only, so a padded row sees the same positions as unpadded.
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _prepare(self, index: int, req: GenerationRequest) -> _Job | Completion:
        preset = self.preset
        if not req.user.strip():
            return Completion(
                req.request_id, "", finish_reason="error", error="empty prompt: request has no user text"
            )
        prompt = format_prompt(preset, self.tokenizer, req.system or preset.system_prompt, req.user)
        ids = self._encode(prompt)
        room = preset.context_tokens - len(ids)
        if room < 1:
            return Completion(
                req.request_id,
                "",
                tokens_in=len(ids),
                finish_reason="error",
                error=(
                    f"prompt is {len(ids)} tokens but {preset.name} has a {preset.context_tokens}-token "
                    "context (prompt + answer); use fewer or shorter sources"
                ),
            )
        max_new = min(req.max_new_tokens or preset.max_new_tokens, room)
        temperature = preset.temperature if req.temperature is None else req.temperature
        stops = preset.stop_words if req.stop_words is None else tuple(req.stop_words)
        return _Job(
            index,
            ids,
            max_new,
            tuple(s for s in stops if s),
            float(temperature),
            preset.top_k if req.top_k is None else int(req.top_k),
            preset.top_p if req.top_p is None else float(req.top_p),
            # Default seed 0: an unseeded run must still be reproducible for the audit trail.
            0 if req.seed is None else int(req.seed),
            int(req.max_sentences or 0),
        )

    # -- generation --------------------------------------------------------------------------
    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Completion]:
        """Complete every request; results come back in input order, errors as error completions."""
        start = time.perf_counter()
        progress = progress or self.progress
        results: list[Completion | None] = [None] * len(requests)
        jobs: list[_Job] = []
        for i, req in enumerate(requests):
            prepared = self._prepare(i, req)
            if isinstance(prepared, Completion):
                results[i] = prepared
            else:
                jobs.append(prepared)
        self._done = len(requests) - len(jobs)
        self._job = {"prefill_seconds": 0.0, "prefill_tokens": 0, "decode_seconds": 0.0, "ttft": []}
        memory = PeakMemory(self.device)
        self._run(jobs, requests, results, progress, memory)
        final = [c for c in results if c is not None]
        assert len(final) == len(requests)
        seconds = time.perf_counter() - start
        job = self._job
        ttft = sorted(job.pop("ttft"))
        errors = sum(c.finish_reason == "error" for c in final)
        self.last_job = {
            "requests": len(requests),
            "errors": errors,
            "tokens_in": sum(c.tokens_in for c in final if c.finish_reason != "error"),
            "tokens_out": sum(c.tokens_out for c in final),
            "seconds": round(seconds, 3),
            "tokens_per_second": round(sum(c.tokens_out for c in final) / seconds, 2) if seconds else 0.0,
            "prefill_seconds": round(job["prefill_seconds"], 3),
            "prefill_tokens_per_second": (
                round(job["prefill_tokens"] / job["prefill_seconds"], 1) if job["prefill_seconds"] else 0.0
            ),
            "decode_seconds": round(job["decode_seconds"], 3),
            # Time to first token, measured per request from the start of this call (queueing included).
            "ttft_seconds_p50": round(ttft[len(ttft) // 2], 3) if ttft else 0.0,
            "ttft_seconds_max": round(ttft[-1], 3) if ttft else 0.0,
            "peak_memory_bytes": memory.bytes(),
            "peak_memory_kind": "cuda_max_allocated" if memory.cuda else "process_rss",
            "backend": self.backend,
        }
        self.stats.requests += len(requests)
        self.stats.extra["errors"] += errors
        self.stats.tokens_in += self.last_job["tokens_in"]
        self.stats.tokens_out += self.last_job["tokens_out"]
        self.stats.seconds += seconds
        self.stats.prefill_seconds += job["prefill_seconds"]
        self.stats.peak_memory_bytes = max(self.stats.peak_memory_bytes, self.last_job["peak_memory_bytes"])
        return final

    def _set(
        self, results: list[Completion | None], index: int, completion: Completion, progress: Progress | None
    ) -> None:
        results[index] = completion
        self._done += 1
        if progress:
            progress(self._done, len(results))

    def _run(
        self,
        jobs: list[_Job],
        requests: list[GenerationRequest],
        results: list[Completion | None],
        progress: Progress | None,
        memory: PeakMemory,
    ) -> None:
        """Decode `jobs`; on failure keep what finished and retry the rest in halves, down to one.

        An out-of-memory batch usually fits once halved; any other exception is isolated the same
        way, so one poisonous request fails alone. Rows are independent (models/decode.py), so a
        retried row produces exactly what it would have in the bigger batch.
        """
        if not jobs:
            return
        try:
            self._decode(jobs, requests, results, progress, memory)
            return
        except Exception as exc:  # noqa: BLE001 - isolated below, reported per request
            oom = is_out_of_memory(exc)
            failure = exc
        self._free_memory()
        left = sorted((j for j in jobs if results[j.index] is None), key=lambda j: len(j.ids), reverse=True)
        if len(left) > 1:
            self.stats.extra["oom_splits" if oom else "error_splits"] = (
                self.stats.extra.get("oom_splits" if oom else "error_splits", 0) + 1
            )
            half = (len(left) + 1) // 2
            self._run(left[:half], requests, results, progress, memory)
            self._run(left[half:], requests, results, progress, memory)
            return
        for job in left:
            what = "out of memory even alone" if oom else "generation failed"
            self._set(
                results,
                job.index,
                Completion(
                    requests[job.index].request_id,
                    "",
                    tokens_in=len(job.ids),
                    finish_reason="error",
                    error=f"{what} ({len(job.ids)} prompt tokens): {failure!r}",
                ),
                progress,
            )

    def _free_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def _decode(
        self,
        jobs: list[_Job],
        requests: list[GenerationRequest],
        results: list[Completion | None],
        progress: Progress | None,
        memory: PeakMemory,
    ) -> None:
        self.stats.extra["batches"] += 1
        free = [j for j in jobs if not is_constrained(requests[j.index])]  # the rest need the loop
        if self.backend == "paged" and free:
            from models.cuda import generate_paged

            t = time.perf_counter()
            try:
                outs = generate_paged(self.model, self.tokenizer, free, self.eos_ids, self.batch_size)
            except Exception as exc:
                if is_out_of_memory(exc) or self.stats.extra.get("paged_ok"):
                    raise
                # transformers' paged cache needs attention code that forwards its kwargs; GPT-NeoX's
                # does not (5.24: "PagedAttentionCache.update() missing ... 'kwargs'"). Fall back to
                # the loop for the rest of this engine's life and say so in the stats.
                self.backend = self.stats.extra["backend"] = "loop"
                self.stats.extra["paged_fallback"] = repr(exc)[:300]
                outs = None
            if outs is not None:
                self.stats.extra["paged_ok"] = True
                self._job["decode_seconds"] += time.perf_counter() - t
                memory.sample()
                for job, (tokens, reason) in zip(free, outs, strict=True):
                    completion = self._finish(requests[job.index], job, tokens, reason)
                    self._set(results, job.index, completion, progress)
                if not (jobs := [j for j in jobs if results[j.index] is None]):
                    return
        ngram = self.preset.no_repeat_ngram_size
        decoder = Decoder(self.model, self.tokenizer, self.eos_ids, ngram, self.batch_size, memory.sample)
        rows = [
            Row(j.ids, j.max_new, j.stops, j.temperature, j.top_k, j.top_p, j.seed, j, sentences=j.sentences)
            for j in jobs
        ]
        for row in rows:  # a fresh constraint per row and per try: it tracks that row's tokens
            row.constraint = for_request(self.tokenizer, requests[row.tag.index])

        def done(row: Row) -> None:
            job = row.tag
            self._job["ttft"].append(row.first_token_s)
            completion = self._finish(requests[job.index], job, row.tokens, row.reason)
            self._set(results, job.index, completion, progress)

        try:
            decoder.run(rows, on_done=done)
        finally:
            st = decoder.stats
            self._job["prefill_seconds"] += st.prefill_seconds
            self._job["prefill_tokens"] += st.prefill_tokens
            self._job["decode_seconds"] += st.decode_seconds

    def _finish(self, req: GenerationRequest, job: _Job, tokens: list[int], reason: str) -> Completion:
        """Decode one row's tokens: drop a final eos, cut at the first stop word, strip specials."""
        kept = tokens[:-1] if reason == "eos" else tokens
        finish = "length" if reason == "length" else "stop"
        text = self.tokenizer.decode(kept, skip_special_tokens=False)
        cuts = [text.find(s) for s in job.stops if s in text]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        for special in self._specials:
            text = text.replace(special, "")
        return Completion(
            req.request_id, text.strip(), tokens_in=len(job.ids), tokens_out=len(tokens), finish_reason=finish
        )

    # -- scoring -----------------------------------------------------------------------------
    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[list[float]]:
        """Per-token log-probs of each continuation given its raw context (models/scoring.py)."""
        from models.scoring import loglikelihood

        return loglikelihood(self, pairs)


def load_engine(
    preset_name: str,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
    progress: Progress | None = None,
    backend: str = "auto",
) -> TransformersEngine:
    """Load a preset's model once for a whole batch job (never per ticker).

    `cache_dir` is the root for converted GGUF copies and unpacked s3:// archives
    (`<cache_dir>/<preset>/`; None: no cache). `device`: "auto" (cuda if present, else cpu) or a
    torch device string. `dtype`: one of `DTYPES`; "auto" = bf16 on GPUs and on CPUs with bf16
    instructions, else fp32. `backend`: see `TransformersEngine`.
    """
    preset = get_preset(preset_name)
    dev = resolve_device(device)
    weight_dtype = resolve_dtype(dtype, dev)
    import torch

    device_map = dev if dev.startswith("cuda") else None
    loaded = load_model(
        preset, cache_dir=cache_dir, dtype=getattr(torch, weight_dtype), device_map=device_map
    )
    return TransformersEngine(preset, loaded, dev, weight_dtype, batch_size, progress, backend)
