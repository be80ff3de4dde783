"""Resolve a preset's `source` to a loaded (tokenizer, model) pair, offline.

The kinds of source (local directory, Hugging Face id in the local cache, GGUF file, s3:// tar
archive) live in models/sources.py, one class each; the offline loading blocks they share (hub
cache lookup, directory loads, the GGUF -> safetensors cache) in models/weights.py. This module
is the API the engine, the TP loader and the trimming stage call. Nothing but the s3:// download
may reach the network, and a missing model fails fast with a message saying what to install.

This module never picks a device: `models/engine.py` owns devices and dtypes and may pass a
`device_map` through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.presets import ModelPreset, format_prompt, get_preset
from models.sources import SOURCE_KINDS, ModelSource, resolve_source
from models.weights import CACHE_FORMAT, CACHE_META, offline, read_meta
from models.weights import write_cache as _write_cache

__all__ = [
    "CACHE_FORMAT",
    "CACHE_META",
    "DEFAULT_CACHE_DIR",
    "SOURCE_KINDS",
    "LoadedModel",
    "ModelSource",
    "ResolvedSource",
    "_write_cache",
    "load_model",
    "load_tokenizer",
    "local_checkpoint",
    "prompt_counter",
    "resolve_source",
]

DEFAULT_CACHE_DIR = Path("var/models")
ResolvedSource = ModelSource  # the former name of what `resolve_source` returns (it has `.kind`)


@dataclass
class LoadedModel:
    """A tokenizer + model on the CPU, plus what the audit trail needs to know about them."""

    tokenizer: Any
    model: Any
    revision: str  # "sha256:<16 hex>" of a GGUF file, HF commit hash, or "local:<fingerprint>"
    source: str
    path: Path  # directory the weights were finally read from
    from_cache: bool
    seconds: float


def _cache_root(cache_dir: str | Path | None) -> Path | None:
    return Path(cache_dir).expanduser() if cache_dir is not None else None


def load_model(
    preset: ModelPreset,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    dtype: Any = None,
    device_map: str | None = None,
) -> LoadedModel:
    """Load a preset's tokenizer and model, offline.

    `cache_dir` is the root for converted GGUF copies and unpacked s3:// archives
    (`<cache_dir>/<preset name>/`); None disables the cache. `dtype` is a torch dtype for the
    weights (None -> the checkpoint's). `device_map` is passed through for directory/hub/s3
    checkpoints only (chosen by the engine, so a 20B checkpoint streams straight to the GPU
    instead of staging 40 GB in host RAM); GGUF files always load on the CPU.
    """
    start = time.perf_counter()
    source = resolve_source(preset.source)
    loaded = source.load(preset, _cache_root(cache_dir), dtype, device_map)
    tokenizer, model, revision, path, from_cache = loaded
    return LoadedModel(
        tokenizer, model, revision, preset.source, path, from_cache, time.perf_counter() - start
    )


def load_tokenizer(preset: ModelPreset, cache_dir: str | Path | None = DEFAULT_CACHE_DIR) -> Any:
    """Only the tokenizer, for counting prompt tokens on a machine that will not run the model.

    Reads the cached copy of a GGUF or s3:// source when one exists (fast); otherwise GGUF
    tokenizers come straight from the file and s3:// archives are fetched as for a full load.
    """
    offline()
    from transformers import AutoTokenizer

    source = resolve_source(preset.source)
    cache_root = _cache_root(cache_dir)
    cache = cache_root / preset.name if cache_root is not None else None
    meta = read_meta(cache) if cache is not None else None
    if meta and cache is not None and meta.get("source", preset.source) == preset.source:
        cached = cache / meta.get("subdir", ".")
        if (cached / "config.json").is_file():
            return AutoTokenizer.from_pretrained(cached, local_files_only=True)
    return source.tokenizer(preset, cache_root)


def prompt_counter(preset_name: str, cache_dir: str | Path | None = DEFAULT_CACHE_DIR) -> tuple[Any, int]:
    """(count(system, user) -> prompt tokens, context tokens) for a preset, loading only its tokenizer.

    The CPU flow trims prompts to the chat model's context before the generation job runs
    (reports/trim.py); counting with the real tokenizer and the real prompt format (chat
    template or OpenChatKit turns) is what makes the trimmed prompt fit exactly.
    """
    preset = get_preset(preset_name)
    tokenizer = load_tokenizer(preset, cache_dir)

    def count(system: str, user: str) -> int:
        prompt = format_prompt(preset, tokenizer, system or preset.system_prompt, user)
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])

    return count, preset.context_tokens


def local_checkpoint(
    preset: ModelPreset, cache_dir: str | Path | None = DEFAULT_CACHE_DIR
) -> tuple[Path, str]:
    """(directory with config + weights + tokenizer, revision) for loaders that need a plain folder.

    Tensor-parallel loading shards straight from files, so GGUF sources are converted into the
    cache and s3:// archives unpacked there first (validated by loading config and tokenizer
    only: a 40 GB model is not loaded twice).
    """
    return resolve_source(preset.source).checkpoint(preset, _cache_root(cache_dir))
