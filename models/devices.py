"""Devices, dtypes and memory: what the engine asks of the hardware it runs on.

Kept apart from the engine so the choices (bf16 on CPUs that have the instructions, OOM detection,
per-job peak memory) are readable in one place; only models/ modules import this.
"""

from __future__ import annotations

import os
from pathlib import Path

from rag.errors import ConfigError

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
