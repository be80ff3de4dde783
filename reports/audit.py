"""The run manifest: everything needed to reproduce or audit a run, written next to the reports.

Records, per ticker: status or error, every section's generation units (prompt digest, tokens,
finish reason, moderation verdict and scores), the sentences the checks did not publish and why,
the sources offered (passage ids) and the documents indexed (ids + content digests); per run:
models and revisions, sampling parameters, stage timings, generation stats.
"""

from __future__ import annotations

from models.types import Completion
from rag.types import digest
from reports.context import TickerContext
from reports.manifest import RunManifest
from reports.model import Report


def section_records(
    ctx: TickerContext, report: Report | None, completions: dict[str, Completion]
) -> list[dict]:
    by_key = {s.key: s for s in report.sections} if report else {}
    out = []
    for plan in ctx.sections:
        section = by_key.get(plan.key)
        paras = section.paragraphs if section else []
        model = [p for p in paras if p.origin == "model"]
        units = []
        for u in plan.units:
            c = completions.get(u.request_id)
            units.append(
                {
                    "request_id": u.request_id,
                    "mode": u.mode,
                    "prompt_digest": digest(u.system + "\n" + u.user),
                    "sources": sorted(set(u.source_map.values())),
                    "tokens_in": c.tokens_in if c else 0,
                    "tokens_out": c.tokens_out if c else 0,
                    "finish_reason": c.finish_reason if c else "",
                }
            )
        dropped = [d.model_dump() for d in section.dropped] if section else []
        out.append(
            {
                "key": plan.key,
                "status": section.status if section else "failed",
                "note": section.note if section else "",
                "units": units,
                "sources": [
                    {"n": n, "passage_id": ctx.sources[n - 1].passage_id} for n in plan.sources
                ],
                "tokens_in": sum(u["tokens_in"] for u in units),
                "tokens_out": sum(u["tokens_out"] for u in units),
                "cut_at_limit": sum(u["finish_reason"] == "length" for u in units),
                "moderation": section.verdict.model_dump() if section and section.verdict else None,
                "paragraphs": len(paras),
                "paragraphs_code": len(paras) - len(model),
                "paragraphs_cited": sum(p.cited for p in paras),
                "model_sentences": sum(p.sentences for p in model),
                "model_sentences_supported": sum(p.supported_sentences for p in model),
                "citations_attributed": sum(len(p.attributed) for p in paras),
                "citations_invalid": sum(len(p.invalid_citations) for p in paras),
                "numbers_verified": sum(p.numbers_verified for p in paras),
                "numbers_unverified": [n for p in paras for n in p.numbers_unverified + p.numbers_mismatched],
                "dropped": dropped,
            }
        )
    return out


def faithfulness(manifest: RunManifest | dict) -> dict:
    """Citation, support and number checks per report and overall, from a run's manifest.json
    (reports/manifest.py `load_manifest`, or its parsed JSON; raises ValueError if not a manifest).

    Only sections a reader sees count (published or caution); withheld text is not in any report.
    A paragraph counts as cited only when its citations are the model's own (or code's, by
    construction) and supported; similarity attributions never count.
    """

    def summarize(sections: list[dict]) -> dict:
        paragraphs = sum(s["paragraphs"] for s in sections)
        sentences = sum(s.get("model_sentences", 0) for s in sections)
        dropped = [d for s in sections for d in s.get("dropped", [])]
        return {
            "paragraphs": paragraphs,
            "cited_paragraph_ratio": round(sum(s["paragraphs_cited"] for s in sections) / paragraphs, 4)
            if paragraphs
            else None,
            "model_sentences": sentences,
            "supported_sentence_ratio": round(
                sum(s.get("model_sentences_supported", 0) for s in sections) / sentences, 4
            )
            if sentences
            else None,
            "invalid_citations": sum(s["citations_invalid"] for s in sections),
            "attributed_citations": sum(s["citations_attributed"] for s in sections),
            "numbers_verified": sum(s["numbers_verified"] for s in sections),
            "numbers_unverified": sum(len(s["numbers_unverified"]) for s in sections),
            "cut_at_limit": sum(s.get("cut_at_limit", 0) for s in sections),
            "sentences_dropped": len(dropped),
            "prompt_echoes_dropped": sum("echo" in d["reason"] or "prompt" in d["reason"] for d in dropped),
        }

    if not isinstance(manifest, RunManifest):
        manifest = RunManifest.model_validate(manifest)
    reports, shown_all = {}, []
    for ticker, record in manifest.tickers.items():
        if record.get("status") == "failed":
            continue
        shown = [s for s in record["sections"] if s["status"] in ("published", "caution")]
        shown_all += shown
        reports[ticker] = summarize(shown)
    return {"run_id": manifest.run_id, "reports": reports, "overall": summarize(shown_all)}
