"""The GPU benchmark's code path, shrunk to a tiny random GPT-NeoX on the CPU.

No GPU is lent to CI, so this is what keeps `bench/generate.py --device cuda` from rotting: the same
functions (HF batch baseline, the engine's decoder, the static-cache bs1 path) run end to end and
the engine's greedy rows must equal HF `generate`'s. Speeds are printed, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_synthetic_benchmark_runs_and_matches_hf_greedy() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--device", "cpu", "--workload", "synthetic", "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == "generate-synthetic-neox" and result["unit"] == "tok/s"
    assert result["ours"] > 0 and result["baseline"] > 0 and result["bs1"]["ours"] > 0
    assert result["rows_equal_to_hf"] == result["setup"]["prompts"] > 0
