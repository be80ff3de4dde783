"""How well does moderation catch what it must, and leave finance text alone?

    python bench/moderation.py [--preset smollm2-135m] [--set bench/moderation_set.jsonl]

The labelled set (`bench/moderation_set.jsonl`, 68 sentences): 36 real sentences from the
shipped filings, news and Wikipedia (gold `casual`, many with alarming words: lawsuits, fraud,
attacks, trade war, death) and 32 written for the set: abusive, self-harm, violent and
prompt-injection sentences (8 each). Gold labels follow OpenChatKit's scheme: abuse ->
`needs caution`; self-harm, violence, injection -> `needs intervention`.

Each check runs alone and combined as the pipeline runs them; for each we print a confusion
matrix (gold category x predicted label) and, under the default policy, how many harmful
sentences are withheld and how many finance sentences are withheld or bannered. Last line (DESIGN
convention): ours = combined checks, baseline = the OpenChatKit label scoring alone on the same
model with its raw labels deciding, both as balanced accuracy of "withhold" (mean of harmful
recall and finance specificity). The `label-scoring` row is the same judge as the pipeline uses it:
a chat model's labels are advisory — recorded in the audit, deciding nothing, so they can neither
withhold nor put a banner on a section (models/screens.py says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _table(rows: list[dict], predicted: list[str], labels: list[str]) -> str:
    cats = list(dict.fromkeys(r["category"] for r in rows))
    counts = Counter((r["category"], p) for r, p in zip(rows, predicted, strict=True))
    width = max(len(c) for c in cats) + 2
    head = "".ljust(width) + " ".join(lab[:12].rjust(12) for lab in labels)
    lines = [head] + [
        c.ljust(width) + " ".join(str(counts[(c, lab)]).rjust(12) for lab in labels) for c in cats
    ]
    return "\n".join(lines)


def _score(rows: list[dict], actions: list[str]) -> dict:
    harmful = [a for r, a in zip(rows, actions, strict=True) if r["category"] != "finance"]
    finance = [a for r, a in zip(rows, actions, strict=True) if r["category"] == "finance"]
    per_cat = {}
    for cat in dict.fromkeys(r["category"] for r in rows):
        acts = [a for r, a in zip(rows, actions, strict=True) if r["category"] == cat]
        per_cat[cat] = {a: acts.count(a) for a in ("publish", "caution", "withhold")}
    recall = sum(a == "withhold" for a in harmful) / len(harmful)
    specificity = sum(a != "withhold" for a in finance) / len(finance)
    return {
        "harmful_withheld": recall,
        "finance_not_withheld": specificity,
        "finance_published_clean": sum(a == "publish" for a in finance) / len(finance),
        "balanced_accuracy": (recall + specificity) / 2,
        "actions": per_cat,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smollm2-135m", help="moderation model preset")
    parser.add_argument("--set", type=Path, default=ROOT / "bench" / "moderation_set.jsonl")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    args = parser.parse_args()

    from models.engine import load_engine
    from models.moderation import DEFAULT_POLICY, ERROR_LABEL, LABELS, decide, moderate
    from models.screens import CheckVerdict, Screening, make_checks, screen

    rows = [json.loads(line) for line in args.set.read_text().splitlines() if line.strip()]
    texts = [r["text"] for r in rows]
    t0 = time.perf_counter()
    engine = load_engine(args.preset, cache_dir=args.models_dir)
    load_s = time.perf_counter() - t0
    labels = [*LABELS, ERROR_LABEL]
    results, seconds = {}, {}
    # Baseline: OpenChatKit's scheme as-is, the judge's raw labels decide (models.moderation).
    t = time.perf_counter()
    raw = [Screening((CheckVerdict("judge", r.label),)) for r in moderate(engine, texts)]
    seconds["label-scoring (raw judge)"] = time.perf_counter() - t
    per_check = {"label-scoring (raw judge)": raw}
    for name in ("label-scoring", "injection", "profanity"):
        t = time.perf_counter()
        per_check[name] = screen(texts, make_checks([name], lambda: engine))
        seconds[name] = time.perf_counter() - t
    # Combined = what the pipeline does with its default checks: the most severe label wins.
    names = ("label-scoring", "injection", "profanity")
    combined = [Screening(tuple(per_check[n][i].verdicts[0] for n in names)) for i in range(len(texts))]
    for name, screenings in [*per_check.items(), ("combined", combined)]:
        predicted = [s.label for s in screenings]
        actions = [decide(label, DEFAULT_POLICY) for label in predicted]
        results[name] = _score(rows, actions)
        print(f"\n== {name}  (rows: gold category, columns: predicted label)")
        print(_table(rows, predicted, labels))
        print("actions under the default policy:", json.dumps(results[name]["actions"]))
    gold_hits = sum(
        s.label == r["gold"] for s, r in zip(combined, rows, strict=True)
    )  # exact label agreement, for reference
    summary = {
        "name": "moderation",
        "ours": round(results["combined"]["balanced_accuracy"], 3),
        "baseline": round(results["label-scoring (raw judge)"]["balanced_accuracy"], 3),
        "unit": "balanced accuracy of withhold (harmful recall, finance specificity)",
        "ratio": round(
            results["combined"]["balanced_accuracy"]
            / max(results["label-scoring (raw judge)"]["balanced_accuracy"], 1e-9),
            3,
        ),
        "checks": {k: {m: round(v, 3) for m, v in r.items() if m != "actions"} for k, r in results.items()},
        "combined_exact_label_agreement": round(gold_hits / len(rows), 3),
        "setup": {
            "model": args.preset,
            "sentences": len(rows),
            "categories": dict(Counter(r["category"] for r in rows)),
            "policy": DEFAULT_POLICY,
            "load_s": round(load_s, 1),
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "device": engine.stats.device,
            "dtype": engine.stats.dtype,
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
