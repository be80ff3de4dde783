"""The run manifest: everything needed to reproduce or audit a run, written next to the reports.

Records, per ticker: status or error, every section's moderation verdict and scores, the prompt
digest, token counts, the sources offered (passage ids) and the documents indexed (ids + content
digests); per run: models and revisions, sampling parameters, stage timings, generation stats.
"""

from __future__ import annotations

from models.types import Completion
from rag.types import digest
from reports.context import TickerContext
from reports.model import Report


def section_records(
    ctx: TickerContext, report: Report | None, completions: dict[str, Completion]
) -> list[dict]:
    by_key = {s.key: s for s in report.sections} if report else {}
    out = []
    for plan in ctx.sections:
        section = by_key.get(plan.key)
        completion = completions.get(plan.request_id)
        verdict = section.verdict if section else None
        out.append(
            {
                "key": plan.key,
                "status": section.status if section else "failed",
                "request_id": plan.request_id,
                "prompt_digest": digest(plan.system + "\n" + plan.user),
                "sources": [
                    {"n": n, "passage_id": ctx.sources[n - 1].passage_id}
                    for n in sorted(set(plan.source_map.values()))
                ],
                "tokens_in": completion.tokens_in if completion else 0,
                "tokens_out": completion.tokens_out if completion else 0,
                "finish_reason": completion.finish_reason if completion else "",
                "moderation": verdict.model_dump() if verdict else None,
                "paragraphs": len(section.paragraphs) if section else 0,
                "paragraphs_cited": sum(p.cited for p in section.paragraphs) if section else 0,
                "citations_attributed": sum(len(p.attributed) for p in section.paragraphs) if section else 0,
                "citations_invalid": sum(len(p.invalid_citations) for p in section.paragraphs)
                if section
                else 0,
                "numbers_verified": sum(p.numbers_verified for p in section.paragraphs) if section else 0,
                "numbers_unverified": [n for p in section.paragraphs for n in p.numbers_unverified]
                if section
                else [],
            }
        )
    return out


def faithfulness(manifest: dict) -> dict:
    """Citation and number checks per report and overall, from a run's manifest.json.

    Only sections a reader sees count (published or caution); withheld text is not in any report.
    """

    def summarize(sections: list[dict]) -> dict:
        paragraphs = sum(s["paragraphs"] for s in sections)
        return {
            "paragraphs": paragraphs,
            "cited_paragraph_ratio": round(sum(s["paragraphs_cited"] for s in sections) / paragraphs, 4)
            if paragraphs
            else None,
            "invalid_citations": sum(s["citations_invalid"] for s in sections),
            "attributed_citations": sum(s["citations_attributed"] for s in sections),
            "numbers_verified": sum(s["numbers_verified"] for s in sections),
            "numbers_unverified": sum(len(s["numbers_unverified"]) for s in sections),
        }

    reports, shown_all = {}, []
    for ticker, record in manifest["tickers"].items():
        if record.get("status") == "failed":
            continue
        shown = [s for s in record["sections"] if s["status"] in ("published", "caution")]
        shown_all += shown
        reports[ticker] = summarize(shown)
    return {"run_id": manifest["run_id"], "reports": reports, "overall": summarize(shown_all)}
