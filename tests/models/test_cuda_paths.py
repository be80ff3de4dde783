"""The GPU generation paths (models/cuda.py), run on the CPU where transformers allows it.

transformers' paged continuous batching runs on the CPU for Llama-style attention, so its
scheduling, per-request lengths and stop handling are checked here against the loop backend. The
compiled static-cache path only compiles on CUDA; on the CPU `generate` runs it uncompiled, which
still checks the cache, stop handling and token bookkeeping. GPU speed is not tested here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from models.cuda import generate_static
from models.engine import TransformersEngine, load_engine
from models.presets import ModelPreset, register_preset
from models.types import GenerationRequest
from tests.models.test_engine import USERS, _reqs


@pytest.fixture(scope="module")
def tiny_llama(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelPreset:
    """SmolLM2's architecture (Llama, grouped KV heads) with the tiny tokenizer."""
    import shutil

    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    for f in tiny_dir.iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, path / f.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    return register_preset(
        ModelPreset(
            name="tiny-llama-test",
            source=str(path),
            prompt_format="openchatkit",
            context_tokens=120,
            temperature=0.0,
            max_new_tokens=10,
        ),
        replace=True,
    )


def _engine(preset: ModelPreset, backend: str) -> TransformersEngine:
    return load_engine(
        preset.name, cache_dir=None, device="cpu", dtype="float32", batch_size=3, backend=backend
    )


def test_paged_backend_matches_loop_backend(tiny_llama: ModelPreset) -> None:
    reqs = _reqs()
    reqs = [dataclasses.replace(r, max_new_tokens=n) for r, n in zip(reqs, [10, 3, 7, 10, 1], strict=True)]
    loop = _engine(tiny_llama, "loop").generate(reqs)
    paged_engine = _engine(tiny_llama, "paged")
    paged = paged_engine.generate(reqs)
    assert paged_engine.backend == "paged" and "paged_fallback" not in paged_engine.stats.extra
    assert [(c.text, c.tokens_out, c.finish_reason) for c in paged] == [
        (c.text, c.tokens_out, c.finish_reason) for c in loop
    ]
    assert [c.tokens_out for c in paged] == [10, 3, 7, 10, 1]


def test_paged_backend_falls_back_to_loop_for_gpt_neox(tiny_preset: ModelPreset, tiny_engine) -> None:
    """transformers 5.24's GPT-NeoX attention cannot drive the paged cache; the engine says so and carries on."""
    engine = _engine(tiny_preset, "paged")
    got = engine.generate(_reqs())
    assert engine.backend == "loop" and "kwargs" in engine.stats.extra["paged_fallback"]
    assert [c.text for c in got] == [c.text for c in tiny_engine.generate(_reqs())]


def test_auto_backend_is_loop_on_cpu(tiny_engine) -> None:
    assert tiny_engine.backend == "loop"


@pytest.mark.parametrize("stop_at", [None, 4])
def test_static_cache_path_matches_loop(tiny_engine: TransformersEngine, stop_at: int | None) -> None:
    [ref] = tiny_engine.generate([GenerationRequest("a", USERS[1], stop_words=())])
    stops = (ref.text[stop_at : stop_at + 2],) if stop_at else ()
    req = GenerationRequest("a", USERS[1], stop_words=stops)
    [want] = tiny_engine.generate([req])
    job = tiny_engine._prepare(0, req)
    tokens, reason = generate_static(tiny_engine.model, tiny_engine.tokenizer, job, tiny_engine.eos_ids)
    got = tiny_engine._finish(req, job, tokens, reason)
    assert (got.text, got.tokens_out, got.finish_reason) == (want.text, want.tokens_out, want.finish_reason)
    if stop_at:
        assert got.finish_reason == "stop" and got.tokens_out < 10
