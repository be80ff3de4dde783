"""Context + completions + moderation verdicts -> a `Report` ready to render.

A section is its code-written paragraphs (exact by construction) around the model's checked
sentences (reports/claims.py). Moderation judges each generation unit; the most severe verdict
among a section's units decides the section: withheld sections keep no text at all (not even
the code's), so nothing moderation stopped can reach a published file. A section with nothing
to say (no facts, no sources) says so in one line and was never sent to the model.
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.types import Completion
from reports.charts import financial_charts
from reports.checks import Encode
from reports.claims import Checked, check_unit
from reports.compose import SectionPlan, UnitPlan
from reports.context import TickerContext
from reports.financials import fact_refs
from reports.model import DroppedClaim, Paragraph, Report, SectionReport, Verdict
from reports.numbers import FactRef
from reports.sanitize import CITATION_MARKER
from reports.support import lexical_support

_SEVERITY = {"published": 0, "caution": 1, "withheld": 2, "failed": 3}
_ACTION = {"publish": 0, "caution": 1, "withhold": 2}
# Share of a model sentence's content words already in the section's other text at which it adds
# nothing (a news synthesis that restates its headline, two MD&A claims saying the same).
REDUNDANT = 0.8


def verdict_reason(label: str, action: str, margin: float, why: str = "") -> str:
    """The sentence a reader sees; `why` names the checks that flagged the text (models.screens)."""
    detail = f" ({why})" if why else ""
    if label == "error":
        return f"Moderation could not check this section{detail}, so it is withheld (fail closed)."
    if action == "withhold":
        return f"Moderation labelled this section '{label}'{detail}; it is not published."
    if action == "caution":
        return f"Read it with care: {why}." if why else f"Read it with care (moderation margin {margin:.2f})."
    return f"Moderation label '{label}' (margin {margin:.2f})."


_UNMODERATED = Verdict(
    label="error", action="withhold", scores={}, margin=0.0, reason=verdict_reason("error", "withhold", 0.0)
)


def _section_verdict(
    plan: SectionPlan, completions: dict[str, Completion], verdicts: dict[str, Verdict]
) -> Verdict | None:
    """The most severe verdict among the section's answered units; unmoderated text fails closed."""
    found = []
    for u in plan.units:
        c = completions.get(u.request_id)
        if c is not None and c.finish_reason != "error":
            found.append(verdicts.get(u.request_id, _UNMODERATED))
    return max(found, key=lambda v: _ACTION[v.action]) if found else None


def _checked_groups(
    plan: SectionPlan,
    completions: dict[str, Completion],
    encode: Encode | None,
    facts: list[FactRef] | None,
    warnings: list[str],
    dropped: list[DroppedClaim],
) -> tuple[dict[str, list[tuple[UnitPlan, Checked]]], int]:
    """Every unit's answer checked, grouped by candidate group; and how many generations failed."""
    failed = 0
    groups: dict[str, list[tuple[UnitPlan, Checked]]] = {}
    for u in plan.units:
        c = completions.get(u.request_id)
        if c is None or c.finish_reason == "error":
            failed += 1
            why = c.error if c else "no completion returned"
            dropped.append(DroppedClaim(request_id=u.request_id, text="", reason=f"generation failed: {why}"))
            continue
        checked = check_unit(u, c, encode, facts)
        if checked.cut:
            warnings.append(
                f"{plan.title}: an answer hit the model's token limit; cut at its last full sentence"
            )
        groups.setdefault(u.group or u.request_id, []).append((u, checked))
    return groups, failed


def _model_paragraph(
    plan: SectionPlan, groups: dict[str, list[tuple[UnitPlan, Checked]]], dropped: list[DroppedClaim]
) -> tuple[Paragraph, list[str]]:
    """The best-supported candidate of each group, minus restatements of what the section says."""
    model = Paragraph(text="", citations=[], cited=False)
    sentences: list[str] = []
    stated = " ".join(p.text for p in plan.lead + plan.tail)
    for items in groups.values():
        passing = [(u, ch) for u, ch in items if ch.sentences]
        if not passing:  # every candidate failed: the audit lists why
            dropped += [d for _, ch in items for d in ch.dropped]
            continue
        unit, checked = max(passing, key=lambda uc: max(uc[1].support))  # best supported candidate
        keep = []
        for sentence in checked.sentences:
            plain = CITATION_MARKER.sub("", sentence)
            seen = [text for text in [stated, *sentences] if text]
            if max((lexical_support(plain, text)[0] for text in seen), default=0.0) >= REDUNDANT:
                reason = "repeats what the section already states"
                dropped.append(DroppedClaim(request_id=unit.request_id, text=plain, reason=reason))
                continue
            keep.append(sentence)
        if not keep:
            continue
        sentences += keep
        model.citations += [n for n in checked.citations if n not in model.citations]
        model.attributed += [n for n in checked.attributed if n not in model.attributed]
        model.invalid_citations += checked.invalid
        model.numbers_verified += checked.numbers_verified
        model.sentences += len(keep)
        model.supported_sentences += len(keep) - checked.attributed_sentences
    return model, sentences


def assemble_section(
    plan: SectionPlan,
    completions: dict[str, Completion],
    verdicts: dict[str, Verdict],
    warnings: list[str],
    encode: Encode | None = None,
    facts: list[FactRef] | None = None,
) -> SectionReport:
    base = dict(key=plan.key, title=plan.title, sources=plan.sources)
    verdict = _section_verdict(plan, completions, verdicts)
    if verdict is not None and verdict.action == "withhold":
        return SectionReport(**base, status="withheld", paragraphs=[], verdict=verdict, note=verdict.reason)
    dropped: list[DroppedClaim] = []
    groups, failed = _checked_groups(plan, completions, encode, facts, warnings, dropped)
    model, sentences = _model_paragraph(plan, groups, dropped)
    paragraphs = list(plan.lead)
    if sentences:
        model.text = " ".join(sentences)
        model.cited = bool(model.citations)
        paragraphs.append(model)
    paragraphs += plan.tail
    if not paragraphs:
        if plan.units and failed == len(plan.units):
            note = f"Generation failed: {dropped[0].reason.removeprefix('generation failed: ')}"
            return SectionReport(
                **base, status="failed", paragraphs=[], verdict=verdict, note=note, dropped=dropped
            )
        note = plan.note or (
            "No sentence the model wrote passed the checks (support, numbers, echo), so nothing is shown; "
            "see the audit."
            if plan.units
            else "Nothing to report for this section."
        )
        return SectionReport(
            **base, status="published", paragraphs=[], verdict=verdict, note=note, dropped=dropped
        )
    status = "caution" if verdict is not None and verdict.action == "caution" else "published"
    return SectionReport(
        **base,
        status=status,
        paragraphs=paragraphs,
        verdict=verdict,
        note=verdict.reason if status == "caution" and verdict else "",
        dropped=dropped,
    )


def assemble_report(
    ctx: TickerContext,
    completions: dict[str, Completion],
    verdicts: dict[str, Verdict],
    run_id: str,
    model: str,
    encode: Encode | None = None,
    generated_at: str | None = None,
) -> Report:
    """`generated_at` (UTC, ISO) is recorded by the publish task so an audit re-renders byte for byte."""
    warnings = list(ctx.warnings)
    refs = fact_refs(ctx.facts)
    sections = [assemble_section(p, completions, verdicts, warnings, encode, refs) for p in ctx.sections]
    shown = [s.status for s in sections if s.status != "failed"] or ["failed"]
    worst = max(shown, key=_SEVERITY.__getitem__)
    return Report(
        ticker=ctx.ticker,
        company=ctx.company,
        cik=ctx.cik,
        as_of=ctx.as_of,
        run_id=run_id,
        generated_at=generated_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model=model,
        status=worst,
        sections=sections,
        facts=ctx.facts,
        charts=financial_charts(ctx.facts, ctx.ticker),
        sources=ctx.sources,
        warnings=warnings,
        dropped_inputs=ctx.dropped,
    )
