"""`researchdesk eval ...`: the evaluation commands, which read their own inputs (a run folder,
FinanceBench-format questions and PDFs) rather than the data folder.

    researchdesk eval faithfulness var/reports/latest [--json]
    researchdesk eval retrieval --questions Q.jsonl --docs DIR [--json]
    researchdesk eval answers --questions Q.jsonl --docs DIR [--json]

Each prints a human table and, with `--json`, one JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _eval_faithfulness(run_dir: Path, as_json: bool) -> int:
    from rag.errors import ConfigError
    from reports.audit import faithfulness
    from reports.manifest import load_manifest

    path = run_dir / "manifest.json"
    try:
        result = faithfulness(load_manifest(path))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found: pass a run folder such as var/reports/latest") from exc
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a researchdesk run manifest ({exc})") from exc

    def line(name: str, r: dict) -> str:
        ratio = "n/a" if r["cited_paragraph_ratio"] is None else f"{100 * r['cited_paragraph_ratio']:.0f}%"
        sup = r.get("supported_sentence_ratio")
        supported = "n/a" if sup is None else f"{100 * sup:.0f}%"
        return (
            f"  {name:8} paragraphs {r['paragraphs']:3}  cited {ratio:>4}  model sentences "
            f"{r.get('model_sentences', 0):3} supported {supported:>4}  invalid citations "
            f"{r['invalid_citations']}  numbers verified {r['numbers_verified']}, "
            f"unverified {r['numbers_unverified']}  cut at limit {r.get('cut_at_limit', 0)}  "
            f"sentences not published {r.get('sentences_dropped', 0)}"
        )

    print(f"faithfulness of run {result['run_id']}")
    for ticker, r in result["reports"].items():
        print(line(ticker, r))
    print(line("overall", result["overall"]))
    if as_json:
        print(json.dumps(result))
    return 0


def _eval_retrieval(args: argparse.Namespace) -> int:
    """Ingest the PDFs into a throw-away index with the configured embedder and print hit@k per stage."""
    import dataclasses
    from functools import partial

    from pydantic import ValidationError

    from flows.resources import shared_embedder
    from flows.settings import Settings
    from rag.embedding import CachedEncoder
    from rag.errors import ConfigError
    from rag.evaluate import MODES, evaluate_retrieval
    from rag.hybrid import DEFAULT_WEIGHTS

    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc.errors()[0]['msg']}") from exc
    chosen = {
        "lexical": args.lexical_weight,
        "statement": args.statement_weight,
        "period": args.period_weight,
    }
    weights = dataclasses.replace(DEFAULT_WEIGHTS, **{k: v for k, v in chosen.items() if v is not None})
    progress = partial(print, file=sys.stderr)  # progress on stderr keeps stdout's last line the JSON
    # Vectors are cached by text under var/cache: a second evaluation of the same PDFs embeds nothing.
    cache = settings.var_dir / "cache" / "eval-embeddings"
    embedder = CachedEncoder(shared_embedder(settings.embedder), cache)
    result = evaluate_retrieval(args.questions, args.docs, embedder, progress=progress, weights=weights)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"retrieval: {result.questions} questions ({result.skipped} skipped), {result.documents} documents, "
        f"{result.passages} passages, {result.model}, {result.seconds:.1f}s"
    )
    last = list(result.stages)[-1]
    for q in result.per_question:
        ranks = "  ".join(f"{m} {q[last][m] or '-':>2}" for m in MODES)
        print(f"  {q['id']:24} {q['doc']:22} page {','.join(map(str, q['pages'])):8} rank {ranks}")
    ks = list(next(iter(result.stages.values())))
    print(f"  {'stage':12} " + " ".join(f"{k + ' ' + m:>15}" for k in ks for m in MODES))
    for stage, hits in result.stages.items():
        print(f"  {stage:12} " + " ".join(f"{hits[k][m]:15.2f}" for k in ks for m in MODES))
    print(f"  {last} (the production ranking):")
    print(f"  {'':8} {'per_doc':>8} {'shared':>8}")
    for key, row in result.hits.items():
        print(f"  {key:8} {row['per_doc']:8.2f} {row['shared']:8.2f}")
    per_question = result.summary()["seconds_per_question"] * 1000
    print(f"  weights: {result.weights}; search {per_question:.0f} ms/question")
    if args.json:
        print(json.dumps(result.summary()))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """`researchdesk eval faithfulness|retrieval|answers`."""
    if args.what == "retrieval":
        return _eval_retrieval(args)
    if args.what == "answers":
        from flows.ask import eval_answers

        return eval_answers(args.questions, args.docs, args.json)
    return _eval_faithfulness(args.run_dir, args.json)
