"""A 500-ticker nightly under load: the fake fast engine, the real retrieval, checks and rendering.

    python bench/load.py [--tickers 500] [--data data] [--work DIR] [--as-of 2026-04-01] [--every 50]
    python bench/load.py --tickers 50 --index-tickers 500 --work DIR   # 50 reports over a 500-ticker index

Why: the shipped sample has 5 companies; a production watchlist has hundreds. This runs
`flows.reports.nightly_reports` over N tickers at that scale and says whether it completes, how
fast (reports/min, per-ticker p50/p95) and whether memory stays flat per ticker.

How the N tickers' inputs are synthesised from the shipped filings (in a child process, so its
memory does not count towards the run's peak):
  1. The shipped data (`--data`) is ingested once into `<work>/base/index` by the real ingest
     (`rag.ingest.ingest`) with the tests' bag-of-words hashing embedder (`tests/fakes.py`,
     registered as "fake-hash"; 256-dim, instant), so the vectors are real vectors of the text.
  2. Synthetic ticker i (ZL0001, ZL0002, ...) is a clone of shipped company i mod 5 (the
     companies with filings in the base index, sorted: AAPL AMZN META NVDA TSLA). For each corpus
     (filings, news, wikipedia) the template's passages are copied with the same text, the same
     vector (`index_factory.reconstruct`) and the same BM25 terms; ticker -> ZLnnnn, the template
     ticker inside doc_id and url -> zlnnnn (a doc_id without it, e.g. "wikipedia:Apple Inc.",
     gets " [ZLnnnn]" appended), passage_id -> digest(ticker, old id). General Wikipedia
     articles (ticker "") are kept once. Each corpus is written by `CorpusStore.save`, which
     picks the index type for the new size exactly as ingest would (IVF above 100k vectors).
  3. The facts and risk-factor tables get the template's rows with the new ticker (risk rows'
     doc_id/url renamed as in 2, so a heading still links to its cloned passage).
  4. `<work>/data/sec/company_tickers.json.gz` is the shipped SEC list plus one entry per
     synthetic ticker (CIK 9000000+i, the template's company name), so ticker validation and
     the company-name queries behave as for the template.
Then the nightly runs in this process with ingest skipped (`ingest=False`, `resume=False`),
RESEARCHDESK_ENGINE=fake (tests/fakes.py FakeEngine: cites its sources' first sentences),
RESEARCHDESK_EMBEDDER=fake-hash, the thread task runner and the in-process Prefect API.

Measured per ticker, by wrapping the flow's own stages (nothing in the flow is changed):
context = the build-context task; publish = the publish task (checks, render, write);
job share = (generation + moderation seconds of its job) / tickers in that job. RSS (psutil:
this process, and its child processes summed) is sampled every `--every` contexts and every
`--every` publishes and printed as a JSON progress line. Peak RSS is this process's ru_maxrss.
Last line (DESIGN convention 12): `ours` = reports/min over the last block of tickers (50, or
(N-1)//2 when smaller), `baseline` = the same over the first block after the first ticker (which
also loads the index: warm-up), `ratio` = ours/baseline: near 1 means no slowdown as the run goes
on, below 1 means later tickers cost more. `reports_per_min` is over the flow's own total time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PREFIX = "ZL"
FIRST_CIK = 9_000_000


# ---- synthesis (child process) ----------------------------------------------------------------


def synthetic_tickers(n: int) -> list[str]:
    return [f"{PREFIX}{i:04d}" for i in range(1, n + 1)]


def _renamed(value: str, template: str, ticker: str, suffix: bool) -> str:
    """The template ticker inside an id or file name -> the new one (lower stays lower)."""
    out = value
    for old, new in ((template.lower(), ticker.lower()), (template.upper(), ticker.upper())):
        out = re.sub(rf"(?<![A-Za-z]){re.escape(old)}(?![A-Za-z])", new, out)
    return out if out != value or not suffix else f"{value} [{ticker}]"


def _clone_rows(table, plan: list[tuple[str, str]], renames: dict[str, bool]):
    """Row positions of each template, and the cloned table (renamed columns per `renames`)."""
    import numpy as np
    import pandas as pd

    parts, positions = [], []
    for ticker, template in plan:
        rows = np.flatnonzero((table["ticker"] == template).to_numpy())
        part = table.iloc[rows].copy()
        part["ticker"] = ticker
        for column, suffix in renames.items():
            part[column] = [_renamed(str(v), template, ticker, suffix) for v in part[column]]
        parts.append(part)
        positions.append(rows)
    return np.concatenate(positions) if positions else np.zeros(0, int), pd.concat(parts, ignore_index=True)


def _clone_corpus(base: Path, index_dir: Path, corpus: str, plan: list[tuple[str, str]]) -> int:
    import numpy as np
    import pandas as pd

    from rag import index_factory
    from rag.errors import IndexNotBuiltError
    from rag.store import CorpusStore
    from rag.types import digest

    try:
        src = CorpusStore.load(base, corpus)
    except IndexNotBuiltError:
        return 0
    vectors = index_factory.reconstruct(src.index, src.spec, src.ids)
    terms = np.asarray(src.terms, dtype=object)
    general = np.flatnonzero((src.table["ticker"] == "").to_numpy())
    pos, clones = _clone_rows(src.table, plan, {"doc_id": True, "url": False})
    clones["passage_id"] = [
        digest(f"{t}:{p}") for t, p in zip(clones["ticker"], clones["passage_id"], strict=True)
    ]
    table = pd.concat([src.table.iloc[general], clones], ignore_index=True)
    order = np.concatenate([general, pos])
    out = CorpusStore(index_dir / corpus, corpus, src.dim, src.embedder, src.policy)
    out.ids = np.arange(len(table), dtype=np.int64)
    index_factory.add(out.index, vectors[order], out.ids)
    out.table, out.terms, out.next_id = table, list(terms[order]), len(table)
    out.docs = {d: digest(f"{d}|{src.docs.get(d, '')}") for d in table["doc_id"].unique()}
    out.save()  # picks the index type for the new size, as ingest does
    return len(table)


def _write_companies(data: Path, out: Path, plan: list[tuple[str, str]]) -> None:
    raw = json.loads(gzip.decompress((data / "sec" / "company_tickers.json.gz").read_bytes()))
    names = {str(r["ticker"]).upper(): str(r["title"]) for r in raw.values()}
    taken = sorted({t for t, _ in plan} & names.keys())
    if taken:
        raise SystemExit(f"error: synthetic tickers {taken[:3]} are real SEC tickers; change PREFIX")
    for i, (ticker, template) in enumerate(plan, start=1):
        raw[f"synthetic-{i}"] = {"cik_str": FIRST_CIK + i, "ticker": ticker, "title": names[template]}
    (out / "sec").mkdir(parents=True, exist_ok=True)
    (out / "sec" / "company_tickers.json.gz").write_bytes(gzip.compress(json.dumps(raw).encode()))


def synthesize(data: Path, work: Path, n: int) -> dict:
    """Base ingest (once per work dir), then the N-ticker index, tables and ticker list."""
    import pandas as pd

    from rag.ingest import FACTS_FILE, RISKS_FILE, ingest
    from rag.retrieve import CORPORA
    from rag.store import CorpusStore
    from tests.fakes import HashEmbedder

    stamp = work / "var" / "index" / "synthetic.json"
    if stamp.is_file():  # the same synthetic index again (a kept --work): reuse it
        done = json.loads(stamp.read_text())
        if done["tickers"] == n and done["data"] == str(data):
            return done["setup"]
    base = work / "base" / "index"
    t0 = time.perf_counter()
    if not (base / FACTS_FILE).is_file():
        summary = ingest(data, base, HashEmbedder())
        if summary.failures:
            raise SystemExit(f"error: base ingest failed for {summary.failures[0].file}")
    ingest_s = time.perf_counter() - t0
    templates = sorted(set(CorpusStore.load(base, "filings").table["ticker"]) - {""})
    if not templates:
        raise SystemExit(f"error: no filings ingested from {data}")
    plan = [(t, templates[i % len(templates)]) for i, t in enumerate(synthetic_tickers(n))]
    index_dir = work / "var" / "index"
    shutil.rmtree(work / "var", ignore_errors=True)
    index_dir.mkdir(parents=True)
    passages = {c: _clone_corpus(base, index_dir, c, plan) for c in CORPORA}
    facts = pd.read_parquet(base / FACTS_FILE, engine="pyarrow")
    fact_clones = _clone_rows(facts, plan, {})[1]
    fact_clones.to_parquet(index_dir / FACTS_FILE, engine="pyarrow", index=False)
    risks = pd.read_parquet(base / RISKS_FILE, engine="pyarrow")
    risk_clones = _clone_rows(risks, plan, {"doc_id": True, "url": False})[1]
    risk_clones.to_parquet(index_dir / RISKS_FILE, engine="pyarrow", index=False)
    _write_companies(data, work / "data", plan)
    setup = {
        "templates": templates,
        "passages": passages,
        "facts": len(fact_clones),
        "risk_factors": len(risk_clones),
        "base_ingest_s": round(ingest_s, 1),
        "synth_s": round(time.perf_counter() - t0 - ingest_s, 1),
    }
    stamp.write_text(json.dumps({"tickers": n, "data": str(data), "setup": setup}))
    return setup


# ---- the run (this process) -------------------------------------------------------------------


def rss_mb() -> tuple[float, float]:
    """(this process, its child processes summed) resident set size in MB."""
    import psutil

    me = psutil.Process()
    kids = 0
    for child in me.children(recursive=True):
        try:
            kids += child.memory_info().rss
        except psutil.Error:
            pass
    return me.memory_info().rss / 2**20, kids / 2**20


class Probe:
    """Per-ticker seconds of each stage and RSS every `every` tickers, printed as progress JSON."""

    def __init__(self, n: int, every: int):
        self.n, self.every = n, every
        self.seconds: dict[str, dict[str, float]] = {"context": {}, "publish": {}, "job": {}}
        self.series: list[dict] = []
        self.job: list[str] = []

    def timed(self, stage: str, fn):
        def call(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.done(stage, args[0], time.perf_counter() - t)

        return call

    def done(self, stage: str, key, seconds: float) -> None:
        if stage in ("generate", "moderate"):  # a job's share goes to each of its tickers
            tickers = list(key) if stage == "generate" else self.job
            self.job = tickers if stage == "generate" else self.job
            for tk in tickers:
                self.seconds["job"][tk] = self.seconds["job"].get(tk, 0.0) + seconds / len(tickers)
            return
        self.seconds[stage][key] = seconds
        count = len(self.seconds[stage])
        if count % self.every == 0 or count == self.n:
            me, kids = rss_mb()
            point = {
                "stage": stage,
                "tickers": count,
                "rss_mb": round(me, 1),
                "children_rss_mb": round(kids, 1),
            }
            self.series.append(point)
            print(json.dumps({"progress": point}), flush=True)


class _TimedTask:
    """Stands in for a Prefect task the flow calls directly or through `with_options(...)(...)`."""

    def __init__(self, task, probe: Probe, stage: str):
        self.task, self.probe, self.stage = task, probe, stage

    def __call__(self, *args, **kwargs):
        return self.probe.timed(self.stage, self.task)(*args, **kwargs)

    def with_options(self, **options) -> Any:
        return self.probe.timed(self.stage, self.task.with_options(**options))


def run_nightly(tickers: list[str], as_of: str, every: int) -> tuple[dict, Probe, float]:
    """The nightly over `tickers` with the flow's stages wrapped by a Probe; (manifest, probe, wall s)."""
    import flows.reports as reports_flow
    import flows.run_steps as run_steps
    from flows.resources import register_embedder, register_engine
    from tests.fakes import FakeEngine, HashEmbedder, word_budget

    engine, embedder = FakeEngine(), HashEmbedder()  # as tests/flows/conftest.py register_fakes
    register_engine("fake", lambda *_: engine, budget=lambda *_: word_budget())
    register_embedder("fake-hash", lambda: embedder)
    probe = Probe(len(tickers), every)
    # the flow looks these up at call time; a stand-in times each call (types differ: a proxy)
    reports_flow.build_context_task = _TimedTask(reports_flow.build_context_task, probe, "context")  # type: ignore[assignment]
    reports_flow.publish_task = _TimedTask(reports_flow.publish_task, probe, "publish")  # type: ignore[assignment]
    reports_flow.moderate_task = probe.timed("moderate", reports_flow.moderate_task)
    run_steps.generate_job = probe.timed("generate", run_steps.generate_job)
    t = time.perf_counter()
    try:
        result = reports_flow.nightly_reports(tickers=tickers, as_of=as_of, ingest=False, resume=False)
    except reports_flow.RunFailed as exc:
        result = exc.result
    return result, probe, time.perf_counter() - t


def _pct(values: list[float], q: int) -> float:
    return (
        round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)
        if len(values) > 1
        else (round(values[0], 3) if values else 0.0)
    )


def summarize(tickers: list[str], manifest: dict, probe: Probe, wall: float) -> dict:
    """The figures of the last line: throughput, per-ticker percentiles, RSS and the report check."""
    run_dir = Path(manifest["run_dir"])
    missing = [
        t for t in tickers if not ((run_dir / f"{t}.md").is_file() and (run_dir / f"{t}.html").is_file())
    ]
    s = probe.seconds
    per = [s["context"].get(t, 0.0) + s["publish"].get(t, 0.0) + s["job"].get(t, 0.0) for t in tickers]
    # the first ticker also loads the index and the fakes (warm-up): blocks start at the second
    block = max(1, min(50, (len(tickers) - 1) // 2))
    first, last = block * 60 / sum(per[1 : 1 + block]), block * 60 / sum(per[-block:])
    publish = [p for p in probe.series if p["stage"] == "publish"]
    growth = 0.0
    if len(publish) > 1 and publish[-1]["tickers"] > publish[0]["tickers"]:
        span = publish[-1]["tickers"] - publish[0]["tickers"]
        growth = (publish[-1]["rss_mb"] - publish[0]["rss_mb"]) * 100 / span
    published = len(tickers) - len(manifest.get("failed", {}))
    flow_s = float(manifest.get("timings_s", {}).get("total") or wall)
    return {
        "name": "load-nightly",
        "ours": round(last, 2),
        "baseline": round(first, 2),
        "unit": "reports/min",
        "ratio": round(last / first, 3),
        "ratio_means": f"per-ticker reports/min, last {block} tickers / tickers 2..{block + 1}",
        "tickers": len(tickers),
        "published": published,
        "failed": manifest.get("failed", {}),
        "reports_written": len(tickers) - len(missing),
        "missing_reports": missing[:20],
        "reports_per_min": round(published * 60 / flow_s, 2),
        "flow_s": round(flow_s, 1),
        "wall_s": round(wall, 1),  # also starting and stopping the in-process Prefect API
        "timings_s": manifest.get("timings_s", {}),
        "per_ticker_s": {"p50": _pct(per, 50), "p95": _pct(per, 95), "max": round(max(per), 3)},
        "stage_p50_s": {k: _pct(list(v.values()), 50) for k, v in s.items()},
        "stage_p95_s": {k: _pct(list(v.values()), 95) for k, v in s.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_children_rss_mb": max((p["children_rss_mb"] for p in probe.series), default=0.0),
        "rss_growth_mb_per_100_tickers_publish": round(growth, 2),
        "rss_series": probe.series,
        "run_dir": str(run_dir),
    }


def _env(work: Path) -> None:
    """Settings for the run; set before `flows` is imported (it reads PREFECT_HOME at import)."""
    os.environ.update(
        RESEARCHDESK_DATA_DIR=str(work / "data"),
        RESEARCHDESK_VAR_DIR=str(work / "var"),
        RESEARCHDESK_ENGINE="fake",
        RESEARCHDESK_EMBEDDER="fake-hash",
        RESEARCHDESK_TASK_RUNNER="thread",
        RESEARCHDESK_RESULT_STORE=str(work / "var" / "results"),
        PREFECT_HOME=str(work / "var" / "prefect"),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tickers", type=int, default=500, help="synthetic tickers in the nightly")
    ap.add_argument("--data", type=Path, default=ROOT / "data", help="shipped data to clone from")
    ap.add_argument("--work", type=Path, default=None, help="work dir (kept); default: a temp dir, removed")
    ap.add_argument("--as-of", default="2026-04-01", help="report date (after every shipped filing)")
    ap.add_argument(
        "--index-tickers", type=int, default=0, help="synthesise this many (>= --tickers): a bigger index"
    )
    ap.add_argument("--every", type=int, default=50, help="print RSS every N tickers")
    ap.add_argument("--synthesize-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.index_tickers = args.index_tickers or args.tickers
    if args.tickers < 1 or args.every < 1 or args.index_tickers < args.tickers:
        print(
            "error: --tickers and --every must be at least 1, --index-tickers at least --tickers",
            file=sys.stderr,
        )
        return 2
    if not (args.data / "sec" / "company_tickers.json.gz").is_file():
        print(f"error: {args.data}: not a data folder (no sec/company_tickers.json.gz)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-load-"))
    if args.synthesize_only:
        print(json.dumps(synthesize(args.data.resolve(), work.resolve(), args.tickers)))
        return 0
    try:
        return _run(args, work.resolve())
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    cmd = [sys.executable, __file__, "--synthesize-only", "--tickers", str(args.index_tickers)]
    cmd += ["--data", str(args.data.resolve()), "--work", str(work)]
    synth = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if synth.returncode != 0:
        print(
            synth.stderr.strip().splitlines()[-1] if synth.stderr.strip() else "error: synthesis failed",
            file=sys.stderr,
        )
        return 1
    setup = json.loads(synth.stdout.strip().splitlines()[-1])
    print(json.dumps({"progress": {"stage": "synthesized", **setup}}), flush=True)
    _env(work)
    tickers = synthetic_tickers(args.tickers)
    manifest, probe, wall = run_nightly(tickers, args.as_of, args.every)
    out = summarize(tickers, manifest, probe, wall)
    out["setup"] = {
        **setup,
        "engine": "fake (tests/fakes.py)",
        "embedder": "fake-hash",
        "as_of": args.as_of,
        "index_tickers": args.index_tickers,
        "cores": os.cpu_count(),
        "generation_job_tickers": int(os.environ.get("RESEARCHDESK_GENERATION_JOB_TICKERS", "16")),
    }
    print(json.dumps(out), flush=True)
    return 0 if not out["missing_reports"] and not out["failed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
