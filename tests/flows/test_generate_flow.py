"""The GPU node's generation flow on the CPU: a tensor-parallel job launched as a process group.

`generate_batch` with `tp: 2` runs `python -m models.batch --tp 2` (torchrun, gloo) on the tiny
random GPT-NeoX under the production preset (its weights swapped in by RESEARCHDESK_CHAT_SOURCE),
relays the job's progress lines to the flow log and returns the job's accounting.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from flows.generate import generate_batch
from models.batch import read_completions
from models.presets import PRESETS

PRESET = "gpt-neoxt-chat-20b"


@pytest.fixture(scope="module")
def tiny_neox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.models.conftest import _build_tiny

    path = tmp_path_factory.mktemp("tiny-neox")
    _build_tiny(path)
    return path


@pytest.mark.slow
def test_tensor_parallel_job_through_the_generation_flow(tiny_neox: Path, tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setitem(PRESETS, PRESET, PRESETS[PRESET])  # the flow swaps the weights in this process too
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RESEARCHDESK_CHAT_PRESET", PRESET)
    monkeypatch.setenv("RESEARCHDESK_CHAT_SOURCE", str(tiny_neox))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rows = [{"request_id": f"r{i}", "user": f"Question {i} about revenue?", "max_new_tokens": 6} for i in range(3)]
    rows.append({"request_id": "empty", "user": " "})
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "completions.jsonl"

    with caplog.at_level(logging.INFO):
        summary = generate_batch({"requests": str(requests), "completions": str(out), "preset": PRESET, "tp": 2})

    assert summary["tp"] == 2 and summary["tp_sharded_params"] > 0 and summary["requests"] == 4
    assert PRESETS[PRESET].source == str(tiny_neox) and summary["revision"].startswith("local:")
    completions = read_completions(out)
    assert list(completions) == ["r0", "r1", "r2", "empty"]
    assert all(completions[f"r{i}"].tokens_out == 6 for i in range(3))
    assert completions["empty"].finish_reason == "error"
    assert "generation job: generated 4/4 requests" in caplog.text  # relayed from the ranks' stderr
