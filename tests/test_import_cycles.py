"""The project's import graph has no cycle (tools/import_cycles.py), and the checker finds one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "import_cycles.py"


def test_no_import_cycle_among_the_packages():
    out = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no import cycle" in out.stdout


def test_the_checker_reports_a_cycle():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import import_cycles
    finally:
        sys.path.pop(0)
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    found = import_cycles.cycles(graph)
    assert [sorted(c) for c in found] == [["a", "b", "c"]]
