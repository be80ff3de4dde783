"""TransformersEngine on a random tiny GPT-NeoX: batching, padding, stops, errors, scoring."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.engine import TransformersEngine, resolve_dtype
from models.presets import format_prompt
from models.types import GenerationRequest

USERS = [
    "What was Apple's revenue?",
    "Net income rose 12% to $93.7 billion while operating cash flow reached $118.3 billion.",
    "Risk factors?",
    "The company repurchased shares and paid dividends; liquidity remains strong and supply chain risk.",
    "Input: I want to call in sick",
]


def _reqs(**kw) -> list[GenerationRequest]:
    return [GenerationRequest(request_id=f"r{i}", user=u, stop_words=(), **kw) for i, u in enumerate(USERS)]


def _with_batch(engine: TransformersEngine, batch_size: int) -> TransformersEngine:
    clone = object.__new__(TransformersEngine)
    clone.__dict__.update(engine.__dict__)
    clone.batch_size = batch_size
    clone.stats = dataclasses.replace(engine.stats, extra=dict(engine.stats.extra))
    return clone


def _reference_greedy(engine: TransformersEngine, user: str, max_new: int) -> tuple[list[int], int]:
    """Unpadded, single-sequence HF greedy generation: the ground truth for batching."""
    from models.presets import format_prompt

    ids = engine._encode(format_prompt(engine.preset, engine.tokenizer, "", user))
    with torch.inference_mode():
        out = engine.model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=engine.pad_id,
            eos_token_id=engine.eos_ids,
        )
    return out[0, len(ids) :].tolist(), len(ids)


def _check_batched_against_reference(engine: TransformersEngine) -> list[str]:
    batched = engine.generate(_reqs())
    assert [c.request_id for c in batched] == [f"r{i}" for i in range(len(USERS))]  # input order
    sequential = _with_batch(engine, 1).generate(_reqs())
    assert [(c.text, c.tokens_out, c.tokens_in, c.finish_reason) for c in batched] == [
        (c.text, c.tokens_out, c.tokens_in, c.finish_reason) for c in sequential
    ]
    reasons = []
    for user, comp in zip(USERS, batched, strict=True):
        ref, n_in = _reference_greedy(engine, user, engine.preset.max_new_tokens)
        eos = next((k for k, t in enumerate(ref) if t in engine.eos_ids), None)
        kept = ref if eos is None else ref[:eos]
        assert comp.tokens_in == n_in
        assert comp.tokens_out == (len(ref) if eos is None else eos + 1)
        assert comp.text == engine.tokenizer.decode(kept, skip_special_tokens=True).strip()
        assert comp.finish_reason == ("length" if eos is None else "stop")
        reasons.append(comp.finish_reason)
    return reasons


def test_batched_equals_unpadded_greedy_token_for_token(tiny_engine: TransformersEngine) -> None:
    assert _check_batched_against_reference(tiny_engine) == ["length"] * len(USERS)


def test_batched_eos_ends_rows_independently(tiny_engine: TransformersEngine) -> None:
    """Make a token the model emits mid-answer the eos, so rows end at different steps."""
    plain = tiny_engine.generate(_reqs())
    ref, _ = _reference_greedy(tiny_engine, USERS[1], tiny_engine.preset.max_new_tokens)
    engine = _with_batch(tiny_engine, 4)
    engine.eos_ids = [ref[3]]
    reasons = _check_batched_against_reference(engine)
    assert "stop" in reasons
    assert engine.generate(_reqs())[1].tokens_out <= 4 < plain[1].tokens_out


def test_per_request_max_new_tokens_in_one_batch(tiny_engine: TransformersEngine) -> None:
    reqs = [dataclasses.replace(r, max_new_tokens=n) for r, n in zip(_reqs(), [1, 3, 5, 7, 9], strict=True)]
    out = tiny_engine.generate(reqs)
    full = tiny_engine.generate(_reqs(max_new_tokens=9))
    for comp, ref, n in zip(out, full, [1, 3, 5, 7, 9], strict=True):
        assert comp.tokens_out <= n
        if comp.finish_reason == "length":
            assert comp.tokens_out == n
            assert ref.text.startswith(comp.text)


def test_stop_word_truncates_and_stops_early(tiny_engine: TransformersEngine) -> None:
    plain = tiny_engine.generate(_reqs(max_new_tokens=10))
    target = next(c for c in plain if len(c.text.strip()) >= 6 and c.tokens_out == 10)
    stop = target.text[3:5]  # a substring the greedy model is known to produce
    idx = [c.request_id for c in plain].index(target.request_id)
    req = dataclasses.replace(_reqs(max_new_tokens=10)[idx], stop_words=(stop,))
    [comp] = tiny_engine.generate([req])
    assert comp.text == target.text[: target.text.find(stop)].strip()
    assert stop not in comp.text
    assert comp.finish_reason == "stop"
    assert comp.tokens_out < 10  # generation stopped, not just the text cut


def test_overlong_prompt_fails_alone(tiny_engine: TransformersEngine) -> None:
    reqs = _reqs()
    reqs[2] = dataclasses.replace(reqs[2], user="cash flow " * 200)
    out = tiny_engine.generate(reqs)
    assert out[2].finish_reason == "error" and "context" in out[2].error and out[2].tokens_in > 120
    assert all(c.finish_reason != "error" for i, c in enumerate(out) if i != 2)


@pytest.mark.parametrize("user", ["", "   \n"])
def test_empty_prompt_is_error(tiny_engine: TransformersEngine, user: str) -> None:
    out = tiny_engine.generate([GenerationRequest("e", user), GenerationRequest("ok", "Risk factors?")])
    assert out[0].finish_reason == "error" and "empty" in out[0].error
    assert out[1].finish_reason in ("stop", "length")


def test_progress_and_stats(tiny_engine: TransformersEngine) -> None:
    engine = _with_batch(tiny_engine, 2)
    calls: list[tuple[int, int]] = []
    before = engine.stats.requests
    engine.generate(_reqs(), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(d, 5) for d in range(1, 6)]  # one call per finished request, in order
    assert engine.stats.requests == before + 5
    assert engine.stats.tokens_out > 0 and engine.stats.seconds > 0 and engine.stats.device == "cpu"


def test_seeded_sampling_is_reproducible(tiny_engine: TransformersEngine) -> None:
    reqs = _reqs(temperature=1.0, top_k=0, seed=7)
    a, b = tiny_engine.generate(reqs), tiny_engine.generate(reqs)
    assert [c.text for c in a] == [c.text for c in b]
    c = tiny_engine.generate(_reqs(temperature=1.0, top_k=0, seed=8))
    assert [x.text for x in a] != [x.text for x in c]


def _manual_loglik(engine: TransformersEngine, context: str, continuation: str) -> list[float]:
    ctx, cont = engine._encode(context), engine._encode(continuation)
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logp = torch.log_softmax(engine.model(input_ids=ids).logits.float(), -1)[0]
    return [logp[len(ctx) - 1 + k, t].item() for k, t in enumerate(cont)]


def test_loglikelihood_matches_single_sequence(tiny_engine: TransformersEngine) -> None:
    pairs = [
        ("Input: I want to call in sick\nOutput:", " casual"),
        ("Net income rose 12% to $93.7 billion.\nOutput:", " possibly needs caution"),
        ("Risk?", " needs intervention"),
        ("The company repurchased shares and paid dividends; liquidity remains strong.", " casual"),
        ("Output:", " probably needs caution"),
    ]
    got = _with_batch(tiny_engine, 3).loglikelihood(pairs)
    for (ctx, cont), scores in zip(pairs, got, strict=True):
        want = _manual_loglik(tiny_engine, ctx, cont)
        assert len(scores) == len(want) == len(tiny_engine._encode(cont))
        assert scores == pytest.approx(want, abs=1e-4)


def test_loglikelihood_shares_prefix_rows_without_changing_scores(tiny_engine: TransformersEngine) -> None:
    ctx = "Input: Net income rose 12%\nOutput:"
    conts = [
        " casual",
        " casual income",
        " casual income rose",
        " needs caution",
        " needs intervention",
        " casual income",
    ]  # duplicate on purpose
    pairs = [(ctx, c) for c in conts] + [("Risk?", " casual"), ("Risk? More", " casual income")]
    engine = _with_batch(tiny_engine, 2)
    engine.stats.extra.pop("loglikelihood_rows", None)
    got = engine.loglikelihood(pairs)
    for (c, cont), scores in zip(pairs, got, strict=True):
        assert scores == pytest.approx(_manual_loglik(tiny_engine, c, cont), abs=1e-4)
    assert engine.stats.extra["loglikelihood_rows"] < len(pairs)


def test_loglikelihood_edge_cases(tiny_engine: TransformersEngine) -> None:
    out = tiny_engine.loglikelihood([("context", ""), ("", " casual")])
    assert out[0] == []
    assert len(out[1]) == len(tiny_engine._encode(" casual")) and all(v <= 0 for v in out[1])


def test_dtype_resolution() -> None:
    assert resolve_dtype("float32", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    assert resolve_dtype("auto", "cpu") in ("float32", "bfloat16")
    from rag.errors import ConfigError

    with pytest.raises(ConfigError):
        resolve_dtype("int3", "cpu")


def test_auto_dtype_falls_back_to_fp32_without_bf16_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.devices as engine_mod

    monkeypatch.setattr(engine_mod, "cpu_bf16_flags", lambda: set())
    assert resolve_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr(engine_mod, "cpu_bf16_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    assert resolve_dtype("auto", "cpu") == "bfloat16"


def test_cpu_flags_parser(tmp_path) -> None:
    from models.devices import cpu_bf16_flags

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert cpu_bf16_flags(str(info)) == {"avx512_bf16", "amx_tile"}
    assert cpu_bf16_flags(str(tmp_path / "missing")) == set()


@pytest.mark.parametrize(
    "generated, n, banned",
    [
        ([1, 2, 3, 1, 2], 3, {3}),  # "1 2" was followed by 3 before
        ([1, 2, 3, 4], 3, set()),
        ([5, 5, 5], 2, {5}),
        ([1, 2], 3, set()),
        ([7, 8, 7, 9, 7], 2, {8, 9}),
    ],
)
def test_ngram_ban_only_looks_at_generated_tokens(generated, n, banned):
    from models.ngram import banned_next_tokens

    assert banned_next_tokens(generated, n) == banned


def test_ngram_ban_ignores_the_prompt():
    from models.ngram import generated_ngram_ban

    ban = generated_ngram_ban(2, prompt_width=3)
    prompt_then_generated = torch.tensor([[1, 2, 9, 1], [4, 4, 4, 1]])  # prompt "1 2 9" holds "1 2"
    scores = ban(prompt_then_generated, torch.zeros(2, 10))
    assert torch.isfinite(scores[0]).all()  # copying "1 2" from the prompt stays allowed
    scores = ban(torch.tensor([[0, 0, 0, 1, 2, 1]]), torch.zeros(1, 10))
    assert scores[0, 2] == -float("inf") and torch.isfinite(scores[0, 3])


@pytest.fixture(scope="module")
def sequential(tiny_engine: TransformersEngine) -> list:
    """The five requests answered one at a time: the reference for retried batches."""
    return _with_batch(tiny_engine, 1).generate(_reqs())


def _inject(monkeypatch: pytest.MonkeyPatch, engine: TransformersEngine, fails) -> list[tuple[int, int]]:
    """Make the model's forward raise `fails(input_ids)` when that returns an exception; log shapes."""
    real = engine.model.forward
    shapes: list[tuple[int, int]] = []

    def forward(*args, **kwargs):
        ids = kwargs["input_ids"]
        shapes.append(tuple(ids.shape))
        exc = fails(ids)
        if exc is not None:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", forward)
    return shapes


@pytest.mark.parametrize(
    "exc",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)"),
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
    ],
)
def test_oom_batch_is_retried_in_halves_with_identical_outputs(
    tiny_engine, sequential, monkeypatch, exc
) -> None:
    want = sequential
    engine = _with_batch(tiny_engine, 4)
    shapes = _inject(monkeypatch, engine, lambda ids: exc if ids.shape[0] > 2 else None)
    got = engine.generate(_reqs())
    assert [(c.text, c.tokens_out, c.finish_reason) for c in got] == [
        (c.text, c.tokens_out, c.finish_reason) for c in want
    ]
    assert any(b > 2 for b, _ in shapes)  # the big batch really was attempted (and failed)
    assert engine.stats.extra["oom_splits"] >= 1


def test_request_that_ooms_alone_fails_alone(tiny_engine, sequential, monkeypatch) -> None:
    reqs = _reqs()
    long_user = USERS[3]
    want = sequential
    engine = _with_batch(tiny_engine, 4)
    n_long = len(engine._encode(format_prompt(engine.preset, engine.tokenizer, "", long_user)))
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
    _inject(monkeypatch, engine, lambda ids: oom if ids.shape[1] == n_long else None)
    got = engine.generate(reqs)
    assert got[3].finish_reason == "error" and "out of memory even alone" in got[3].error
    assert got[3].request_id == "r3" and got[3].tokens_in == n_long
    for i in (0, 1, 2, 4):
        assert (got[i].text, got[i].tokens_out) == (want[i].text, want[i].tokens_out)
    assert engine.stats.extra["errors"] >= 1


def test_non_memory_failure_is_isolated_to_its_request(tiny_engine, monkeypatch) -> None:
    reqs = _reqs()
    engine = _with_batch(tiny_engine, 4)
    poison = engine._encode(format_prompt(engine.preset, engine.tokenizer, "", USERS[2]))
    bad = ValueError("bad row")
    _inject(
        monkeypatch,
        engine,
        lambda ids: bad if ids.shape[1] == len(poison) and ids[0].tolist() == poison else None,
    )
    got = engine.generate(reqs)
    assert (
        got[2].finish_reason == "error" and "generation failed" in got[2].error and "bad row" in got[2].error
    )
    assert all(c.finish_reason != "error" for i, c in enumerate(got) if i != 2)


def test_sampled_rows_do_not_depend_on_their_batch(tiny_engine) -> None:
    reqs = _reqs(temperature=0.9, top_k=20, top_p=0.9, seed=3)
    together = _with_batch(tiny_engine, 5).generate(reqs)
    alone = [_with_batch(tiny_engine, 1).generate([r])[0] for r in reqs]
    assert [c.text for c in together] == [c.text for c in alone]


def test_last_job_accounting(tiny_engine) -> None:
    engine = _with_batch(tiny_engine, 2)
    out = engine.generate(_reqs() + [GenerationRequest("empty", "")])
    job = engine.last_job
    assert job["requests"] == 6 and job["errors"] == 1
    assert job["tokens_out"] == sum(c.tokens_out for c in out) > 0
    assert job["tokens_in"] == sum(c.tokens_in for c in out[:5])
    assert 0 < job["prefill_seconds"] < job["seconds"] and job["decode_seconds"] > 0
    assert 0 < job["ttft_seconds_p50"] <= job["ttft_seconds_max"] <= job["seconds"]
    assert job["peak_memory_bytes"] > 50 * 2**20 and job["peak_memory_kind"] == "process_rss"
    # `seconds` is recorded to the millisecond, the rate from the unrounded time: equal within that
    half_ms = 0.0005
    low, high = job["tokens_out"] / (job["seconds"] + half_ms), job["tokens_out"] / (job["seconds"] - half_ms)
    assert low - 0.01 <= job["tokens_per_second"] <= high + 0.01


def test_prompt_counter_matches_the_engine(tiny_engine: TransformersEngine, tiny_preset) -> None:
    """The tokenizer-only counter the CPU flow trims prompts with sees what the engine will see."""
    from models.loading import prompt_counter

    count, context = prompt_counter(tiny_preset.name, cache_dir=None)
    assert context == tiny_preset.context_tokens == 120
    for user in USERS:
        job = tiny_engine._prepare(0, GenerationRequest("x", user, system="Be brief."))
        assert count("Be brief.", user) == len(job.ids) == tiny_engine.prompt_tokens("Be brief.", user)
