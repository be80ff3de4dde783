"""Run `researchdesk` in a child process that may be SIGKILLed at a named point, then check the
invariants a crash must never break (see kill_hook.py for the points)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from tests.flows.conftest import DATA, aapl_data_dir

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "researchdesk"
TICKERS = "AAPL,NVDA"
AS_OF = "2025-09-01"


def make_env(root: Path) -> dict[str, str]:
    """A real two-ticker data dir, a private var dir and the sitecustomize that installs the hook."""
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
    return env


def child(env: dict[str, str], args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = dict(env)
    env.pop("RESEARCHDESK_KILL_AT", None)
    if kill_at:
        env["RESEARCHDESK_KILL_AT"] = kill_at
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=env["RESEARCHDESK_VAR_DIR"].rsplit("/", 1)[0],
        capture_output=True, text=True, timeout=300,
    )


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
        if table.duplicated(subset=[c for c in ("doc_id", "text") if c in table.columns]).any():
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
    from rag.atomic import sha256_hex

    problems = []
    latest = var / "reports" / "latest"
    manifest = latest / "manifest.json"
    if not manifest.exists():
        return [f"no manifest under {latest}"]
    data = json.loads(manifest.read_text())
    listed = _listed(data)
    if not listed:
        problems.append("manifest lists no files")
    for name, digest in listed.items():
        path = Path(name) if Path(name).is_absolute() else latest / name
        if path.name.endswith(".tmp"):
            problems.append(f"manifest lists a temporary file {name}")
        elif not path.exists():
            problems.append(f"manifest lists missing {name}")
        elif sha256_hex(path.read_bytes()) != digest:
            problems.append(f"sha256 mismatch for {name}")
    return problems


def _listed(node) -> dict[str, str]:
    """Every {path: 64-hex sha256} pair anywhere in the manifest."""
    found: dict[str, str] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
                if "/" in key or "." in key:
                    found[key] = value
            else:
                found.update(_listed(value))
    elif isinstance(node, list):
        for item in node:
            found.update(_listed(item))
    return found


def check_published(env: dict[str, str], tickers: list[str]) -> list[str]:
    done = Counter(e["ticker"] for e in events(env) if e["event"] == "publish-done")
    return [f"{t} published {done[t]} times" for t in tickers if done[t] != 1]


if __name__ == "__main__":  # pragma: no cover - manual: python -m tests.faults.harness DIR
    root = Path(sys.argv[1])
    env = make_env(root)
    print(child(env, ["run", "--tickers", TICKERS, "--as-of", AS_OF]))
