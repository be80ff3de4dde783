"""GPU generation paths built on transformers: paged continuous batching and a compiled bs1 decode.

* Many requests: `continuous_batching_context_manager` (what `generate_batch` wraps) schedules
  requests over a paged KV cache, so a finished sequence frees its pages for the next prompt and
  prefill and decode tokens share forward passes. Each request keeps its own `max_new_tokens`.
  One manager session per sampling config (temperature, top_k, top_p, seed): the manager holds
  one GenerationConfig. Stop words are applied afterwards (the manager knows only eos), with the
  same rules as models/decode.py, so text and `finish_reason` match the loop backend.
* One request: `generate` with a static KV cache, which transformers compiles (torch.compile,
  CUDA graphs) on CUDA; decode at bs1 is launch-bound, and graphs remove the launch overhead.

Neither path applies a request's number/citation constraint (models/constraint.py): the manager
takes one config for all its requests, so models/engine.py sends constrained requests to the loop.

Sampled rows here draw from one generator per session (the manager's seed), not one per row as
in models/decode.py, so a sampled text may depend on its batch; greedy rows do not.

Untested on a GPU in this repository's CI (no GPU there): tests run the paged path on the CPU
where transformers supports it; the compiled static path only runs on CUDA.
"""

from __future__ import annotations

from typing import Any

from models.decode import Row, replay
from rag.errors import ModelError


def _sampling_key(job: Any) -> tuple:
    if job.temperature <= 0:
        return ("greedy",)
    return ("sample", job.temperature, job.top_k, job.top_p, job.seed)


def generate_paged(
    model: Any, tokenizer: Any, jobs: list[Any], eos_ids: list[int], max_batch: int
) -> list[tuple[list[int], str]]:
    """(tokens, reason) per job, in job order; `jobs` are models.engine._Job."""
    if len(jobs) == 1 and str(model.device).startswith("cuda"):
        return [generate_static(model, tokenizer, jobs[0], eos_ids)]
    groups: dict[tuple, list[Any]] = {}
    for job in jobs:
        groups.setdefault(_sampling_key(job), []).append(job)
    out: dict[int, tuple[list[int], str]] = {}
    for key, group in groups.items():
        tokens = _paged_session(model, group, key, eos_ids, max_batch)
        for job in group:
            row = Row(job.ids, job.max_new, job.stops, sentences=job.sentences)
            row = replay(tokens[job.index], row, set(eos_ids), tokenizer)
            out[job.index] = (row.tokens, row.reason)
    return [out[j.index] for j in jobs]


def _paged_session(
    model: Any, jobs: list[Any], key: tuple, eos_ids: list[int], max_batch: int
) -> dict[int, list[int]]:
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    sample = key[0] == "sample"
    cfg = GenerationConfig(
        max_new_tokens=max(j.max_new for j in jobs),
        do_sample=sample,
        eos_token_id=eos_ids or None,
        pad_token_id=eos_ids[0] if eos_ids else 0,
        **(dict(temperature=key[1], top_k=key[2], top_p=key[3]) if sample else {}),
    )
    cb = ContinuousBatchingConfig(max_requests_per_batch=max_batch, seed=key[4] if sample else 0)
    results: dict[str, Any] = {}
    on_cuda = str(model.device).startswith("cuda")  # warmup captures CUDA graphs; nothing to gain on CPU
    with model.continuous_batching_context_manager(
        generation_config=cfg, continuous_batching_config=cb, block=True, timeout=30, warmup=on_cuda
    ) as manager:
        ids = {}
        for job in jobs:
            rid = manager.add_request(job.ids, request_id=f"job-{job.index}", max_new_tokens=job.max_new)
            if rid is None:
                raise ModelError("the continuous-batching manager refused a request (queue closed)")
            ids[rid] = job.index
        while len(results) < len(ids):
            result = manager.get_result(timeout=1)
            if result is not None and result.is_finished():
                results[result.request_id] = result
            elif result is None and not manager.is_running():
                raise ModelError("continuous batching stopped before every request finished")
    bad = [r.error for r in results.values() if r.error]
    if bad:
        raise ModelError(f"continuous batching failed: {bad[0]}")
    return {ids[rid]: list(r.generated_tokens) for rid, r in results.items()}


def generate_static(model: Any, tokenizer: Any, job: Any, eos_ids: list[int]) -> tuple[list[int], str]:
    """One request through `generate` with a static cache (compiled + CUDA graphs on CUDA)."""
    import torch
    from transformers import GenerationConfig

    sample = job.temperature > 0
    cfg = GenerationConfig(
        max_new_tokens=job.max_new,
        do_sample=sample,
        eos_token_id=eos_ids or None,
        pad_token_id=eos_ids[0] if eos_ids else 0,
        cache_implementation="static",
        **(dict(temperature=job.temperature, top_k=job.top_k, top_p=job.top_p) if sample else {}),
    )
    extra = dict(stop_strings=list(job.stops), tokenizer=tokenizer) if job.stops else {}
    ids = torch.tensor([job.ids], device=model.device)
    with torch.inference_mode(), torch.random.fork_rng(devices=[model.device] if ids.is_cuda else []):
        torch.manual_seed(job.seed)
        mask = torch.ones_like(ids)
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg, **extra)
    row = Row(job.ids, job.max_new, job.stops, sentences=job.sentences)
    replay(out[0, len(job.ids) :].tolist(), row, set(eos_ids), tokenizer)
    return row.tokens, row.reason
