"""Graph runtimes for the sentence embedder: a cached ONNX export run by OpenVINO or ONNX Runtime.

Why: on a 2-core Zen 4 (AVX512-BF16, no AMX) torch's bf16 autocast reaches ~1.9x a plain
`SentenceTransformer.encode`; OpenVINO compiling the same graph in bf16 reaches ~2.6-2.7x per
CPU-second at cosine >= 0.9999 to fp32 (bench/ingest.py). ONNX Runtime fp32 with the BERT fusions
is only ~1.2-1.5x, and its int8 dynamic quantisation, though ~2.4x, drops single passages to
cosine 0.987 (per-channel; 0.90 per-tensor), below the 0.99 floor: kept as an option, not a default.

The transformer (without pooling) is exported ONCE with the legacy TorchScript exporter
(`dynamo=False`: the dynamo one needs onnxscript) and cached under `cache_dir`, keyed by a digest
of the model folder's weights and config, torch's version and `EXPORT_VERSION`, so a changed model
or exporter never reuses a stale graph. The write is atomic and serialised by a file lock: a
second process waits for the first export and reuses it. A cached file the runtime cannot load
(truncated, foreign) is exported again. Only `openvino.Core` is used, never `openvino.tools.ovc`
(`convert_model`), the one part of OpenVINO that loads openvino-telemetry.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.atomic import atomic_path
from rag.errors import ModelError

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when `_Encoder` or the export arguments change
OPSET = 17
# backend name -> the package it needs (import name, pip requirement)
PACKAGES = {
    "openvino": ("openvino", "openvino==2026.4.1"),
    "onnxruntime": ("onnxruntime", "onnxruntime==1.31.1"),
}
exports = 0  # how many exports this process ran (tests assert a cached graph is reused)

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) -> hidden states


def cpu_threads() -> int:
    """Cores this process may use (a container's affinity, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def model_digest(model_dir: Path) -> str:
    """Content digest of what defines the graph: weights and configs (not README or tokenizer)."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = model_dir / name
        if path.exists():
            h.update(name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def onnx_path(model_dir: Path, cache_dir: Path) -> Path:
    import torch

    torch_version = torch.__version__.split("+")[0]
    key = f"{model_digest(model_dir)}-torch{torch_version}-v{EXPORT_VERSION}"
    return cache_dir / f"{model_dir.name}-{key}.onnx"


def export_onnx(model_dir: Path, target: Path) -> None:
    """Trace the HF transformer (eager attention: the form ORT's BERT fusions recognise) to `target`."""
    global exports
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class _Encoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            types = torch.zeros_like(input_ids)  # single-segment input: what the tokenizer gives too
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=types)[0]

    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 1037, 2936, 6251, 102]])
    dynamic = {0: "batch", 1: "tokens"}
    with atomic_path(target) as tmp, warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(
            _Encoder(model),
            (ids, (ids > 0).long()),
            str(tmp),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "last_hidden_state": dynamic},
            opset_version=OPSET,
        )
    exports += 1


def _optimise_for_ort(path: Path, model_dir: Path) -> Path:
    """ORT's transformer optimizer (fused attention, skip-LayerNorm, bias-GELU), cached beside `path`."""
    from onnxruntime.transformers.optimizer import optimize_model

    target = path.with_suffix(".ort.onnx")
    if not target.exists():
        config = json.loads((model_dir / "config.json").read_text())
        heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
        opt = optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden)
        with atomic_path(target) as tmp:
            opt.save_model_to_file(str(tmp))
    return target


def _ort_runner(path: Path, model_dir: Path, threads: int, bf16: bool) -> Runner:
    import onnxruntime as ort

    del bf16  # the CPU execution provider has no bf16 kernels: fp32
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    graph = str(_optimise_for_ort(path, model_dir))
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    return run


def _openvino_runner(path: Path, model_dir: Path, threads: int, bf16: bool) -> Runner:
    del model_dir  # the graph is all OpenVINO needs
    # `import openvino` imports its converter (ovc), which imports openvino-telemetry when it is
    # installed (a dependency of the openvino wheel). Marking it absent makes ovc use its bundled
    # no-op stub, so nothing in this process can send telemetry, consent file or not.
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    import openvino as ov

    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",  # one request at a time, all cores on it
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
    }
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.outputs[0]

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        result = request.infer({"input_ids": input_ids, "attention_mask": attention_mask})
        return np.array(result[output], dtype=np.float32)  # copy: the request reuses its buffer

    return run


RUNNERS: dict[str, Callable[[Path, Path, int, bool], Runner]] = {
    "openvino": _openvino_runner,
    "onnxruntime": _ort_runner,
}


def require(backend: str) -> None:
    """A clear error naming the missing package instead of an ImportError deep inside a run."""
    if backend not in PACKAGES:
        raise ModelError(f"embedder backend {backend!r}: choose torch, {', '.join(PACKAGES)}")
    module, requirement = PACKAGES[backend]
    for name, req in ((module, requirement), ("onnx", "onnx==1.23.2")):  # onnx: torch's exporter needs it
        # find_spec, not import: importing openvino before _openvino_runner blocks telemetry would load it
        if importlib.util.find_spec(name) is None:
            raise ModelError(f"embedder backend {backend!r} needs `{req}`, not installed; run `make install`")


def load_runner(
    backend: str, model_dir: Path, cache_dir: Path, bf16: bool, threads: int | None = None
) -> Runner:
    """Export (first use only) and compile the graph; a cached graph that does not load is rebuilt."""
    from filelock import FileLock

    require(backend)
    path = onnx_path(model_dir, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    make = RUNNERS[backend]
    threads = threads or cpu_threads()
    with FileLock(str(path) + ".lock"):  # a second process waits here, then finds the file
        if not path.exists():
            export_onnx(model_dir, path)
        try:
            return make(path, model_dir, threads, bf16)
        except Exception as exc:  # noqa: BLE001 - truncated/foreign cache file: only a cache, rebuild it
            log.warning("cached embedder graph %s does not load (%s); exporting it again", path, exc)
            path.unlink(missing_ok=True)
            path.with_suffix(".ort.onnx").unlink(missing_ok=True)
            export_onnx(model_dir, path)
            return make(path, model_dir, threads, bf16)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling + Normalize: masked mean, clamp 1e-9, L2 with eps 1e-12."""
    m = mask.astype(np.float32)[..., None]
    vec = (hidden.astype(np.float32) * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    return vec / np.clip(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12, None)
