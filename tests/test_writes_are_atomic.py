"""Every single-file write of the pipeline goes through rag/atomic.py (issue 15).

A static scan of flows/ rag/ models/ reports/: a direct `write_text`, `write_bytes`, `open(..., "w")`,
`to_parquet` or `faiss.write_index` outside rag/atomic.py must be on the list below, with the reason
it cannot tear a file anyone reads (it writes into a private temporary folder that is swapped in
whole, or into a path that `atomic_path` handed out). A new direct write fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {"write_text", "write_bytes", "to_parquet"}
ALLOWED = {  # (file, function): why it is safe
    ("flows/generate.py", "fetch_file"): "copies into the job's private TemporaryDirectory",
    ("flows/generate.py", "generate_batch"): "summary.json in the private TemporaryDirectory, then put_file",
    ("rag/ingest_lock.py", "ingest_lock"): "the lock holder's pid, informational, read only in a message",
    ("rag/store.py", "save"): "writes into <corpus>.tmp, swapped in whole by _swap",
    ("rag/facts.py", "write_facts"): "to_parquet on the path atomic_path handed out",
    ("rag/risk_factors.py", "write_risk_factors"): "to_parquet on the path atomic_path handed out",
    ("models/weights.py", "write_cache"): "inside the cache's private .tmp folder, renamed in whole",
    ("models/archive.py", "_download"): "into the private .tmp-<tag> folder, renamed in whole",
    ("models/archive.py", "_fill"): "meta of the private .tmp-<tag> folder, renamed in whole",
}


def _direct_writes(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            at = 0 if isinstance(node.func, ast.Attribute) else 1  # path.open("w") / open(path, "w")
            mode = next((a.value for a in node.args[at : at + 1] if isinstance(a, ast.Constant)), "")
            mode = next((k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)), mode)
            opens_for_write = name == "open" and isinstance(mode, str) and any(c in mode for c in "wax")
            faiss_write = name == "write_index" and getattr(node.func, "value", None) is not None and (
                getattr(node.func.value, "id", "") == "faiss"  # not reports.publish.write_index
            )
            if name in WRITERS or opens_for_write or faiss_write:
                found.append((fn.name, node.lineno))
    return found


def test_no_direct_file_writes_outside_the_atomic_helper() -> None:
    offenders, seen = [], set()
    for package in ("flows", "rag", "models", "reports"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "rag/atomic.py":
                continue
            for fn, line in _direct_writes(path):
                seen.add((rel, fn))
                if (rel, fn) not in ALLOWED:
                    offenders.append(f"{rel}:{line} in {fn}()")
    assert not offenders, "write through rag.atomic (write_atomic / atomic_open / atomic_path): " + ", ".join(offenders)
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"allow-list entries that no longer write directly (remove them): {stale}"
