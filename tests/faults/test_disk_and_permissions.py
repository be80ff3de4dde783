"""A full disk and a read-only reports folder (issue 15): one clear line per failure, no traceback,
and the previous run's reports, manifest and `latest` link left exactly as they were.

The full disk is a small tmpfs mounted over var/reports in a private mount namespace
(`unshare -m`: root or CAP_SYS_ADMIN), the previous run copied into it and the rest filled with a
ballast file. Permission denied is a reports folder owned by another user (0755) and a child that
runs as root without CAP_DAC_OVERRIDE (`setpriv`), so the kernel's ordinary permission checks apply.
Skipped, with the reason, where the machine allows neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.audit_trail import verify_run
from tests.faults import harness

OTHER_AS_OF = "2025-10-01"  # a second run: another run folder than the first one's


def _can(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


NS = shutil.which("unshare") and _can(["unshare", "-m", "true"])
DROP = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
SETPRIV = shutil.which("setpriv") and _can([*DROP, "true"])


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory, prefect_api: str, ingested: Path
) -> tuple[Path, dict[str, str]]:
    """A finished two-ticker run: the 'previous outputs' each test must leave intact."""
    root = tmp_path_factory.mktemp("faults-disk")
    env = harness.make_env(root, prefect_api)
    shutil.copytree(ingested, root / "var" / "index")
    done = harness.child(env, ["run", "--no-ingest", "--tickers", harness.TICKERS, "--as-of", harness.AS_OF])
    assert done.returncode == 0, done.stderr[-1500:]
    return root, env


def _snapshot(reports: Path) -> dict[str, bytes]:
    return {str(p.relative_to(reports)): p.read_bytes() for p in sorted(reports.rglob("*")) if p.is_file()}


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _assert_previous_intact(reports: Path, before: dict[str, bytes], latest_target: str) -> None:
    assert os.readlink(reports / "latest") == latest_target
    after = _snapshot(reports)
    assert {k: v for k, v in after.items() if k in before} == before  # not one byte changed
    result = verify_run(reports / "latest")
    assert result.ok, result.problems


def _full_disk_run(root: Path, env: dict[str, str], room_kib: int, min_free_mb: int) -> tuple[int, str, Path]:
    """Run `researchdesk run` for another date with var/reports on a tmpfs left `room_kib` free."""
    reports = Path(env["RESEARCHDESK_VAR_DIR"]) / "reports"
    work = root / f"full-{room_kib}"
    work.mkdir()
    script = f"""
set -e
cp -a "{reports}" "{work}/stash"
mount -t tmpfs -o size=16m tmpfs "{reports}"
cp -a "{work}/stash/." "{reports}/"
avail=$(df -k --output=avail "{reports}" | tail -1)
fallocate -l $(( (avail - {room_kib}) * 1024 )) "{reports}/.ballast"
set +e
"{harness.CLI}" run --no-ingest --tickers {harness.TICKERS} --as-of {OTHER_AS_OF} > "{work}/out" 2> "{work}/err"
echo $? > "{work}/rc"
rm -f "{reports}/.ballast"
cp -a "{reports}" "{work}/after"
"""
    run_env = {**env, "RESEARCHDESK_MIN_FREE_MB": str(min_free_mb)}
    done = subprocess.run(["unshare", "-m", "bash", "-c", script], env=run_env, capture_output=True,
                          text=True, timeout=harness.CHILD_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return int((work / "rc").read_text()), (work / "err").read_text(), work / "after"


@pytest.mark.skipif(not NS, reason="needs `unshare -m` (root or CAP_SYS_ADMIN) to mount a private tmpfs")
def test_nearly_full_disk_is_refused_before_the_run_starts(first_run):
    root, env = first_run
    reports = Path(env["RESEARCHDESK_VAR_DIR"]) / "reports"
    before, latest = _snapshot(reports), os.readlink(reports / "latest")
    rc, err, after = _full_disk_run(root, env, room_kib=2048, min_free_mb=64)
    lines = _error_lines(err)
    assert rc == 2 and len(lines) == 1 and len(err.strip().splitlines()) == 1, err
    assert "MB free on the disk of" in lines[0] and "free space" in lines[0], lines[0]
    _assert_previous_intact(after, before, latest)


@pytest.mark.skipif(not NS, reason="needs `unshare -m` (root or CAP_SYS_ADMIN) to mount a private tmpfs")
def test_disk_filling_up_during_the_run_fails_each_ticker_in_one_line(first_run):
    """Preflight off (0 MB): the writes themselves hit ENOSPC; nothing half-written is published."""
    root, env = first_run
    reports = Path(env["RESEARCHDESK_VAR_DIR"]) / "reports"
    before, latest = _snapshot(reports), os.readlink(reports / "latest")
    rc, err, after = _full_disk_run(root, env, room_kib=64, min_free_mb=0)
    lines = _error_lines(err)
    assert rc != 0 and lines, err[-3000:]
    assert all("No space left on device" in line for line in lines), lines
    _assert_previous_intact(after, before, latest)
    for run in after.iterdir():  # the failed run published no torn file
        for path in run.rglob("*") if run.is_dir() and not run.is_symlink() else []:
            assert not path.name.endswith(".tmp"), path


@pytest.mark.skipif(not SETPRIV, reason="needs `setpriv` able to drop CAP_DAC_OVERRIDE (root)")
def test_read_only_reports_folder_is_one_line_and_leaves_it_untouched(first_run):
    root, env = first_run
    reports = Path(env["RESEARCHDESK_VAR_DIR"]) / "reports"
    before, latest = _snapshot(reports), os.readlink(reports / "latest")
    os.chown(reports, 65534, 65534)  # nobody's folder; we are "others" once DAC override is gone
    os.chmod(reports, 0o755)
    try:
        cmd = [*DROP, str(harness.CLI), "run", "--no-ingest", "--tickers", harness.TICKERS, "--as-of", OTHER_AS_OF]
        done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True,
                              timeout=harness.CHILD_TIMEOUT_S)
    finally:
        os.chown(reports, 0, 0)
    lines = _error_lines(done.stderr)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-3000:]
    assert f"cannot write to {reports}" in lines[0] and "Permission denied" in lines[0], lines[0]
    _assert_previous_intact(reports, before, latest)
