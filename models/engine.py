"""The generation engine: the chat model on its device (tensor parallel in models/tp.py, CUDA-only
paths in models/cuda.py). Which device and dtype is decided in one place, models/devices.py, which
the embedders follow too.

`load_engine(preset)` loads a preset once per batch job; `generate(requests)` answers every request
through one continuous-batching decoder (models/decode.py) and returns completions in input order.
Bad input never sinks the batch: an empty or over-long prompt becomes an error completion, and a
batch that runs out of memory is retried in halves until the request that cannot fit fails alone,
because a nightly run over a whole watchlist must not die on one oversized prompt.
`loglikelihood(pairs)` scores continuations for moderation labels (models/scoring.py, through the
public `encode`/`left_pad`/`forward_logits`). Each call's state lives on its own `GenerationRun`
(models/jobs.py): `generate_run(requests)` returns it, `generate` its completions; `last_job` holds the
accounting of the latest finished call (tokens, tok/s, prefill time, time to first token, peak
memory) that the run manifest records, and `stats` sums every call.

CPU dtype: on CPUs with bf16 instructions (avx512_bf16 / AMX) the default "auto" keeps the
weights in bf16 for the whole generate (1.7x faster than fp32 end to end here, text still
sane); CPUs without them fall back to fp32, where bf16 would be emulated and slow. See
`resolve_dtype` for the numbers behind that choice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from models.constraint import for_request, is_constrained
from models.decode import Decoder, Row
from models.devices import PeakMemory, is_out_of_memory, resolve_device, resolve_dtype
from models.jobs import GenerationRun, Job, left_pad
from models.loading import DEFAULT_CACHE_DIR, LoadedModel, load_model
from models.presets import ModelPreset, format_prompt, get_preset
from models.scoring import score_pairs
from models.types import Completion, GenerationRequest, GenerationStats, Progress
from rag.errors import ConfigError

BACKENDS = ("auto", "loop", "paged")


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
        self.last_job: dict[str, Any] = {}  # accounting of the latest finished `generate` call
        self._paged_works = False  # the paged backend has answered once: its failures are real now

    # -- helpers -----------------------------------------------------------------------------
    @property
    def context_tokens(self) -> int:
        return self.preset.context_tokens

    @property
    def start_id(self) -> int:
        """The token an empty context is scored from: bos, else the first eos."""
        return self.tokenizer.bos_token_id or self.eos_ids[0]

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def prompt_tokens(self, system: str, user: str) -> int:
        """Tokens of the fully formatted prompt (chat template / OpenChatKit turns included)."""
        prompt = format_prompt(self.preset, self.tokenizer, system or self.preset.system_prompt, user)
        return len(self.encode(prompt))

    def encode(self, text: str) -> list[int]:
        # No automatic BOS/EOS: the prompt format (or chat template) decides every token.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    _encode = encode  # the older private name (tests read it)

    def left_pad(self, rows: list[list[int]]) -> tuple[Any, Any, Any]:
        """(input_ids, attention_mask, position_ids) on the engine's device, see `models.jobs.left_pad`."""
        return left_pad(rows, self.pad_id, self.device)

    def forward_logits(self, ids: Any, mask: Any, pos: Any, keep: int) -> Any:
        """Logits of the last `keep` positions of a left-padded batch: (batch, keep, vocab), no cache."""
        return self.model(
            input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=keep
        ).logits

    def _prepare(self, index: int, req: GenerationRequest) -> Job | Completion:
        preset = self.preset
        if not req.user.strip():
            return Completion(
                req.request_id, "", finish_reason="error", error="empty prompt: request has no user text"
            )
        prompt = format_prompt(preset, self.tokenizer, req.system or preset.system_prompt, req.user)
        ids = self.encode(prompt)
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
        return Job(
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
        return self.generate_run(requests, progress).completions

    def generate_run(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> GenerationRun:
        """`generate`, returning the call's own `GenerationRun` (completions + its `job` accounting)."""
        run = GenerationRun(list(requests), progress or self.progress, PeakMemory(self.device))
        jobs: list[Job] = []
        for i, req in enumerate(requests):
            prepared = self._prepare(i, req)
            if isinstance(prepared, Completion):
                run.results[i] = prepared
                run.done += 1
            else:
                jobs.append(prepared)
        self._run(jobs, run)
        job = run.finish(self.backend)
        self.last_job = job
        stats, extra = self.stats, self.stats.extra
        stats.requests += len(requests)
        extra["errors"] += job["errors"]
        extra["batches"] += run.batches
        extra["oom_splits"] += run.oom_splits
        if run.error_splits:
            extra["error_splits"] = extra.get("error_splits", 0) + run.error_splits
        stats.tokens_in += job["tokens_in"]
        stats.tokens_out += job["tokens_out"]
        stats.seconds += run.seconds
        stats.prefill_seconds += run.prefill_seconds
        stats.peak_memory_bytes = max(stats.peak_memory_bytes, job["peak_memory_bytes"])
        return run

    def _run(self, jobs: list[Job], run: GenerationRun) -> None:
        """Decode `jobs`; on failure keep what finished and retry the rest in halves, down to one.

        An out-of-memory batch usually fits once halved; any other exception is isolated the same
        way, so one poisonous request fails alone. Rows are independent (models/decode.py), so a
        retried row produces exactly what it would have in the bigger batch.
        """
        if not jobs:
            return
        try:
            self._decode(jobs, run)
            return
        except Exception as exc:  # noqa: BLE001 - isolated below, reported per request
            oom = is_out_of_memory(exc)
            failure = exc
        self._free_memory()
        left = [j for j in jobs if run.results[j.index] is None]
        left.sort(key=lambda j: len(j.ids), reverse=True)
        if len(left) > 1:
            if oom:
                run.oom_splits += 1
            else:
                run.error_splits += 1
            half = (len(left) + 1) // 2
            self._run(left[:half], run)
            self._run(left[half:], run)
            return
        for job in left:
            what = "out of memory even alone" if oom else "generation failed"
            run.set(
                job.index,
                Completion(
                    run.requests[job.index].request_id,
                    "",
                    tokens_in=len(job.ids),
                    finish_reason="error",
                    error=f"{what} ({len(job.ids)} prompt tokens): {failure!r}",
                ),
            )

    def _free_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def _decode(self, jobs: list[Job], run: GenerationRun) -> None:
        run.batches += 1
        requests = run.requests
        free = [j for j in jobs if not is_constrained(requests[j.index])]  # the rest need the loop
        if self.backend == "paged" and free:
            from models.cuda import generate_paged

            t = time.perf_counter()
            try:
                outs = generate_paged(self.model, self.tokenizer, free, self.eos_ids, self.batch_size)
            except Exception as exc:
                if is_out_of_memory(exc) or self._paged_works:
                    raise
                # transformers' paged cache needs attention code that forwards its kwargs; GPT-NeoX's
                # does not (5.24: "PagedAttentionCache.update() missing ... 'kwargs'"). Fall back to
                # the loop for the rest of this engine's life and say so in the stats.
                self.backend = self.stats.extra["backend"] = "loop"
                self.stats.extra["paged_fallback"] = repr(exc)[:300]
                outs = None
            if outs is not None:
                self._paged_works = self.stats.extra["paged_ok"] = True
                run.decode_seconds += time.perf_counter() - t
                run.memory.sample()
                for job, (tokens, reason) in zip(free, outs, strict=True):
                    run.set(job.index, self._finish(requests[job.index], job, tokens, reason))
                if not (jobs := [j for j in jobs if run.results[j.index] is None]):
                    return
        ngram = self.preset.no_repeat_ngram_size
        decoder = Decoder(self.model, self.tokenizer, self.eos_ids, ngram, self.batch_size, run.memory.sample)
        rows = [
            Row(j.ids, j.max_new, j.stops, j.temperature, j.top_k, j.top_p, j.seed, j, sentences=j.sentences)
            for j in jobs
        ]
        for row in rows:  # a fresh constraint per row and per try: it tracks that row's tokens
            row.constraint = for_request(self.tokenizer, requests[row.tag.index])

        def done(row: Row) -> None:
            job = row.tag
            run.ttft.append(row.first_token_s)
            run.set(job.index, self._finish(requests[job.index], job, row.tokens, row.reason))

        try:
            decoder.run(rows, on_done=done)
        finally:
            st = decoder.stats
            run.prefill_seconds += st.prefill_seconds
            run.prefill_tokens += st.prefill_tokens
            run.decode_seconds += st.decode_seconds

    def _finish(self, req: GenerationRequest, job: Job, tokens: list[int], reason: str) -> Completion:
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
        start = time.perf_counter()
        results, rows = score_pairs(self, pairs)
        extra = self.stats.extra
        extra["loglikelihood_pairs"] = extra.get("loglikelihood_pairs", 0) + len(pairs)
        extra["loglikelihood_rows"] = extra.get("loglikelihood_rows", 0) + rows
        extra["loglikelihood_seconds"] = extra.get("loglikelihood_seconds", 0.0) + time.perf_counter() - start
        return results


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
