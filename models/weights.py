"""Reading checkpoints from disk, offline: hub cache lookup, directory loads, fingerprints, GGUF cache.

The building blocks the source kinds in models/sources.py are made of. Nothing here reaches the
network: the hub is switched offline before transformers is imported and every `from_pretrained`
gets `local_files_only=True`, so a missing model fails fast with a message saying what to install.

GGUF loading dequantizes every tensor (~16 s for SmolLM2-135M on 2 cores), so the first load
writes a plain safetensors copy under `<cache_dir>/<preset>/` and later loads take ~0.2 s. The
copy is written to a temporary directory and renamed into place, so a crash or a concurrent
loader never leaves (or reads) a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from models.presets import ModelPreset
from rag.errors import ModelError

CACHE_META = "researchdesk-cache.json"  # written last: its presence marks a complete cache
CACHE_FORMAT = 1


def offline() -> None:
    """Switch the hub client off before transformers/huggingface_hub are imported.

    huggingface_hub reads these at import time; if something imported it earlier the flags may
    be ignored, which is why every load below also passes `local_files_only=True`.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def hf_snapshot(repo_id: str) -> tuple[Path, str]:
    """Find a repo in the local HF cache; returns (snapshot dir, commit hash)."""
    offline()
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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dir_fingerprint(path: Path) -> str:
    """Cheap, stable id for a local model dir: hashes small files fully, big ones by name+size.

    Hashing 40 GB of 20B weights on every load is not acceptable, and the configs + tokenizer +
    weight sizes change whenever a different model is dropped in. A cache we wrote ourselves
    records the exact source digest instead (see `dir_revision`).
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


def dir_revision(path: Path) -> str:
    """The revision a cache we wrote recorded, else the directory's fingerprint."""
    meta = read_meta(path)
    return meta["revision"] if meta and "revision" in meta else dir_fingerprint(path)


def load_dir(path: Path, dtype: Any, device_map: str | None = None) -> tuple[Any, Any]:
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"device_map": device_map} if device_map else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype, **kwargs)
    except OSError as exc:
        raise ModelError(f"could not load a model from {path}: {exc}") from exc
    return tokenizer, model.eval()


def load_dir_tokenizer(path: Path) -> Any:
    offline()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as exc:
        raise ModelError(f"could not load a tokenizer from {path}: {exc}") from exc


def read_meta(cache: Path) -> dict | None:
    try:
        return json.loads((cache / CACHE_META).read_text())
    except (OSError, ValueError):
        return None


def gguf_stamp(gguf: Path) -> dict:
    st = gguf.stat()
    return {"gguf": str(gguf), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_cache(cache: Path, tokenizer: Any, model: Any, meta: dict) -> None:
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
        # A fresh file inside the not-yet-published tmp dir: the directory rename below is
        # what makes the cache appear atomically, so this needs no write_atomic of its own.
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


def load_gguf(
    preset: ModelPreset, gguf: Path, cache_dir: Path | None, dtype: Any
) -> tuple[Any, Any, str, Path, bool]:
    """Load a GGUF via the safetensors cache when it is valid, else dequantize and fill the cache."""
    cache = (cache_dir / preset.name) if cache_dir is not None else None
    stamp = gguf_stamp(gguf)
    if cache is not None:
        meta = read_meta(cache)
        if meta and meta.get("format") == CACHE_FORMAT and meta.get("stamp") == stamp:
            tokenizer, model = load_dir(cache, dtype)
            return tokenizer, model, meta["revision"], cache, True

    offline()
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
    revision = "sha256:" + sha256_file(gguf)[:16]
    if cache is not None:
        meta = {
            "format": CACHE_FORMAT,
            "preset": preset.name,
            "source": preset.source,
            "revision": revision,
            "stamp": stamp,
            "created": time.time(),
        }
        write_cache(cache, tokenizer, model, meta)
    if dtype is not None and dtype != torch.float32:
        model = model.to(dtype)
    return tokenizer, model, revision, gguf, False
