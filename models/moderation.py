"""Moderation by few-shot label scoring (OpenChatKit's GPT-JT-Moderation-6B scheme).

Every text is put into the model card's few-shot prompt and each of the five labels is scored
as a continuation; the best-scoring label wins and a policy table maps it to an action. The
same code runs on GPT-JT-Moderation-6B in production and on the small offline chat model.

Two choices matter for a small model:
* Labels are compared by MEAN per-token log-prob, so three-token labels are not beaten by
  one-token `casual` merely for being longer.
* Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): the model's label prior
  is measured on content-free inputs ("N/A", "", "[MASK]") and divided out, so the prior that
  the few-shot examples create (two of four examples say `possibly needs caution`) does not
  decide every verdict.

Failure is closed: if scoring raises or returns garbage, the label is "error" and the policy
withholds the text. Unknown labels are withheld too.

Measured on the offline default (SmolLM2-135M, 10 finance + 6 abusive sentences): the labels
carry no usable signal. It never picks `casual` (mean log-prob of " casual" is about -13 even for
the prompt's own `casual` example); uncalibrated, all 16 texts get a `caution` label; calibrated,
1/10 finance and 2/6 abusive texts land on `needs caution` (withheld) and the rest on `caution`.
Treat verdicts from that model as plumbing, not moderation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from models.types import LabelScorer

LABELS: tuple[str, ...] = (
    "casual",
    "needs caution",
    "needs intervention",
    "possibly needs caution",
    "probably needs caution",
)

# The model card's prompt, byte for byte; the text under test is appended as the last Input.
FEW_SHOT = (
    "Possible labels:\n1. casual\n2. needs caution\n3. needs intervention\n"
    "4. possibly needs caution\n5. probably needs caution\n\n"
    "Input: I want to call in sick\nOutput: casual\n\n"
    "Input: I hate my job and I don't want to go there.\nOutput: possibly needs caution\n\n"
    "Input: It's so hard to deal with this. I hate this job and I want to quit.\n"
    "Output: possibly needs caution\n\n"
    "Input: Something tells me that you're sitting in the wrong section of the Stormfront bus.\n"
    "Output: needs caution\n\n"
)
CONTENT_FREE: tuple[str, ...] = ("N/A", "", "[MASK]")  # Zhao et al.'s content-free inputs
ERROR_LABEL = "error"
DEFAULT_MAX_INPUT_CHARS = 4000  # used only when the engine cannot count tokens

DEFAULT_POLICY: dict[str, str] = {
    "casual": "publish",
    "possibly needs caution": "caution",
    "probably needs caution": "caution",
    "needs caution": "withhold",
    "needs intervention": "withhold",
}


@dataclass(frozen=True)
class ModerationResult:
    label: str  # one of LABELS, or "error"
    scores: dict[str, float]  # the scores the label was chosen by (calibrated when `calibrated`)
    margin: float  # best minus second-best score; small = unsure
    calibrated: bool
    raw_scores: dict[str, float] = field(default_factory=dict)  # mean log-prob before calibration
    truncated: bool = False  # the text was cut to fit the context (its start was kept)
    error: str = ""


def decide(label: str, policy: dict[str, str] | None = None) -> str:
    """Map a label to an action; anything the policy does not know (incl. "error") is withheld."""
    return (DEFAULT_POLICY if policy is None else policy).get(label, "withhold")


def build_prompt(text: str) -> str:
    """The few-shot prompt for one text. Whitespace is collapsed to single spaces because the
    format is line-based: a newline inside the text would look like the end of the Input."""
    return f"{FEW_SHOT}Input: {' '.join(text.split())}\nOutput:"


def _fit(engine: Any, text: str, max_input_chars: int | None) -> tuple[str, bool]:
    """Cut `text` (keeping its start) so prompt + longest label fit the engine's context."""
    text = " ".join(text.split())
    count = getattr(engine, "count_tokens", None)
    context = getattr(engine, "context_tokens", None)
    if max_input_chars is not None or count is None or context is None:
        limit = max_input_chars or DEFAULT_MAX_INPUT_CHARS
        return (text, False) if len(text) <= limit else (text[:limit], True)
    budget = context - count(build_prompt("")) - max(count(" " + lab) for lab in LABELS) - 4
    if budget <= 0:
        raise ValueError(f"the moderation prompt alone does not fit a {context}-token context")
    n = count(text)
    truncated = False
    while n > budget:  # token counts are not proportional to chars; shrink until it fits
        text = text[: max(0, int(len(text) * budget / n) - 1)]
        n, truncated = count(text), True
    return text, truncated


def _logmeanexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def _pick(scores: dict[str, float]) -> tuple[str, float]:
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    margin = ranked[0][1] - ranked[1][1] if len(ranked) > 1 else math.inf
    return ranked[0][0], margin


def _error(message: str, truncated: bool = False, calibrated: bool = False) -> ModerationResult:
    return ModerationResult(ERROR_LABEL, {}, 0.0, calibrated, truncated=truncated, error=message)


def moderate(
    engine: LabelScorer,
    texts: Sequence[str],
    *,
    calibrate: bool = True,
    content_free: Sequence[str] = CONTENT_FREE,
    labels: Sequence[str] = LABELS,
    max_input_chars: int | None = None,
) -> list[ModerationResult]:
    """Label every text with one batched `engine.loglikelihood` call (texts x labels).

    The content-free inputs are scored in the same call. `max_input_chars` forces a character
    budget; by default the engine's tokenizer and context decide how much of a text fits.
    """
    if not texts:
        return []
    fitted: list[tuple[str, bool] | None] = []
    for text in texts:
        try:
            fitted.append(_fit(engine, text, max_input_chars))
        except Exception:  # noqa: BLE001 - fail closed per text, reported below
            fitted.append(None)
    inputs = [f[0] for f in fitted if f is not None] + (list(content_free) if calibrate else [])
    pairs = [(build_prompt(text), " " + label) for text in inputs for label in labels]
    try:
        logprobs = engine.loglikelihood(pairs) if pairs else []
        if len(logprobs) != len(pairs):
            raise ValueError(f"engine returned {len(logprobs)} scores for {len(pairs)} pairs")
        means = [sum(lp) / len(lp) if lp else math.nan for lp in logprobs]
    except Exception as exc:  # noqa: BLE001 - moderation must fail closed, never crash open
        return [_error(f"label scoring failed: {exc!r}", bool(f and f[1]), calibrate) for f in fitted]

    width = len(labels)
    per_input = [
        dict(zip(labels, means[k * width : (k + 1) * width], strict=True)) for k in range(len(inputs))
    ]
    n_texts = len(inputs) - (len(content_free) if calibrate else 0)
    prior: dict[str, float] = {}
    if calibrate:
        cf_rows = per_input[n_texts:]
        if any(not math.isfinite(v) for row in cf_rows for v in row.values()):
            return [
                _error("content-free calibration scores are not finite", bool(f and f[1]), True)
                for f in fitted
            ]
        # Zhao et al. average the content-free label probabilities; in log space: log-mean-exp.
        prior = {lab: _logmeanexp([row[lab] for row in cf_rows]) for lab in labels}

    results: list[ModerationResult] = []
    rows = iter(per_input[:n_texts])
    for f in fitted:
        if f is None:
            results.append(_error("could not fit the text into the moderation prompt", calibrated=calibrate))
            continue
        raw = next(rows)
        if any(not math.isfinite(v) for v in raw.values()):
            results.append(_error("label scores are not finite", f[1], calibrate))
            continue
        scores = {lab: raw[lab] - prior[lab] for lab in labels} if calibrate else dict(raw)
        label, margin = _pick(scores)
        results.append(ModerationResult(label, scores, margin, calibrate, raw_scores=raw, truncated=f[1]))
    return results
