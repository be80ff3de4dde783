"""models/decode.py pieces: token choice per row, stopping rules, the in-place KV layer."""

from __future__ import annotations

import pytest
import torch

from models.decode import Row, _choose, _layer_class, _same_length, finished, replay


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p", "allowed"),
    [
        (0.0, 0, 1.0, {3}),  # greedy: the argmax
        (1.0, 1, 1.0, {3}),  # top-k 1 is greedy
        (1.0, 0, 0.05, {3}),  # a tiny nucleus keeps only the best token
        (1.0, 2, 1.0, {3, 1}),  # top-k 2: the two best
        (1.0, 0, 0.7, {3, 1}),  # p(3)=0.6 < 0.7 -> the nucleus needs token 1 as well
        (5.0, 0, 1.0, {0, 1, 2, 3}),  # hot and unrestricted: anything
    ],
)
def test_choose_respects_sampling_params(temperature, top_k, top_p, allowed) -> None:
    probs = torch.tensor([0.05, 0.3, 0.05, 0.6])
    seen = set()
    for seed in range(60):
        row = Row([1], 4, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        gen = _gen(seed) if temperature > 0 else None
        seen.add(_choose(probs.log()[None].clone(), [row], [gen], 0)[0])
    assert seen <= allowed and (len(seen) > 1) == (len(allowed) > 1)


def test_choose_bans_generated_ngrams_only() -> None:
    row = Row([3, 3], 8, tokens=[3, 1, 3])  # "3 1" was generated, so after "... 3" token 1 is banned
    logits = torch.tensor([[0.0, 5.0, 0.0, 1.0]])
    assert _choose(logits.clone(), [row], [None], 2)[0] == 3
    assert _choose(logits.clone(), [row], [None], 0)[0] == 1


class _Tok:
    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(ord("a") + i) for i in ids)


@pytest.mark.parametrize(
    ("tokens", "stops", "max_new", "reason", "kept"),
    [
        ([0, 1, 9, 2], (), 10, "eos", 3),  # eos 9 ends the row, and is counted
        ([0, 1, 2, 3], ("bc",), 10, "stop", 3),  # the stop word is complete after "c"
        ([0, 1, 2, 3], (), 2, "length", 2),
        ([0, 9], ("j",), 5, "eos", 2),  # eos (9 decodes as "j") wins over a stop word on the same token
        ([0, 1], ("zz",), 5, "length", 2),  # ran out of tokens without ending: length
    ],
)
def test_replay_applies_the_stopping_rules(tokens, stops, max_new, reason, kept) -> None:
    row = replay(tokens, Row([5], max_new, stops), {9}, _Tok())
    assert (row.reason, len(row.tokens)) == (reason, kept)
    assert finished(Row([5], 1, tokens=[4]), set(), _Tok())  # a 1-token budget ends at once


def test_grow_layer_appends_in_place_and_selects_rows() -> None:
    layer = _layer_class()()
    k = torch.arange(2 * 1 * 3 * 2, dtype=torch.float32).view(2, 1, 3, 2)
    keys, _ = layer.update(k, k + 100)
    assert torch.equal(keys, k) and layer.get_seq_length() == 3
    for step in range(70):  # past the first capacity: the buffer grows, contents stay
        layer.update(torch.full((2, 1, 1, 2), float(step)), torch.zeros(2, 1, 1, 2))
    assert layer.get_seq_length() == 73 and torch.equal(layer.keys[:, :, :3], k)
    assert layer.keys[0, 0, -1, 0] == 69
    layer.batch_select_indices(torch.tensor([1]))
    layer.trim_left(3)
    assert layer.keys.shape == (1, 1, 70, 2) and layer.keys[0, 0, 0, 0] == 0


def test_same_length_groups_consecutive_rows() -> None:
    rows = [Row([1] * n, 1) for n in (5, 5, 4, 4, 4, 2)]
    assert [len(g) for g in _same_length(rows)] == [2, 3, 1]
