"""A generation unit's answer -> the sentences that may be published, and why the others were not.

What a sentence must pass before a reader sees it (each failure is recorded, never hidden):
1. It is complete: an answer cut by the token limit keeps only its full sentences.
2. It does not echo the prompt or instruction, and does not repeat itself (reports/echo.py).
3. Its source supports it: support score (reports/support.py, threshold measured on the
   hand-labelled sentences in tests/fixtures/support_labels.jsonl) against the source it cites.
4. Every figure in it is in a source it cites, at the precision written (reports/numbers.py);
   a value that belongs to another line or period is a mismatch.

Claim units (small models) answer one question about one source: the answer's first sentence is
checked against that source and cited to it by code. Paragraph units (large models) cite their
own sources; citations are mapped to the report's numbers, each sentence is checked against what
it cites, and an uncited sentence is kept only when similarity attributes it to a source that
supports it — shown as attributed, never counted as cited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from models.types import Completion
from reports.checks import ABBREVIATION, Encode, remap_citations, split_sentences
from reports.compose import UnitPlan, cite
from reports.echo import is_echo, is_repetitive
from reports.model import DroppedClaim
from reports.numbers import FactRef, check_sentence
from reports.sanitize import CITATION_MARKER, sanitize_model_text
from reports.support import support_signals, threshold_for

# "According to the source, X" / "The source says that X" -> "X": the model talking about its
# prompt instead of the company. Stripped when the rest is a sentence; otherwise echo catches it.
_META_LEAD = re.compile(
    r"^(?:according to (?:the |this )?(?:source|text|passage|article|news)s?,?\s*"
    r"|(?:the |this )(?:source|text|passage|article|news)s?(?: above)? "
    r"(?:says|states|reports|mentions|explains|shows|describes|notes|highlights|reveals|suggests|indicates)"
    r"(?: that| how)?,?\s*"
    r"|answer:\s*)",
    re.I,
)
MIN_CLAIM_WORDS = 6  # "Amazon.com, Inc." is a name, not a claim
MAX_CLAIM_WORDS = 60  # past this a "sentence" is several run together without a boundary
_END = re.compile(r"[.!?][\"'\u201d\u2019)]*$")


@dataclass
class Checked:
    """One unit's outcome: sentences to publish (with markers), and the rejected ones."""

    sentences: list[str] = field(default_factory=list)
    citations: list[int] = field(default_factory=list)  # global numbers cited by kept sentences
    attributed: list[int] = field(default_factory=list)  # added by similarity (paragraph mode)
    attributed_sentences: int = 0
    invalid: list[int] = field(default_factory=list)  # markers to sources outside the unit
    numbers_verified: int = 0
    support: list[float] = field(default_factory=list)  # support score of each kept sentence
    dropped: list[DroppedClaim] = field(default_factory=list)
    cut: bool = False  # the answer hit the token limit


def drop_unfinished_sentence(text: str) -> str:
    """Text cut by the token limit: keep it up to the last sentence end (and its citation markers)."""
    ends = list(re.finditer(r"[.!?](?=\s|\[|$)(?:\s*\[[\d,\s\-–]+\])*", text))
    return text[: ends[-1].end()].rstrip() if ends else ""


def _clean(text: str) -> str:
    text = _META_LEAD.sub("", text.strip(), count=1)
    if re.match(r"[a-z]+[A-Z]", text):  # a camel-case brand keeps its case: "iPad", not "IPad"
        return text
    return text[:1].upper() + text[1:] if text else text


def _plain(sentence: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", CITATION_MARKER.sub("", sentence)).strip()


def _claim_candidate(text: str) -> tuple[list[tuple[str, list[int]]], str]:
    """Claim mode: the answer's first sentence, cited to source 1 by code; or ([], why not)."""
    first = _clean(CITATION_MARKER.sub("", split_sentences(text)[0]).strip())
    first = re.sub(r"\s+([.,;:!?])", r"\1", first)
    if not _END.search(first) or ABBREVIATION.search(first):  # "… former U.S." is not an end
        return [], "no complete sentence"
    if len(first.split()) > MAX_CLAIM_WORDS:
        return [], f"too long for one sentence (over {MAX_CLAIM_WORDS} words)"
    if len(first.split()) < MIN_CLAIM_WORDS:
        return [], f"too short to say anything (under {MIN_CLAIM_WORDS} words)"
    return [(first, [1])], ""


def _best_support(
    unit: UnitPlan, candidates: list[tuple[str, list[int]]], encode: Encode | None
) -> dict[int, tuple[float, int, tuple[str, ...]]]:
    """Per candidate, its best support score, the source giving it and that pair's rule mismatches
    ("negation", "direction", "roles"), in one batched pass: each sentence against every source it
    cites (or, uncited, every source of the unit, for attribution)."""
    pairs, index = [], []
    for i, (sentence, cited) in enumerate(candidates):
        for n in cited or sorted(unit.source_texts):
            pairs.append((_plain(sentence), unit.source_texts[n]))
            index.append((i, n))
    signals = support_signals(pairs, encode) if pairs else []
    best: dict[int, tuple[float, int, tuple[str, ...]]] = {}
    for (i, n), sig in zip(index, signals, strict=True):
        if i not in best or sig.score > best[i][0]:
            best[i] = (sig.score, n, tuple(sig.mismatches))
    return best


# What a rule mismatch means, for the Audit's reason line (reports/support.py).
_MISMATCH_WHY = {
    "negation": "negates what the source says",
    "direction": "says up where the source says down, or the reverse",
    "roles": "changes what the source says caused what",
}


def check_unit(
    unit: UnitPlan, completion: Completion, encode: Encode | None = None, facts: list[FactRef] | None = None
) -> Checked:
    """Split, check and cite one unit's answer (module docstring)."""
    out = Checked(cut=completion.finish_reason == "length")
    text = sanitize_model_text(completion.text)
    if out.cut:
        text = drop_unfinished_sentence(text)

    def drop(sentence: str, reason: str) -> None:
        out.dropped.append(DroppedClaim(request_id=unit.request_id, text=sentence[:500], reason=reason))

    if not text.strip():
        drop(sanitize_model_text(completion.text), "no complete sentence" if out.cut else "empty answer")
        return out
    parts = [unit.question, unit.system] if unit.mode == "claim" else [unit.user, unit.system]
    whole = is_echo(text, parts) or is_repetitive(text)
    if whole:
        drop(text, whole)
        return out
    if unit.mode == "claim":
        candidates, why = _claim_candidate(text)
        if not candidates:
            first = _clean(CITATION_MARKER.sub("", split_sentences(text)[0]).strip())
            drop(re.sub(r"\s+([.,;:!?])", r"\1", first), why)
            return out
    else:
        candidates = []
        for s in split_sentences(text):
            clean, valid_local, invalid = remap_citations(s, {n: n for n in unit.source_map})
            out.invalid += [n for n in invalid if n not in out.invalid]
            candidates.append((clean, valid_local))
    _verify(out, unit, candidates, encode, facts or [], drop)
    return out


def _verify(
    out: Checked,
    unit: UnitPlan,
    candidates: list[tuple[str, list[int]]],
    encode: Encode | None,
    facts: list[FactRef],
    drop: Callable[[str, str], None],
) -> None:
    """Figures, then support: keep (cited) the candidates that pass, drop the rest with the reason."""
    best = _best_support(unit, candidates, encode)
    threshold = threshold_for(encode)
    for i, (sentence, cited) in enumerate(candidates):
        plain = _plain(sentence)
        if not plain:
            continue
        score, n, mismatches = best.get(i, (0.0, 0, ()))
        # figures first: "12% is in no source" says more than a low support score it causes
        sources = [unit.source_texts[c] for c in (cited or sorted(unit.source_texts))]
        numbers = check_sentence(plain, facts, sources)
        if numbers.unverified or numbers.mismatched:
            why = [f"{m.text}: not in its source" for m in numbers.unverified]
            why += [f"{m.text}: {reason}" for m, reason in numbers.mismatched]
            drop(plain, "; ".join(why))
            continue
        if score < threshold:
            drop(
                plain,
                f"not supported by {'its cited source' if cited else 'any source of the section'} "
                f"(support {score:.2f} < {threshold:.2f}"
                + "".join(f"; {_MISMATCH_WHY.get(m, m)}" for m in dict.fromkeys(mismatches))
                + ")",
            )
            continue
        out.numbers_verified += len(numbers.verified)
        glob = [unit.source_map[c] for c in (cited or [n])]
        if cited:
            out.citations += [g for g in glob if g not in out.citations]
        else:
            out.attributed += [g for g in glob if g not in out.attributed]
            out.attributed_sentences += 1
        out.sentences.append(_cite_all(plain, glob))
        out.support.append(score)


def _cite_all(sentence: str, numbers: list[int]) -> str:
    marked = cite(sentence, numbers[0])
    return (
        marked
        if len(numbers) == 1
        else marked.replace(f"[{numbers[0]}]", "[" + ", ".join(map(str, numbers)) + "]")
    )
