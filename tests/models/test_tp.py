"""2-rank tensor parallelism on the CPU (gloo) through the batch job's CLI, against one process.

The model is the tiny random GPT-NeoX (the production architecture) run under the production
preset `gpt-neoxt-chat-20b` with `--source` pointing at it, so the prompt format, stop words and
TP plan are the ones the 4-GPU node uses. torchrun starts the ranks (`--tp 2` re-launches the
CLI under it); rank 0 reads the requests and writes the completions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.batch import main, read_completions
from models.presets import PRESETS
from rag.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
USERS = [
    "What was Apple's revenue?",
    "Net income rose 12% to $93.7 billion while operating cash flow reached $118.3 billion.",
    "Risk factors?",
    "The company repurchased shares and paid dividends; liquidity remains strong.",
]


def _requests(path: Path) -> Path:
    rows = [
        {"request_id": f"g{i}", "user": u, "temperature": 0.0, "max_new_tokens": 12, "stop_words": []}
        for i, u in enumerate(USERS)
    ]
    rows.append(
        {
            "request_id": "s0",
            "user": USERS[0],
            "temperature": 0.9,
            "top_k": 50,
            "seed": 11,
            "max_new_tokens": 12,
            "stop_words": [],
        }
    )  # sampled: per-row generator, same on every rank
    rows.append({"request_id": "empty", "user": "  "})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(tiny_dir: Path, tmp: Path, requests: Path, out: Path, tp: int) -> list[str]:
    return [
        "--requests",
        str(requests),
        "--out",
        str(out),
        "--preset",
        "gpt-neoxt-chat-20b",
        "--source",
        str(tiny_dir),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--cache-dir",
        str(tmp / "cache"),
        "--tp",
        str(tp),
    ]


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "models.batch", *args],
        cwd=ROOT,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_two_rank_tp_equals_single_process(tiny_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    requests = _requests(tmp_path / "requests.jsonl")
    monkeypatch.setitem(PRESETS, "gpt-neoxt-chat-20b", PRESETS["gpt-neoxt-chat-20b"])  # --source replaces it
    assert main(_cli(tiny_dir, tmp_path, requests, tmp_path / "one.jsonl", 1)) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    proc = _run(_cli(tiny_dir, tmp_path, requests, tmp_path / "tp.jsonl", 2))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["tp"] == 2 and summary["tp_sharded_params"] > 0 and single["tp"] == 1
    one, tp = read_completions(tmp_path / "one.jsonl"), read_completions(tmp_path / "tp.jsonl")
    assert list(one) == list(tp) == [f"g{i}" for i in range(4)] + ["s0", "empty"]
    assert one == tp  # text, token counts, finish reasons and errors, row for row
    assert all(c.tokens_out == 12 for k, c in tp.items() if k != "empty")
    assert tp["empty"].finish_reason == "error" and summary["errors"] == 1


@pytest.mark.slow
def test_deepspeed_autotp_two_ranks_equal_single_process(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    """The alternative backend, for real: DeepSpeed AutoTP under torchrun on gloo. Before models/tp.py
    set LOCAL_SIZE, both ranks segfaulted in DeepSpeed's CPU all-reduce kernel (deepspeed 0.19.8)."""
    pytest.importorskip("deepspeed", reason="deepspeed is in the dev extra: pip install -e '.[dev]'")
    requests = _requests(tmp_path / "requests.jsonl")
    assert main(_cli(tiny_dir, tmp_path, requests, tmp_path / "one.jsonl", 1)) == 0
    capsys.readouterr()
    proc = _run(_cli(tiny_dir, tmp_path, requests, tmp_path / "ds.jsonl", 2) + ["--tp-backend", "deepspeed"], 600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["tp"] == 2 and summary["tp_sharded_params"] > 0  # AutoTP swapped in its split layers
    one, ds = read_completions(tmp_path / "one.jsonl"), read_completions(tmp_path / "ds.jsonl")
    assert list(one) == list(ds) and one == ds


@pytest.mark.slow
def test_tp_rank0_read_error_stops_every_rank(tiny_dir: Path, tmp_path: Path) -> None:
    proc = _run(_cli(tiny_dir, tmp_path, tmp_path / "missing.jsonl", tmp_path / "out.jsonl", 2))
    assert proc.returncode != 0 and "cannot read" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_deepspeed_backend_without_deepspeed_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    from models import tp

    monkeypatch.setitem(sys.modules, "deepspeed", None)  # import deepspeed -> ImportError
    with pytest.raises(ModelError, match="pip install deepspeed"):
        tp._load_deepspeed(tmp_path, None, 2, "cpu")


def test_tp_outside_torchrun_is_a_config_error(monkeypatch) -> None:
    from models import tp
    from rag.errors import ConfigError

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        tp.init_group("cpu")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "requests.jsonl:1"),
        ('{"request_id": "a"}\n', "needs request_id and user"),
        ('{"request_id": "a", "user": "x", "bogus": 1}\n', "unknown: bogus"),
    ],
)
def test_bad_request_files_are_config_errors(tmp_path: Path, content: str, message: str, capsys) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(content)
    out = tmp_path / "o.jsonl"
    assert main(["--requests", str(path), "--out", str(out), "--preset", "no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err  # reported before any model is loaded
    assert not out.exists()
