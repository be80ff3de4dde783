"""SIGKILL `researchdesk` at a named point, rerun the same command, check nothing is torn,
duplicated, lost or published twice (issue 15)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults import harness

RUN = ["run", "--no-ingest", "--tickers", harness.TICKERS, "--as-of", harness.AS_OF]
INGEST = ["ingest"]
FAST = [(INGEST, "swap:1"), (RUN, "publish:2"), (RUN, "write:manifest.json:1")]  # in CI
LONG = [
    (INGEST, "parse:1"), (INGEST, "embed:1"), (INGEST, "embed:3"), (INGEST, "swap:1"), (INGEST, "swap:2"),
    (INGEST, "write:facts.parquet:1"), (INGEST, "write:files.json:1"), (RUN, "context:1"),
    (RUN, "context:2"), (RUN, "generate:1"), (RUN, "write:completions.jsonl:1"), (RUN, "moderate:1"),
    (RUN, "publish:1"), (RUN, "publish:2"), (RUN, "write:*.html:1"), (RUN, "write:*.md:2"),
    (RUN, "write:*.svg:1"), (RUN, "write:manifest.json:1"), (RUN, "write:index.html:1"),
    (RUN, "latest:1"), (RUN, "write:*.json:3"), (INGEST, "write:*.parquet:2"),
]


def kill_and_rerun(root: Path, args: list[str], kill_at: str, api_url: str, index: Path) -> None:
    env = harness.make_env(root, api_url)
    if args[0] == "run":
        shutil.copytree(index, root / "var" / "index")
    first = harness.child(env, args, kill_at)
    killed = any(e["event"] == "kill" for e in harness.events(env))
    assert killed and first.returncode == -9, f"{kill_at} never hit (rc {first.returncode}): {first.stderr[-800:]}"
    again = harness.child(env, args)
    assert again.returncode == 0, again.stderr[-1500:]
    var = root / "var"
    problems = harness.check_index(var) + harness.check_files(var)
    if args[0] == "run":
        problems += harness.check_manifest(var) + harness.check_published(env, harness.TICKERS.split(","))
    assert not problems, problems


@pytest.mark.parametrize(("args", "kill_at"), FAST, ids=[k for _, k in FAST])
def test_fast_kill_points(
    tmp_path: Path, args: list[str], kill_at: str, prefect_api: str, ingested: Path
) -> None:
    kill_and_rerun(tmp_path, args, kill_at, prefect_api, ingested)


@pytest.mark.faults_long
@pytest.mark.parametrize(("args", "kill_at"), LONG, ids=[k for _, k in LONG])
def test_long_kill_points(
    tmp_path: Path, args: list[str], kill_at: str, prefect_api: str, ingested: Path
) -> None:
    kill_and_rerun(tmp_path, args, kill_at, prefect_api, ingested)
