"""Run `researchdesk` in a child process that may be SIGKILLed at a named point, then check the
invariants a crash must never break (see kill_hook.py for the points)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tests.flows.conftest import DATA, aapl_data_dir

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "researchdesk"
TICKERS = "AAPL,NVDA"
AS_OF = "2025-09-01"
CHILD_TIMEOUT_S = 600


def make_env(root: Path, api_url: str | None = None) -> dict[str, str]:
    """A real two-ticker data dir, a private var dir and the sitecustomize that installs the hook.

    `api_url`: a running Prefect server shared by the tests (each child then skips the ~30 s
    start of a temporary one); None lets each child start its own, as `researchdesk` does."""
    data = aapl_data_dir(root)
    shutil.copy(DATA / "sec" / "filings" / "nvda-10-k-2025-02-26.html.gz", data / "sec" / "filings")
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("from tests.faults.kill_hook import install\ninstall()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESEARCHDESK_", "PREFECT_"))}
    env.update(
        PYTHONPATH=f"{site}{os.pathsep}{ROOT}",
        RESEARCHDESK_DATA_DIR=str(data),
        RESEARCHDESK_VAR_DIR=str(root / "var"),
        RESEARCHDESK_ENGINE="fake",
        RESEARCHDESK_EMBEDDER="fake-hash",
        RESEARCHDESK_WATCHLIST=TICKERS,
        RESEARCHDESK_TEST_EVENTS=str(root / "events.jsonl"),
    )
    if api_url:
        env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(root / "prefect-home"))
    return env


def child(env: dict[str, str], args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(env)
    env.pop("RESEARCHDESK_KILL_AT", None)
    if kill_at:
        env["RESEARCHDESK_KILL_AT"] = kill_at
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=env["RESEARCHDESK_VAR_DIR"].rsplit("/", 1)[0],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """`prefect server start` on a free loopback port (SQLite under `home`); yields its API URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    log = open(home.parent / "prefect-server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(CLI.parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    if json.loads(resp.read()) is True:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {(home.parent / 'prefect-server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def events(env: dict[str, str]) -> list[dict]:
    path = Path(env["RESEARCHDESK_TEST_EVENTS"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_index(var: Path) -> list[str]:
    import faiss
    import pandas as pd

    problems = []
    for meta in sorted((var / "index").glob("*/meta.json")):
        store = meta.parent
        if store.name.endswith((".old", ".tmp")):
            continue
        index = faiss.read_index(str(store / "index.faiss"))
        table = pd.read_parquet(store / "passages.parquet")
        info = json.loads(meta.read_text())
        if not (index.ntotal == len(table) == info["count"]):
            problems.append(f"{store.name}: {index.ntotal} vectors, {len(table)} rows, meta {info['count']}")
        ids = table[[c for c in table.columns if c.endswith("id") and "faiss" in c] or ["faiss_id"]]
        if ids.iloc[:, 0].duplicated().any():
            problems.append(f"{store.name}: duplicate faiss ids")
        if hasattr(faiss, "downcast_index") and hasattr(index, "id_map"):
            mapped = np.sort(faiss.vector_to_array(faiss.downcast_index(index).id_map))
            if not np.array_equal(mapped, np.sort(ids.iloc[:, 0].to_numpy())):
                problems.append(f"{store.name}: faiss ids differ from the table's")
        # the same words may recur in one filing (a repeated table row); a passage stored twice
        # shows as a repeated id or a repeated (document, position)
        if table["passage_id"].duplicated().any() or table.duplicated(subset=["doc_id", "ordinal"]).any():
            problems.append(f"{store.name}: duplicate passages")
        terms = [c for c in table.columns if "term" in c]
        if terms and table[terms[0]].isna().any():
            problems.append(f"{store.name}: passages without lexical terms")
    return problems


def check_files(var: Path) -> list[str]:
    problems = []
    for path in var.rglob("*"):
        if "prefect" in path.parts or not path.is_file() or path.name.endswith(".tmp"):
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".jsonl":
                [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except ValueError as exc:
            problems.append(f"torn {path.relative_to(var)}: {exc}")
    return problems


def check_manifest(var: Path) -> list[str]:
    """The run `latest` points at passes `researchdesk audit`'s checks (files, digests, chain)."""
    from reports.audit_trail import verify_run

    latest = var / "reports" / "latest"
    if not (latest / "manifest.json").exists():
        return [f"no manifest under {latest}"]
    result = verify_run(latest)
    problems = list(result.problems)
    if not any(what.startswith("file") for what, ok, _ in result.checks if ok):
        problems.append("the manifest lists no files")
    problems += [f"temporary file left in the run: {p.name}" for p in latest.resolve().rglob("*.tmp")]
    return problems


def check_published(env: dict[str, str], tickers: list[str]) -> list[str]:
    done = Counter(e["ticker"] for e in events(env) if e["event"] == "publish-done")
    return [f"{t} published {done[t]} times" for t in tickers if done[t] != 1]


if __name__ == "__main__":  # pragma: no cover - manual: python -m tests.faults.harness DIR
    root = Path(sys.argv[1])
    env = make_env(root)
    print(child(env, ["run", "--tickers", TICKERS, "--as-of", AS_OF]))
