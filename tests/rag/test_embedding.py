"""The bf16 decision (from CPU flags, with a clean fp32 fallback) and the real embedder's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rag.embedding as embedding
from rag.embedding import cpu_flags, use_bf16

DATA = Path(__file__).resolve().parents[2] / "data"

X86_AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_AMX = "processor\t: 0\nflags\t\t: fpu avx512f avx512_vnni amx_bf16 amx_tile amx_int8\n"
X86_OLD = "processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (X86_AMD, True),  # Zen 4: AVX512-BF16 without AMX
        (X86_AMX, True),  # Sapphire Rapids and later
        (X86_OLD, False),  # AVX2 only: bf16 would be emulated, slower than fp32
        (ARM, False),  # ARM's "bf16" is not one of the x86 flags we trust
        ("", False),
    ],
)
def test_bf16_follows_cpu_flags(tmp_path, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert use_bf16("cpu", cpu_flags(str(path))) is expected


def test_cpu_flags_parses_both_spellings_and_missing_file(tmp_path):
    (tmp_path / "x86").write_text(X86_AMX)
    (tmp_path / "arm").write_text(ARM)
    assert {"amx_bf16", "amx_int8"} <= cpu_flags(str(tmp_path / "x86"))
    assert "asimd" in cpu_flags(str(tmp_path / "arm"))
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()


@pytest.mark.parametrize(
    ("device", "flags", "requested", "expected"),
    [
        ("cpu", {"avx512_bf16"}, None, True),
        ("cpu", {"avx512_bf16"}, False, False),  # an explicit choice wins
        ("cpu", set(), True, True),
        ("cuda", {"amx_bf16"}, None, False),  # autocast here is CPU autocast
    ],
)
def test_explicit_choice_and_device(device, flags, requested, expected):
    assert use_bf16(device, flags, requested) is expected


def _passages(n: int) -> list[str]:
    from rag.chunking import chunk_document
    from rag.sources.filings import parse_filing_file

    doc = parse_filing_file(DATA / "sec" / "filings" / "aapl-10-q-2025-08-01.html.gz")[0]
    return [p.text for p in chunk_document(doc)][:n]


@pytest.mark.slow
def test_embedder_falls_back_to_fp32_and_bf16_matches_it(monkeypatch):
    """A CPU without bf16 gets fp32 (and says so in the signature); bf16 vectors match fp32 ones."""
    from rag.embedding import Embedder

    monkeypatch.setattr(embedding, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    fp32 = Embedder()
    assert fp32.bf16 is False and fp32.signature.endswith("bf16=False")
    monkeypatch.setattr(embedding, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    bf16 = Embedder()
    assert bf16.bf16 is True and bf16.signature.endswith("bf16=True")

    # mixed lengths: a short query-like text between long passages exercises the global sort
    texts = _passages(20)
    texts.insert(7, "Apple net sales by category")
    ref, got = fp32.encode(texts), bf16.encode(texts)
    assert got.shape == ref.shape == (21, 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)
    assert (np.sum(ref * got, axis=1) >= 0.999).all()
    # rows come back in input order: each row matches the text encoded on its own
    alone = fp32.encode([texts[7], texts[0]])
    assert np.sum(alone * ref[[7, 0]], axis=1).min() > 0.9999
    assert fp32.encode([]).shape == (0, 384)
