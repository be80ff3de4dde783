"""Devices, dtypes and memory: what the engine (and the embedders) ask of the hardware they run on.

The one owner of these choices: reading the CPU's flags, deciding whether bf16 is native on this
CPU (`use_bf16`; emulated bf16 is slower than fp32), resolving "auto" to a device and a dtype, OOM
detection, per-job peak memory. models/engine.py and models/tp.py use it for the chat model;
rag/embedding.py for the passage embedder's bf16 autocast. It imports nothing from rag/ but
rag.errors, so rag/ may import it without a cycle.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from rag.errors import ConfigError

DTYPES = ("auto", "float32", "bfloat16", "float16")
# CPU flags (as /proc/cpuinfo spells them) that make bf16 matmuls native rather than emulated.
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
# bf16-related flags a load reports (amx_tile: the AMX tile registers the bf16 ops run on).
BF16_RELATED_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
# Flags the benchmarks report: bf16 and int8 matrix units.
REPORTED_FLAGS = ("avx512_bf16", "amx_bf16", "amx_int8", "amx_tile", "avx512_vnni", "avx512f")


@cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The first CPU's feature flags; empty where /proc/cpuinfo does not exist (macOS, Windows)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
            return frozenset(value.split())
    return frozenset()


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """bf16-related CPU flags (Linux only; elsewhere the empty set -> fp32)."""
    flags = cpu_flags(cpuinfo)
    return {f for f in BF16_RELATED_FLAGS if f in flags}


def use_bf16(device: str, flags: Iterable[str], requested: bool | None = None) -> bool:
    """Whether to compute in bf16: an explicit choice wins, else only on a bf16-native CPU.

    Only CPUs are decided here (GPUs: see `resolve_dtype`), so any other device stays fp32 unless
    asked for explicitly.
    """
    if requested is not None:
        return requested
    return device == "cpu" and not BF16_FLAGS.isdisjoint(flags)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AMX or AVX512-BF16); emulated bf16 is slower."""
    return use_bf16("cpu", cpu_flags())


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
    if device == "cpu" and use_bf16(device, cpu_bf16_flags()) and torch.backends.mkldnn.is_available():
        return "bfloat16"
    return "float32"


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM, Python MemoryError, or the CPU allocator's RuntimeError when RAM runs out."""
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class PeakMemory:
    """Peak memory of one job: CUDA allocator peak, or the process RSS sampled while decoding (CPU).

    `ru_maxrss` only ever grows over the life of the process (and the engine lives across runs),
    so on the CPU the RSS is read from /proc/self/statm at every forward pass instead.
    """

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda")
        self.peak = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.device = device
        self.sample()

    def sample(self) -> None:
        if self.cuda:
            return
        try:
            with open("/proc/self/statm") as fh:
                pages = int(fh.read().split()[1])
        except (OSError, ValueError, IndexError):
            return
        self.peak = max(self.peak, pages * os.sysconf("SC_PAGE_SIZE"))

    def bytes(self) -> int:
        import torch

        return int(torch.cuda.max_memory_allocated(self.device)) if self.cuda else self.peak
