"""Tensor parallelism: the ONE module that touches `torch.distributed`.

Production runs GPT-NeoXT-Chat-Base-20B over the 4 GPUs of one node as one process group: every
rank holds 1/N of each weight matrix, every forward pass all-reduces, and all ranks run the same
decode loop (models/decode.py) in lock step. Launch with torchrun, one process per device:

    torchrun --nproc_per_node 4 -m models.batch --requests R.jsonl --out C.jsonl \\
        --preset gpt-neoxt-chat-20b --tp 4          # or just `python -m models.batch ... --tp 4`

Backends:
* "transformers" (default): `from_pretrained(..., distributed_config=DistributedConfig(tp_plan="auto"))`
  shards with the model's own TP plan (GPT-NeoX and GPT-J ship one); the `tp_plan=` keyword
  is deprecated in transformers 5. Logits come back replicated, so every rank picks the same
  token; sampled rows use per-row generators seeded identically on every rank.
* "deepspeed": `deepspeed.init_inference(model, tensor_parallel={"tp_size": N})`, DeepSpeed's
  AutoTP, as the seed's SageMaker notebook did. deepspeed is in the dev extra only (tests run it
  with 2 CPU ranks); the path imports it late and says how to install it when it is missing.

Only rank 0 reads the requests file and writes the completions; the requests reach the other
ranks by `broadcast_object_list`, so all ranks decode the same rows even if the file changes.
On CPU the group uses gloo (tests run 2 ranks on a tiny GPT-NeoX); on GPUs, nccl.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from models.devices import resolve_dtype
from models.engine import TransformersEngine
from models.loading import DEFAULT_CACHE_DIR, LoadedModel, local_checkpoint
from models.presets import ModelPreset, get_preset
from models.types import Completion, GenerationRequest
from rag.errors import ConfigError, ModelError

TP_BACKENDS = ("transformers", "deepspeed")


def init_group(device: str = "auto") -> tuple[int, int, str]:
    """(rank, world size, this rank's device) under torchrun; initializes the process group once."""
    import torch
    import torch.distributed as dist

    if "WORLD_SIZE" not in os.environ:
        raise ConfigError("tensor parallel needs torchrun: torchrun --nproc_per_node N -m models.batch ...")
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world)
    return rank, world, dev


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (pickled; fine for a few MB of prompts)."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def model_dir(preset: ModelPreset, cache_dir: str | Path | None, rank: int) -> tuple[Path, str]:
    """(local checkpoint dir, revision), produced once per node: rank 0 converts or downloads
    (GGUF, s3://) while the other ranks wait at the barrier, then find the cache complete."""
    if rank == 0:
        found = local_checkpoint(preset, cache_dir)
    barrier()
    if rank != 0:
        found = local_checkpoint(preset, cache_dir)
    return found


def _load_transformers(path: Path, dtype: Any, world: int) -> Any:
    from transformers import AutoModelForCausalLM
    from transformers.distributed import DistributedConfig

    return AutoModelForCausalLM.from_pretrained(
        path,
        dtype=dtype,
        local_files_only=True,
        distributed_config=DistributedConfig(tp_plan="auto", tp_size=world),
    ).eval()


def _load_deepspeed(path: Path, dtype: Any, world: int, device: str) -> Any:
    try:
        import deepspeed
    except ImportError as exc:
        raise ModelError(
            "the deepspeed TP backend needs deepspeed, which is not installed: "
            "DS_BUILD_OPS=0 pip install deepspeed (or use --tp-backend transformers)"
        ) from exc
    from transformers import AutoModelForCausalLM

    # DeepSpeed's CPU all-reduce kernel (deepspeed_shm_comm) only sets up its shared memory when
    # LOCAL_SIZE equals the world size, but calls it regardless: under torchrun, which sets
    # LOCAL_WORLD_SIZE and not LOCAL_SIZE, every rank segfaulted on the first all-reduce
    # (measured with deepspeed 0.19.8). The deepspeed launcher sets LOCAL_SIZE; do the same.
    if "LOCAL_WORLD_SIZE" in os.environ:
        os.environ.setdefault("LOCAL_SIZE", os.environ["LOCAL_WORLD_SIZE"])
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True).eval()
    engine = deepspeed.init_inference(
        model, tensor_parallel={"tp_size": world}, dtype=dtype, replace_with_kernel_inject=False
    )
    return engine.module.to(device)


def load_tp_engine(
    preset_name: str,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
    tp_backend: str = "transformers",
) -> tuple[TransformersEngine, int, int]:
    """(engine, rank, world): this rank's shard of the preset's model, wrapped in the usual engine."""
    import time

    import torch

    if tp_backend not in TP_BACKENDS:
        raise ConfigError(f"unknown TP backend {tp_backend!r}; choose one of {', '.join(TP_BACKENDS)}")
    preset = get_preset(preset_name)
    rank, world, dev = init_group(device)
    weight_dtype = resolve_dtype(dtype, dev)
    torch_dtype = getattr(torch, weight_dtype)
    start = time.perf_counter()
    path, revision = model_dir(preset, cache_dir, rank)
    if tp_backend == "deepspeed":
        model = _load_deepspeed(path, torch_dtype, world, dev)
    else:
        model = _load_transformers(path, torch_dtype, world)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    loaded = LoadedModel(tokenizer, model, revision, preset.source, path, False, time.perf_counter() - start)
    engine = TransformersEngine(preset, loaded, dev, weight_dtype, batch_size, backend="loop", place=False)
    # Weights the TP plan actually sharded; 0 would mean every rank holds a full copy. transformers
    # shards into DTensors; DeepSpeed AutoTP swaps nn.Linear for its own split layers instead.
    sharded = sum(
        type(p).__name__ == "DTensor" or type(p.data).__name__ == "DTensor" for p in model.parameters()
    ) + sum(
        type(m).__module__.startswith("deepspeed.") and getattr(m, "weight", None) is not None
        for m in model.modules()
    )
    engine.stats.extra.update(tp_size=world, tp_backend=tp_backend, tp_sharded_params=sharded)
    return engine, rank, world


def generate_all(
    engine: TransformersEngine, requests: list[GenerationRequest] | str | None, rank: int
) -> list[Completion]:
    """Every rank decodes rank 0's requests together; returns the completions (on every rank).

    Rank 0 passes its requests, or a string saying why it could not read them: every rank then
    raises the same ConfigError instead of the others waiting forever in the broadcast.
    """
    payload = broadcast(requests if rank == 0 else None)
    if isinstance(payload, str):
        raise ConfigError(payload)
    return engine.generate(payload) if payload else []


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
