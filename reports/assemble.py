"""Context + completions + moderation verdicts -> a `Report` ready to render.

Withheld sections keep no model text at all (not even hidden), so nothing moderation stopped can
reach a published file. A section whose generation failed says why instead of leaving a gap.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from models.types import Completion
from reports.charts import financial_charts
from reports.checks import Encode, check_section
from reports.context import TickerContext
from reports.model import Report, SectionReport, Verdict
from reports.numbers import reference_values
from reports.sanitize import sanitize_model_text

_SEVERITY = {"published": 0, "caution": 1, "withheld": 2, "failed": 3}


def drop_unfinished_sentence(text: str) -> str:
    """Text cut by the token limit: keep it up to the last sentence end (and its citation markers)."""
    ends = list(re.finditer(r"[.!?](?=\s|\[|$)(?:\s*\[[\d,\s\-–]+\])*", text))
    return text[: ends[-1].end()].rstrip() if ends else ""


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


def assemble_report(
    ctx: TickerContext,
    completions: dict[str, Completion],
    verdicts: dict[str, Verdict],
    run_id: str,
    model: str,
    encode: Encode | None = None,
) -> Report:
    sections: list[SectionReport] = []
    warnings = list(ctx.warnings)
    fact_refs = [  # every exact XBRL figure, whichever section mentions it
        (v, row.unit == "%") for row in (ctx.facts.rows if ctx.facts else []) for v in row.values.values()
        if v is not None
    ]
    for plan in ctx.sections:
        base = dict(key=plan.key, title=plan.title, sources=sorted(set(plan.source_map.values())))
        completion = completions.get(plan.request_id)
        verdict = verdicts.get(plan.request_id)
        if not plan.source_map:
            sections.append(
                SectionReport(
                    **base,
                    status="failed",
                    paragraphs=[],
                    verdict=None,
                    note="No sources were retrieved for this section, so nothing was written.",
                )
            )
            continue
        if completion is None or completion.finish_reason == "error":
            why = completion.error if completion else "no completion returned"
            sections.append(
                SectionReport(
                    **base, status="failed", paragraphs=[], verdict=verdict, note=f"Generation failed: {why}"
                )
            )
            continue
        if verdict is None:  # fail closed: unmoderated text is never published
            verdict = Verdict(
                label="error",
                action="withhold",
                scores={},
                margin=0.0,
                reason=verdict_reason("error", "withhold", 0.0),
            )
        if verdict.action == "withhold":
            sections.append(
                SectionReport(**base, status="withheld", paragraphs=[], verdict=verdict, note=verdict.reason)
            )
            continue
        text = sanitize_model_text(completion.text)
        if completion.finish_reason == "length":
            text = drop_unfinished_sentence(text)
            warnings.append(f"{plan.title}: the model hit its token limit; cut at the last full sentence")
        refs = reference_values(fact_refs, plan.source_texts.values())
        paragraphs = check_section(text, plan.source_map, plan.source_texts, encode, number_refs=refs)
        if not paragraphs:
            sections.append(
                SectionReport(
                    **base,
                    status="failed",
                    paragraphs=[],
                    verdict=verdict,
                    note=(
                        "The model's answer had no complete sentence before its token limit, "
                        "so nothing could be published."
                        if completion.text.strip() and completion.finish_reason == "length"
                        else "The model returned no text for this section."
                    ),
                )
            )
            continue
        status = "caution" if verdict.action == "caution" else "published"
        sections.append(
            SectionReport(
                **base,
                status=status,
                paragraphs=paragraphs,
                verdict=verdict,
                note=verdict.reason if status == "caution" else "",
            )
        )
    shown = [s.status for s in sections if s.status != "failed"] or ["failed"]
    worst = max(shown, key=_SEVERITY.__getitem__)
    return Report(
        ticker=ctx.ticker,
        company=ctx.company,
        cik=ctx.cik,
        as_of=ctx.as_of,
        run_id=run_id,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model=model,
        status=worst,
        sections=sections,
        facts=ctx.facts,
        charts=financial_charts(ctx.facts, ctx.ticker),
        sources=ctx.sources,
        warnings=warnings,
        dropped_inputs=ctx.dropped,
    )
