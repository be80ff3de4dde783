"""The generation engine: the ONLY module that touches torch devices and dtypes.

`load_engine(preset)` loads a preset once per batch job; `generate(requests)` runs every request
in length-sorted, left-padded batches and returns completions in input order. One bad request
(too long, empty) becomes an error completion; the rest still complete, because a nightly run
over a whole watchlist must not die on one oversized prompt. `loglikelihood(pairs)` scores
continuations for moderation labels.

CPU dtype: on CPUs with bf16 instructions (avx512_bf16 / AMX) the default "auto" keeps the
weights in bf16 for the whole generate (1.7x faster than fp32 end to end here, text still
sane); CPUs without them fall back to fp32, where bf16 would be emulated and slow. See
`resolve_dtype` for the numbers behind that choice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.loading import DEFAULT_CACHE_DIR, LoadedModel, load_model
from models.ngram import generated_ngram_ban
from models.presets import ModelPreset, format_prompt, get_preset
from models.stopping import make_stop_criteria
from models.types import Completion, GenerationRequest, GenerationStats
from rag.errors import ConfigError, ModelError

Progress = Callable[[int, int], None]  # (done requests, total requests)
DTYPES = ("auto", "float32", "bfloat16", "float16")


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """bf16-related CPU flags (Linux only; elsewhere the empty set -> fp32)."""
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:
        return set()
    return {f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags}


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """Map a dtype option to a torch dtype name for the weights.

    Measured on this project's 2-core AMD EPYC (avx512_bf16, no AMX), SmolLM2-135M, one batch of
    8 prompts of 598-647 tokens, 128 new tokens, steady-state runs on a quiet machine: fp32
    weights 21.9 s (47 tok/s), bf16 weights 13.0 s (79 tok/s), fp32 + bf16 autocast 16.0 s
    (64 tok/s), bf16 autocast for the prefill only + fp32 decode 19.6 s (52 tok/s). Prefill
    alone: fp32 8.4 s, bf16 5.0 s. bf16 changes greedy outputs (different, equally fluent
    text). GPUs: bf16 (fp16 where bf16 is missing).
    """
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "cpu" and cpu_bf16_flags() and torch.backends.mkldnn.is_available():
        return "bfloat16"
    return "float32"


@dataclass
class _Job:
    """One valid request, tokenized and with its effective parameters resolved."""

    index: int
    ids: list[int]
    max_new: int
    stops: tuple[str, ...]
    key: tuple  # requests with equal keys may share a batch (same sampling config)


class TransformersEngine:
    """Batched generation + scoring on one device; satisfies `models.types.Engine`."""

    def __init__(
        self,
        preset: ModelPreset,
        loaded: LoadedModel,
        device: str,
        dtype: str,
        batch_size: int = 16,
        progress: Progress | None = None,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        self.preset = preset
        self.name = preset.name
        self.revision = loaded.revision
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model.to(device=device, dtype=getattr(torch, dtype)).eval()
        self.device = device
        self.batch_size = batch_size
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
            extra={"batches": 0, "errors": 0, "from_cache": loaded.from_cache, "batch_size": batch_size},
        )

    # -- helpers -----------------------------------------------------------------------------
    @property
    def context_tokens(self) -> int:
        return self.preset.context_tokens

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

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
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
        # Positions count real tokens only, so a padded row sees the same positions as unpadded.
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _prepare(self, index: int, req: GenerationRequest) -> _Job | Completion:
        preset = self.preset
        if not req.user.strip():
            return Completion(req.request_id, "", finish_reason="error",
                              error="empty prompt: request has no user text")
        prompt = format_prompt(preset, self.tokenizer, req.system or preset.system_prompt, req.user)
        ids = self._encode(prompt)
        room = preset.context_tokens - len(ids)
        if room < 1:
            return Completion(
                req.request_id, "", tokens_in=len(ids), finish_reason="error",
                error=(f"prompt is {len(ids)} tokens but {preset.name} has a {preset.context_tokens}-token "
                       "context (prompt + answer); use fewer or shorter sources"),
            )
        max_new = min(req.max_new_tokens or preset.max_new_tokens, room)
        temperature = preset.temperature if req.temperature is None else req.temperature
        stops = preset.stop_words if req.stop_words is None else tuple(req.stop_words)
        if temperature <= 0:
            key: tuple = ("greedy",)
        else:
            top_k = preset.top_k if req.top_k is None else req.top_k
            top_p = preset.top_p if req.top_p is None else req.top_p
            # Default seed 0: an unseeded run must still be reproducible for the audit trail.
            seed = 0 if req.seed is None else req.seed
            key = ("sample", float(temperature), int(top_k), float(top_p), seed)
        return _Job(index, ids, max_new, tuple(s for s in stops if s), key)

    def _batches(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Group by sampling config, longest first inside a group, then cut into batches.

        Sorting by length keeps padding (wasted compute) small; longest first surfaces an
        out-of-memory batch at the start instead of after an hour.
        """
        groups: dict[tuple, list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.key, []).append(job)
        batches = []
        for group in groups.values():
            group.sort(key=lambda j: len(j.ids), reverse=True)
            batches += [group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size)]
        return batches

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
        done = len(requests) - len(jobs)
        for batch in self._batches(jobs):
            try:
                completions = self._run_batch(batch, [requests[j.index] for j in batch])
            except Exception as exc:  # one failing batch (e.g. OOM) must not lose the others
                completions = [Completion(requests[j.index].request_id, "", tokens_in=len(j.ids),
                                          finish_reason="error", error=f"generation failed: {exc!r}")
                               for j in batch]
            for job, completion in zip(batch, completions, strict=True):
                results[job.index] = completion
            done += len(batch)
            self.stats.extra["batches"] += 1
            if progress:
                progress(done, len(requests))
        final = [c for c in results if c is not None]
        assert len(final) == len(requests)
        self.stats.requests += len(requests)
        self.stats.extra["errors"] += sum(c.finish_reason == "error" for c in final)
        self.stats.tokens_in += sum(c.tokens_in for c in final if c.finish_reason != "error")
        self.stats.tokens_out += sum(c.tokens_out for c in final)
        self.stats.seconds += time.perf_counter() - start
        return final

    def _run_batch(self, batch: list[_Job], requests: list[GenerationRequest]) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        ids, mask, _ = self._left_pad([j.ids for j in batch])
        width = ids.shape[1]
        key = batch[0].key
        cfg: dict[str, Any] = dict(
            max_new_tokens=max(j.max_new for j in batch), pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None, do_sample=key[0] == "sample",
        )
        processors = LogitsProcessorList()
        if self.preset.no_repeat_ngram_size:
            processors.append(generated_ngram_ban(self.preset.no_repeat_ngram_size, width))
        if key[0] == "sample":
            cfg.update(temperature=key[1], top_k=key[2], top_p=key[3])
        criteria = make_stop_criteria(
            self.tokenizer, width, [j.stops for j in batch], [j.max_new for j in batch]
        )
        # Seeded sampling inside a forked RNG: reproducible per (batch, seed), global RNG untouched.
        devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        rng = torch.random.fork_rng(devices=devices) if key[0] == "sample" else contextlib.nullcontext()
        with torch.inference_mode(), rng:
            if key[0] == "sample":
                torch.manual_seed(key[4])  # seeds the CPU and every CUDA generator
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, generation_config=GenerationConfig(**cfg),
                stopping_criteria=StoppingCriteriaList([criteria]), logits_processor=processors,
            )
        out = out[:, width:].tolist()
        return [self._finish(req, job, row, criteria.stopped_at[i], criteria.reason[i])
                for i, (req, job, row) in enumerate(zip(requests, batch, out, strict=True))]

    def _finish(self, req: GenerationRequest, job: _Job, row: list[int], stopped_at: int | None,
                reason: str | None) -> Completion:
        """Cut one generated row at eos / stop word / its own token limit and decode it."""
        eos_at = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
        n, text_end, finish = min(len(row), job.max_new), None, "length"
        if eos_at is not None and (stopped_at is None or eos_at + 1 <= stopped_at):
            n, text_end, finish = eos_at + 1, eos_at, "stop"
        elif stopped_at is not None:
            n, finish = stopped_at, ("stop" if reason == "stop" else "length")
        tokens = row[: n if text_end is None else text_end]
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        cuts = [text.find(s) for s in job.stops if s in text]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        for special in self._specials:
            text = text.replace(special, "")
        return Completion(req.request_id, text.strip(), tokens_in=len(job.ids), tokens_out=n,
                          finish_reason=finish)

    # -- scoring -----------------------------------------------------------------------------
    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[list[float]]:
        """Per-token log-probs of each continuation given its raw context (no prompt format).

        Context and continuation are tokenized separately and concatenated, so the scored tokens
        are exactly the continuation's tokens. Over-long pairs lose context from the left (the
        continuation and the context's end matter most); callers that need the start of a text
        (moderation) trim it themselves.

        Pairs share forward passes where causality allows: the tokens fed for a pair are
        `context + continuation[:-1]`, and when that is a prefix of another pair's fed tokens the
        logits at its positions are identical, so it is read from the longer row. Moderation's five
        labels per text need three rows (`needs caution`/`needs intervention` share `needs`).
        Rows are left padded with explicit position ids and only the trailing positions that
        hold scored tokens get logits (`logits_to_keep`): memory is batch x few x vocab, not
        batch x context x vocab.
        """
        import torch

        start = time.perf_counter()
        ctx_limit = self.preset.context_tokens
        results: list[list[float]] = [[] for _ in pairs]
        scored: list[tuple[int, tuple[int, ...], int]] = []  # (pair index, context+continuation, n_cont)
        for i, (context, continuation) in enumerate(pairs):
            cont = self._encode(continuation)
            if not cont:
                continue
            if len(cont) >= ctx_limit:
                raise ModelError(
                    f"continuation of pair {i} is {len(cont)} tokens; the context holds {ctx_limit}"
                )
            # An empty context still needs one token to predict the first continuation token from.
            ctx = self._encode(context) or [self.tokenizer.bos_token_id or self.eos_ids[0]]
            scored.append((i, tuple((ctx + cont)[-ctx_limit:]), len(cont)))

        rows: list[tuple[int, ...]] = []  # fed token sequences
        first_pos: list[int] = []  # per row: earliest position whose logits some pair needs
        by_context: dict[tuple[int, ...], list[int]] = {}  # keeps the prefix search local
        reads: list[tuple[int, int, tuple[int, ...], int]] = []  # (pair, row, seq, n_cont)
        for i, seq, n in sorted(scored, key=lambda s: len(s[1]), reverse=True):
            fed, context_ids = seq[:-1], seq[: len(seq) - n]
            candidates = by_context.setdefault(context_ids, [])
            row = next((r for r in candidates if rows[r][: len(fed)] == fed), None)
            if row is None:
                rows.append(fed)
                first_pos.append(len(context_ids) - 1)
                row = len(rows) - 1
                candidates.append(row)
            first_pos[row] = min(first_pos[row], len(context_ids) - 1)
            reads.append((i, row, seq, n))
        by_row: dict[int, list[tuple[int, tuple[int, ...], int]]] = {}
        for i, row, seq, n in reads:
            by_row.setdefault(row, []).append((i, seq, n))

        order = sorted(range(len(rows)), key=lambda r: len(rows[r]), reverse=True)
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                batch = order[b:b + self.batch_size]
                ids, mask, pos = self._left_pad([list(rows[r]) for r in batch])
                keep = max(len(rows[r]) - first_pos[r] for r in batch)
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                    use_cache=False, logits_to_keep=keep).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)  # (batch, keep, vocab)
                for k, r in enumerate(batch):
                    for i, seq, n in by_row[r]:
                        # Logits at row position q predict token q+1; the continuation starts at
                        # position len(seq)-n, so its logits sit at q = len(seq)-n-1 ... len(seq)-2,
                        # i.e. kept index keep - len(row) + q.
                        lo = keep - len(rows[r]) + len(seq) - n - 1
                        target = torch.tensor(seq[-n:], device=logprobs.device)
                        results[i] = logprobs[k, lo: lo + n].gather(-1, target[:, None])[:, 0].tolist()
        extra = self.stats.extra
        extra["loglikelihood_pairs"] = extra.get("loglikelihood_pairs", 0) + len(pairs)
        extra["loglikelihood_rows"] = extra.get("loglikelihood_rows", 0) + len(rows)
        extra["loglikelihood_seconds"] = extra.get("loglikelihood_seconds", 0.0) + time.perf_counter() - start
        return results


def load_engine(
    preset_name: str,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
    progress: Progress | None = None,
) -> TransformersEngine:
    """Load a preset's model once for a whole batch job (never per ticker).

    `cache_dir` is the root for converted GGUF copies (`<cache_dir>/<preset>/`; None: no
    cache). `device`: "auto" (cuda if present, else cpu) or a torch device string. `dtype`: one
    of `DTYPES`; "auto" = bf16 on GPUs and on CPUs with bf16 instructions, else fp32.
    """
    preset = get_preset(preset_name)
    dev = resolve_device(device)
    weight_dtype = resolve_dtype(dtype, dev)
    import torch

    device_map = dev if dev.startswith("cuda") else None
    loaded = load_model(preset, cache_dir=cache_dir, dtype=getattr(torch, weight_dtype),
                        device_map=device_map)
    return TransformersEngine(preset, loaded, dev, weight_dtype, batch_size, progress)
