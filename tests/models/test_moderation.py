"""Moderation label scoring, calibration and policy, with fake engines (deterministic)."""

from __future__ import annotations

import math

import pytest

from models.moderation import (
    CONTENT_FREE,
    DEFAULT_POLICY,
    FEW_SHOT,
    LABELS,
    build_prompt,
    decide,
    moderate,
)

CARD_PROMPT = """Possible labels:
1. casual
2. needs caution
3. needs intervention
4. possibly needs caution
5. probably needs caution

Input: I want to call in sick
Output: casual

Input: I hate my job and I don't want to go there.
Output: possibly needs caution

Input: It's so hard to deal with this. I hate this job and I want to quit.
Output: possibly needs caution

Input: Something tells me that you're sitting in the wrong section of the Stormfront bus.
Output: needs caution

Input: {text}
Output:"""


class TableEngine:
    """Fake engine: per-token log-probs looked up by (input text, label)."""

    name = "fake"
    revision = "0"

    def __init__(self, table: dict[tuple[str, str], list[float]], default: list[float] | None = None):
        self.table = table
        self.default = default or [-5.0]
        self.calls = 0

    def generate(self, requests):  # pragma: no cover - not used
        raise NotImplementedError

    def loglikelihood(self, pairs):
        self.calls += 1
        out = []
        for context, continuation in pairs:
            text = context[len(FEW_SHOT) + len("Input: "):-len("\nOutput:")]
            out.append(self.table.get((text, continuation.strip()), self.default))
        return out


class BrokenEngine(TableEngine):
    def loglikelihood(self, pairs):
        raise RuntimeError("CUDA out of memory")


def test_prompt_is_the_model_card_format() -> None:
    assert build_prompt("Apple reported net sales of $391.0 billion.") == CARD_PROMPT.format(
        text="Apple reported net sales of $391.0 billion.")
    assert build_prompt("two\nlines  here") == CARD_PROMPT.format(text="two lines here")


@pytest.mark.parametrize(
    ("label", "action"),
    [
        ("casual", "publish"),
        ("possibly needs caution", "caution"),
        ("probably needs caution", "caution"),
        ("needs caution", "withhold"),
        ("needs intervention", "withhold"),
        ("error", "withhold"),
        ("something new", "withhold"),
    ],
)
def test_default_policy(label: str, action: str) -> None:
    assert decide(label) == action
    assert decide(label, DEFAULT_POLICY) == action


def test_custom_policy() -> None:
    assert decide("possibly needs caution", {"possibly needs caution": "publish"}) == "publish"
    assert decide("casual", {}) == "withhold"


def test_scoring_error_fails_closed() -> None:
    results = moderate(BrokenEngine({}), ["fine text", "other text"])
    assert [r.label for r in results] == ["error", "error"]
    assert all(decide(r.label) == "withhold" and "out of memory" in r.error for r in results)


def test_non_finite_scores_fail_closed() -> None:
    engine = TableEngine({("bad", "casual"): [math.nan]}, default=[-1.0])
    [bad, good] = moderate(engine, ["bad", "good"], calibrate=False)
    assert bad.label == "error" and decide(bad.label) == "withhold"
    assert good.label in LABELS


def test_mean_logprob_does_not_penalise_long_labels() -> None:
    # Sum would pick casual (-1.5 vs -3.0); mean per token picks the 3-token label (-1.0 vs -1.5).
    engine = TableEngine({("t", "casual"): [-1.5], ("t", "possibly needs caution"): [-1.0, -1.0, -1.0]},
                         default=[-9.0])
    [res] = moderate(engine, ["t"], calibrate=False)
    assert res.label == "possibly needs caution" and res.calibrated is False
    assert res.scores["possibly needs caution"] == pytest.approx(-1.0)
    assert res.margin == pytest.approx(0.5)


def test_calibration_removes_label_prior_in_one_call() -> None:
    # Raw: "needs caution" wins for the text, but the model says it for content-free input too.
    table = {("q", "casual"): [-2.0], ("q", "needs caution"): [-1.0]}
    for cf in CONTENT_FREE:
        table[(cf, "casual")] = [-4.0]
        table[(cf, "needs caution")] = [-0.5]
    engine = TableEngine(table, default=[-20.0])
    [raw] = moderate(engine, ["q"], calibrate=False)
    assert raw.label == "needs caution"
    [cal] = moderate(engine, ["q"])
    assert engine.calls == 2  # one loglikelihood call per moderate()
    assert cal.label == "casual" and cal.calibrated
    assert cal.scores["casual"] == pytest.approx(-2.0 - (-4.0))
    assert cal.scores["needs caution"] == pytest.approx(-1.0 - (-0.5))
    assert cal.raw_scores["needs caution"] == pytest.approx(-1.0)
    assert cal.margin == pytest.approx(2.0 - 0.0)  # unlisted labels: -20 both ways -> calibrated 0


def test_calibration_prior_is_log_mean_exp_of_content_free_inputs() -> None:
    table = {("q", lab): [-1.0] for lab in LABELS}
    table.update({("N/A", "casual"): [-1.0], ("", "casual"): [-3.0], ("[MASK]", "casual"): [-5.0]})
    [res] = moderate(TableEngine(table, default=[-2.0]), ["q"])
    prior = math.log((math.exp(-1.0) + math.exp(-3.0) + math.exp(-5.0)) / 3)
    assert res.scores["casual"] == pytest.approx(-1.0 - prior)


class CountingEngine(TableEngine):
    context_tokens = 400

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_long_text_is_truncated_keeping_the_start() -> None:
    engine = CountingEngine({}, default=[-1.0])
    words = [f"w{i}" for i in range(2000)]
    [res] = moderate(engine, [" ".join(words)])
    assert res.truncated and res.label in LABELS
    budget = 400 - engine.count_tokens(build_prompt("")) - 3 - 4
    [short] = moderate(engine, ["short text"])
    assert not short.truncated
    # The kept part is the start of the text and fits the budget.
    from models.moderation import _fit
    kept, truncated = _fit(engine, " ".join(words), None)
    assert truncated and " ".join(words).startswith(kept) and engine.count_tokens(kept) <= budget


def test_char_budget_without_tokenizer() -> None:
    [res] = moderate(TableEngine({}, default=[-1.0]), ["x" * 50], max_input_chars=10)
    assert res.truncated


def test_no_texts_no_model_call() -> None:
    engine = TableEngine({})
    assert moderate(engine, []) == [] and engine.calls == 0
