"""How grounded a run's published reports are, read independently of the pipeline's own counters.

    python bench/grounding.py var/reports/latest [--baseline OTHER_RUN_DIR]

Why a separate reader: the trust line is computed by the same code that decides what to
publish, so it cannot catch its own blind spots. This script re-reads what a reader sees (the
published Markdown) next to what the model was given (audit/requests.jsonl) and counts, per run:

* figures in model-written prose whose digits appear in none of that section's prompts;
* generation answers cut at the token limit, failed sections, caution banners;
* law-firm solicitations / investor-alert spam among the news a report shows (reports.stories);
* prompt echoes in published text (reports.echo).

It reads both the old layout (one request per section, every paragraph model-written) and the
composed one (paragraphs marked "_(model-written)_", several units per section), so a run from
before and after the change can be compared side by side. Last line: JSON with name, ours,
baseline, unit, ratio (figures not in sources; lower is better, so ratio = baseline / ours).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.echo import is_echo  # noqa: E402
from reports.stories import spam_reason  # noqa: E402

_DIGITS = re.compile(r"\d(?:[\d,.]*\d)?")
_MARKER = re.compile(r"\[~?\d+(?:,\s*\d+)*\]")
_SECTION = re.compile(r"^## (.+?)(?: \((?:caution|withheld|failed)\))?$", re.M)


def _sections(md: str) -> dict[str, str]:
    """Section title -> its text, up to the facts table / next section (Sources and Audit excluded)."""
    out, parts = {}, _SECTION.split(md)
    for title, body in zip(parts[1::2], parts[2::2], strict=False):
        if title in ("Sources", "Audit", "Warnings", "Financial data"):
            continue
        out[title] = body.split("\n| Line |")[0]
    return out


def _model_prose(body: str, composed: bool) -> list[str]:
    paras = [p.strip() for p in body.split("\n\n") if p.strip()]
    paras = [p for p in paras if not p.startswith((">", "|", "!", "Source:", "###"))]
    if composed:
        paras = [p for p in paras if "_(model-written)_" in p]
    return [_MARKER.sub("", p.split(" _(")[0]) for p in paras]


def measure(run_dir: Path) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    requests = [
        json.loads(line) for line in (run_dir / "audit" / "requests.jsonl").read_text().splitlines() if line
    ]
    completions = [
        json.loads(line)
        for line in (run_dir / "audit" / "completions.jsonl").read_text().splitlines()
        if line
    ]
    composed = any(r["request_id"].count(":") >= 3 for r in requests)
    prompts: dict[tuple[str, str], str] = {}
    for r in requests:
        parts = r["request_id"].split(":")
        prompts[(parts[-3 if composed else -2], parts[-2 if composed else -1])] = (
            prompts.get((parts[-3 if composed else -2], parts[-2 if composed else -1]), "") + "\n" + r["user"]
        )
    out = {
        "figures": 0,
        "figures_not_in_sources": 0,
        "examples": [],
        "echoes": 0,
        "sections": 0,
        "failed": 0,
        "caution": 0,
        "answers": len(completions),
        "cut_at_limit": sum(c["finish_reason"] == "length" for c in completions),
        "news_shown": 0,
        "solicitations_shown": 0,
    }
    for ticker, rec in manifest["tickers"].items():
        if rec.get("status") == "failed" or not (run_dir / f"{ticker}.md").is_file():
            continue
        md = (run_dir / f"{ticker}.md").read_text()
        bodies = _sections(md)
        for sec in rec["sections"]:
            out["sections"] += 1
            out["failed"] += sec["status"] == "failed"
            out["caution"] += sec["status"] == "caution"
        ctx = json.loads((run_dir / "audit" / f"context-{ticker}.json").read_text())
        titles = {s["key"]: s["title"] for s in ctx["sections"]}
        for plan in ctx["sections"]:
            body = bodies.get(plan["title"], "")
            prompt = prompts.get((ticker, plan["key"]), "")
            allowed = set(_DIGITS.findall(prompt))
            for para in _model_prose(body, composed):
                if is_echo(para, [prompt]) and ("Task:" in para or "Sources:" in para or " filed " in para):
                    out["echoes"] += 1
                for fig in _DIGITS.findall(para):
                    out["figures"] += 1
                    if fig not in allowed and fig.replace(",", "") not in {
                        a.replace(",", "") for a in allowed
                    }:
                        out["figures_not_in_sources"] += 1
                        if len(out["examples"]) < 12:
                            out["examples"].append(f"{ticker} {titles[plan['key']]}: {fig}")
            if plan["key"] == "developments":
                used = plan.get("sources") or sorted(set(plan.get("source_map", {}).values()))
                news = [ctx["sources"][n - 1] for n in used if ctx["sources"][n - 1]["corpus"] == "news"]
                out["news_shown"] += len(news)
                out["solicitations_shown"] += sum(bool(spam_reason(s["title"])) for s in news)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--baseline", type=Path, help="an earlier run folder to compare with")
    args = ap.parse_args()
    ours = measure(args.run_dir)
    print(json.dumps({"run": str(args.run_dir), **ours}, indent=1))
    base = measure(args.baseline) if args.baseline else None
    if base:
        print(json.dumps({"run": str(args.baseline), **base}, indent=1))
    b = base["figures_not_in_sources"] if base else None
    o = ours["figures_not_in_sources"]
    print(
        json.dumps(
            {
                "name": "figures_not_in_sources",
                "ours": o,
                "baseline": b,
                "unit": "figures in model prose",
                "ratio": (b / o if o else (float("inf") if b else 1.0)) if b is not None else None,
                "setup": {"ours": str(args.run_dir), "baseline": str(args.baseline) if base else None},
            }
        )
    )


if __name__ == "__main__":
    main()
