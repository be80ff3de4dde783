"""Does the shipped chat model pay as a re-scorer? Production ranking vs the same + a yes/no judge.

    python bench/rescore_judge.py [--questions Q.jsonl --docs DIR] [--top 10]

Issue 12 asks for a re-scoring stage "chosen by measurement": no cross-encoder ships its weights
offline, so the candidates are a heavier bi-encoder (not installable with clear provenance) and the
chat model as a judge. This measures the judge, side by side in one run on the same candidates:
for every question, the production ranking's top `--top` pages (rag/evaluate.py `best_passages`,
each page as its best passage) are scored by the configured chat preset as
    log P("Yes") - log P("No")  after  "<passage> Question: … Does the passage answer it?"
(models/scoring.py, the moderation label scorer's code path), then re-ranked by the judge alone and
by the production score plus the judge's z-score. Printed: hit@1/hit@5 of each ordering and the
judge's cost (pairs/s, seconds per question). Last line (DESIGN convention): ours = hit@5 of the
best judge ordering, baseline = the production ranking's hit@5, ratio = ours / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEV = ROOT.parent / "shared" / "data" / "financebench-dev"

PROMPT = (
    "Passage from {doc}, page {page}:\n{text}\n\nQuestion: {question}\n\n"
    "Does the passage contain the information needed to answer the question? Answer Yes or No."
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=Path, default=DEV / "questions.jsonl")
    ap.add_argument("--docs", type=Path, default=DEV)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--preset", default="smollm2-135m")
    args = ap.parse_args()

    from flows.resources import shared_embedder
    from flows.settings import Settings
    from models.engine import load_engine
    from rag import evaluate as ev
    from rag.chunking import chunk_document
    from rag.embedding import CachedEncoder
    from rag.query import understand
    from rag.sources.pdf import parse_pdf, pdf_meta

    settings = Settings()
    embedder = CachedEncoder(
        shared_embedder(settings.embedder), settings.var_dir / "cache" / "eval-embeddings"
    )
    questions, _ = ev.load_questions(args.questions)
    paths = ev.find_pdfs(args.docs)
    docs = {p.stem: parse_pdf(p) for p in paths}
    known = {p.stem: ev.routing_names(p, docs[p.stem]) for p in paths}
    periods = {p.stem: pdf_meta(p).period for p in paths}
    corpus = ev._build(docs, {n: chunk_document(d) for n, d in docs.items()}, embedder)
    engine = load_engine(args.preset, cache_dir=settings.models_dir)
    tok = engine.tokenizer

    orders: dict[str, list[int | None]] = {"production": [], "judge": [], "production+judge": []}
    pairs_total, judge_seconds = 0, 0.0
    for q in questions:
        if q.doc not in docs:
            continue
        intent = understand(q.text, known)
        vec = embedder.encode([intent.text])[0]
        routed = set(intent.companies) or None
        cands = ev.best_passages(corpus, vec, intent, routed, periods, k=args.top)
        keys = [(p.doc_id.split(":", 1)[-1].removesuffix(".pdf"), p.page) for p in cands]
        prompts = []
        for p in cands:
            user = PROMPT.format(doc=p.title, page=p.page + 1, text=p.text, question=intent.text)
            prompts.append(
                tok.apply_chat_template(
                    [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
                )
            )
        t = time.perf_counter()
        lp = engine.loglikelihood([(c, a) for c in prompts for a in ("Yes", "No")])
        judge_seconds += time.perf_counter() - t
        pairs_total += len(prompts)
        judge = np.array([sum(lp[2 * i]) - sum(lp[2 * i + 1]) for i in range(len(prompts))])
        base = -np.arange(len(cands), dtype=float)  # production order (its scores are not returned)
        z = (judge - judge.mean()) / (judge.std() + 1e-9)
        for name, score in (
            ("production", base),
            ("judge", judge),
            ("production+judge", base / len(cands) + z),
        ):
            ranked = [keys[i] for i in np.argsort(-score, kind="stable")]
            orders[name].append(ev.first_hit(ranked, q.gold))
    rates = {name: ev.hit_rates(r, (1, 5)) for name, r in orders.items()}
    for name, r in rates.items():
        print(json.dumps({"ordering": name, "hit@1": round(r[1], 3), "hit@5": round(r[5], 3)}))
    n = len(orders["production"])
    best = max(("judge", "production+judge"), key=lambda k: (rates[k][5], rates[k][1]))
    print(
        json.dumps(
            {
                "name": "rescore_judge",
                "ours": round(rates[best][5], 3),
                "baseline": round(rates["production"][5], 3),
                "unit": "hit@5",
                "ratio": round(rates[best][5] / max(rates["production"][5], 1e-9), 3),
                "ordering": best,
                "hit@1": {k: round(v[1], 3) for k, v in rates.items()},
                "questions": n,
                "candidates": args.top,
                "pairs_per_s": round(pairs_total / max(judge_seconds, 1e-9), 2),
                "judge_seconds_per_question": round(judge_seconds / max(n, 1), 2),
                "model": args.preset,
                "device": engine.device,
            }
        )
    )


if __name__ == "__main__":
    main()
