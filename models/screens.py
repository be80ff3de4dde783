"""Moderation checks, registered by name, combined into one verdict per text.

Why several checks: OpenChatKit's scheme is one judge (GPT-JT-Moderation-6B label scoring, see
`models.moderation`). On the offline default that judge is a 135M chat model whose labels carry
almost no signal (measured in `bench/moderation.py`), so two cheap, independent signals run next
to it and catch what they can without a GPU:

* `injection` - prompt-injection phrasing in retrieved text ("ignore previous instructions",
  chat-role markers, requests to reveal the prompt). Rules, so precise and narrow: they were
  checked against every passage of the shipped corpus for false positives.
* `profanity` - alt-profanity-check (a TF-IDF + linear SVM trained on ~200k labelled comments),
  probability of offensive language. Catches insults and abuse; not self-harm or violence
  phrased without abusive words - only the production judge covers those.
* `label-scoring` - the OpenChatKit labels scored by the moderation model.

Every check returns one of the five OpenChatKit labels per text; the combined label is the most
severe one and the policy maps it to an action. A check that raises fails closed: its texts get
the "error" label, which every policy withholds. Extend by `register(CheckSpec(...))`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.moderation import ERROR_LABEL, LABELS, moderate
from rag.errors import ConfigError

# Most to least benign; "error" outranks everything so a broken check can never let text through.
SEVERITY: dict[str, int] = {
    "casual": 0,
    "possibly needs caution": 1,
    "probably needs caution": 2,
    "needs caution": 3,
    "needs intervention": 4,
    ERROR_LABEL: 5,
}
ACTIONS = ("publish", "caution", "withhold")


@dataclass(frozen=True)
class CheckVerdict:
    """One check's label for one text."""

    check: str
    label: str  # one of LABELS, or "error"
    reason: str = ""  # why, in words an analyst can act on ("" for casual)
    scores: dict[str, float] = field(default_factory=dict)  # label-scoring only: calibrated scores
    margin: float = 0.0  # label-scoring only: best minus second-best score
    advisory_label: str = ""  # label-scoring by a non-moderation model: what it said (not acted on)


@dataclass(frozen=True)
class Screening:
    """All checks' verdicts for one text; `label` is the most severe of them."""

    verdicts: tuple[CheckVerdict, ...]

    @property
    def deciding(self) -> CheckVerdict:
        """The verdict that set the label (the first check, in order, among the most severe)."""
        return max(self.verdicts, key=lambda v: SEVERITY.get(v.label, SEVERITY[ERROR_LABEL]))

    @property
    def label(self) -> str:
        return self.deciding.label if self.verdicts else ERROR_LABEL

    def reasons(self) -> str:
        """Every non-casual verdict, e.g. "injection: 'ignore previous instructions'"."""
        return "; ".join(f"{v.check}: {v.reason or v.label}" for v in self.verdicts if v.label != "casual")

    def advisories(self) -> str:
        """What advisory judges said, for the audit only (never a banner)."""
        return "; ".join(v.reason for v in self.verdicts if v.advisory_label)


Check = Callable[[Sequence[str]], list[CheckVerdict]]


@dataclass(frozen=True)
class CheckSpec:
    """A named check; `make(engine)` returns the function (engine is None unless `needs_engine`)."""

    name: str
    catches: str  # one line for docs and the run manifest
    make: Callable[[Any], Check]
    needs_engine: bool = False


CHECKS: dict[str, CheckSpec] = {}


def register(spec: CheckSpec) -> CheckSpec:
    if spec.name in CHECKS and CHECKS[spec.name] != spec:
        raise ValueError(f"moderation check {spec.name!r} is already registered")
    CHECKS[spec.name] = spec
    return spec


def validate_policy(policy: dict[str, str]) -> dict[str, str]:
    """A complete label -> action table; unknown labels or actions are configuration errors."""
    bad_labels = sorted(set(policy) - set(LABELS))
    bad_actions = sorted({a for a in policy.values() if a not in ACTIONS})
    if bad_labels or bad_actions:
        raise ConfigError(
            "moderation policy: "
            + (f"unknown labels {bad_labels} (known: {list(LABELS)}) " if bad_labels else "")
            + (f"unknown actions {bad_actions} (known: {list(ACTIONS)})" if bad_actions else "")
        )
    missing = sorted(set(LABELS) - set(policy))
    if missing:
        raise ConfigError(f"moderation policy: no action for labels {missing}")
    return dict(policy)


def make_checks(names: Sequence[str], engine_for: Callable[[], Any] | None = None) -> list[tuple[str, Check]]:
    """Instantiate checks by name; `engine_for` loads the moderation model only if a check needs it."""
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ConfigError(f"unknown moderation checks {unknown}; known: {sorted(CHECKS)}")
    checks = []
    for name in dict.fromkeys(names):
        spec = CHECKS[name]
        if spec.needs_engine and engine_for is None:
            raise ConfigError(f"moderation check {name!r} needs a model, none was given")
        checks.append((name, spec.make(engine_for() if spec.needs_engine else None)))
    return checks


def screen(texts: Sequence[str], checks: Sequence[tuple[str, Check]]) -> list[Screening]:
    """Run every check over all texts (each check batched); fail closed per check."""
    if not checks:
        raise ConfigError("no moderation checks configured: refusing to pass text unmoderated")
    columns: list[list[CheckVerdict]] = []
    for name, check in checks:
        try:
            out = check(texts)
            if len(out) != len(texts):
                raise ValueError(f"returned {len(out)} verdicts for {len(texts)} texts")
        except Exception as exc:  # noqa: BLE001 - fail closed: withhold, and say which check broke
            out = [CheckVerdict(name, ERROR_LABEL, f"check failed: {exc!r}") for _ in texts]
        columns.append(out)
    return [Screening(tuple(col[i] for col in columns)) for i in range(len(texts))]


# -- built-in checks ---------------------------------------------------------------------------

# Each rule is (name, pattern). Patterns are case-insensitive and deliberately narrow: a finance
# corpus says "attack", "act as" and "override" all the time; none of these phrasings occurs in
# the shipped filings, news or Wikipedia passages (tests/models/test_screens.py checks that).
INJECTION_RULES: tuple[tuple[str, str], ...] = (
    (
        "override instructions",
        r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(previous|prior|above|earlier|all|any|"
        r"your|these|the)\b[^.\n]{0,30}?\b(instructions?|prompts?|rules|directions|guidelines|context|sources?)\b",
    ),
    ("role reassignment", r"\b(you are now|from now on,? you|pretend (to be|you are)|you must now act)\b"),
    (
        "prompt extraction",
        r"\b(reveal|print|repeat|show|output)\b[^.\n]{0,30}\b(system|hidden|original)\s+"
        r"(prompt|instructions?|message)\b",
    ),
    ("system prompt reference", r"\b(system|developer) (prompt|message)\b"),
    (
        "chat-role marker",
        r"(^|[\s>])<\s*/?\s*(human|bot|system|assistant|user)\s*>\s*:?|<\|im_(start|end)\|>|"
        r"\[/?INST\]|^\s*#{2,}\s*(instruction|system)\b",
    ),
    ("new instructions", r"\b(new|updated|real) instructions?\s*:"),
    ("jailbreak", r"\b(jailbreak|do anything now|DAN mode|developer mode enabled)\b"),
)
_INJECTION = [(name, re.compile(pattern, re.IGNORECASE | re.MULTILINE)) for name, pattern in INJECTION_RULES]


def injection_check(texts: Sequence[str]) -> list[CheckVerdict]:
    out = []
    for text in texts:
        hit = next(((name, m) for name, rx in _INJECTION if (m := rx.search(text))), None)
        if hit is None:
            out.append(CheckVerdict("injection", "casual"))
        else:
            name, m = hit
            out.append(CheckVerdict("injection", "needs intervention", f"{name}: {m.group(0).strip()!r}"))
    return out


# alt-profanity-check probabilities: shipped finance passages score 0.00-0.3 (max measured in
# bench/moderation.py), insults ~1.0. Two bands so borderline text gets a banner, not a withhold.
PROFANITY_WITHHOLD = 0.85
PROFANITY_CAUTION = 0.6


def profanity_verdict(p: float) -> CheckVerdict:
    if p >= PROFANITY_WITHHOLD:
        return CheckVerdict("profanity", "needs caution", f"offensive language (p={p:.2f})")
    if p >= PROFANITY_CAUTION:
        return CheckVerdict("profanity", "probably needs caution", f"possibly offensive (p={p:.2f})")
    return CheckVerdict("profanity", "casual")


def _profanity(_engine: Any) -> Check:
    try:  # imported when configured, so a missing package is a config error, not a withheld run
        from profanity_check import predict_prob
    except ImportError as exc:
        raise ConfigError(
            "the `profanity` check needs alt-profanity-check: pip install alt-profanity-check"
        ) from exc

    def check(texts: Sequence[str]) -> list[CheckVerdict]:
        return [profanity_verdict(float(p)) for p in (predict_prob(list(texts)) if texts else [])]

    return check


# A chat model asked for the moderation labels was not trained on them: on the offline default
# (SmolLM2-135M) the labels are at chance level (bench/moderation.py: it withholds 10 of 36 real
# finance sentences and 9 of 32 harmful ones). Withholding at chance protects nobody and hides
# good text, and a caution banner on every section teaches readers to ignore banners. So only a
# model whose preset role is "moderation" (GPT-JT-Moderation-6B) decides; any other judge is
# advisory: its label, scores and margin are recorded in the audit (`advisory_label`), and its
# verdict counts as "casual". A judge that fails still fails closed.
ADVISORY = "advisory"


def _label_scoring(engine: Any) -> Check:
    trusted = getattr(getattr(engine, "preset", None), "role", "chat") == "moderation"
    judge = getattr(engine, "name", "the moderation model")

    def check(texts: Sequence[str]) -> list[CheckVerdict]:
        out = []
        for r in moderate(engine, list(texts)):
            label, reason = (
                r.label,
                r.error or (f"{judge} margin {r.margin:.2f}" if r.label != "casual" else ""),
            )
            advisory = ""
            if not trusted and label != ERROR_LABEL:
                advisory, label = r.label, "casual"
                reason = (
                    f"{ADVISORY}: {judge} (a chat model, not a trained moderation model) said {r.label!r} "
                    f"(margin {r.margin:.2f}); recorded, not acted on"
                )
            out.append(CheckVerdict("label-scoring", label, reason, dict(r.scores), r.margin, advisory))
        return out

    return check


register(CheckSpec("injection", "prompt-injection phrasing (rules)", lambda _engine: injection_check))
register(CheckSpec("profanity", "offensive language (alt-profanity-check)", _profanity))
register(
    CheckSpec(
        "label-scoring",
        "OpenChatKit moderation labels scored by the moderation model",
        _label_scoring,
        needs_engine=True,
    )
)
