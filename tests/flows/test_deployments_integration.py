"""prefect.yaml against a real local Prefect server, work pools and workers (fake engine, ~2 min).

Starts `prefect server` (SQLite in a temporary PREFECT_HOME, loopback only), creates the `cpu` and
`gpu` process pools, deploys every deployment of prefect.yaml, starts one worker per pool and
then drives the deployments the way an operator does:
  1. `prefect deployment run 'ticker-report/on-demand' --param ticker=AAPL`: Completed, report
     written; its generation went through the `generate/gpu` deployment on the gpu pool.
  2. the nightly for AAPL + NVDA with a crash probe: the flow process is SIGKILLed during the
     second publish (Crashed); the same nightly again resumes the run folder: AAPL is not
     published again, no section is generated twice, NVDA is published, the run is Completed.
Every process started here is stopped in `finally` (process groups: SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data_dir(root: Path) -> Path:
    """AAPL and NVDA from the shipped sample: 10-K, companyfacts, news, Wikipedia."""
    src, data = ROOT / "data", root / "data"
    for sub in ("sec/filings", "sec/companyfacts", "news", "wikipedia"):
        (data / sub).mkdir(parents=True)
    shutil.copy(src / "sec" / "company_tickers.json.gz", data / "sec")
    for ticker in ("aapl", "nvda"):
        shutil.copy(next((src / "sec" / "filings").glob(f"{ticker}-10-k-*")), data / "sec" / "filings")
        shutil.copy(
            next((src / "sec" / "companyfacts").glob(f"*{ticker.upper()}*")), data / "sec" / "companyfacts"
        )
        shutil.copy(src / "news" / f"{ticker.upper()}.csv.gz", data / "news")
    shutil.copy(src / "wikipedia" / "companies.jsonl.gz", data / "wikipedia")
    return data


class Stack:
    """Background processes of one test: each in its own process group, all stopped on close."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp, self.env, self.procs = tmp, env, []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(BIN / "prefect"), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((name, proc, log))
        return proc

    def cli(self, *args: str, timeout: float = 120) -> str:
        out = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert out.returncode == 0, f"prefect {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.env["PREFECT_API_URL"] + path, timeout=10) as resp:
            return json.loads(resp.read())

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def wait_for(self, flow_run_id: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api(f"/flow_runs/{flow_run_id}")
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {flow_run_id} not finished after {timeout}s\n{self.logs()}")

    def run_deployment(self, name: str, *params: str) -> dict:
        out = self.cli("deployment", "run", name, *[a for p in params for a in ("--param", p)])
        match = re.search(r"UUID: ([0-9a-f-]{36})", out)
        assert match, out
        return self.wait_for(match.group(1))

    def close(self) -> None:
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc, log in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            log.close()


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _worker_fakes(tmp: Path) -> dict[str, str]:
    """Env of a worker whose flow runs use the fakes: a `sitecustomize.py` on PYTHONPATH (run at
    start by every Python process of the worker, its flow-run subprocesses included) installs
    tests/flows/worker_hook.py, which registers engine "fake" and embedder "fake-hash" by name."""
    site = tmp / "worker-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import tests.flows.worker_hook\n\ntests.flows.worker_hook.install()\n"
    )
    path = [str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(path),
        "RESEARCHDESK_ENGINE": "fake",
        "RESEARCHDESK_EMBEDDER": "fake-hash",
    }


def test_deployments_on_a_real_server_and_resume_after_a_crash(tmp_path: Path):
    port = _free_port()
    events, crash = tmp_path / "events.jsonl", tmp_path / "crash-on-second-publish"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RESEARCHDESK_"))} | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
        "PROJECT_DIR": str(ROOT),
        "RESEARCHDESK_DATA_DIR": str(_data_dir(tmp_path)),
        "RESEARCHDESK_VAR_DIR": str(tmp_path / "var"),
        "RESEARCHDESK_TEST_EVENTS": str(events),
        "RESEARCHDESK_TEST_CRASH": str(crash),
        "RESEARCHDESK_GENERATION_JOB_TICKERS": "1",  # one generation job per ticker
    }
    fakes = _worker_fakes(tmp_path)  # fake engine + hash embedder in the workers' flow runs
    stack = Stack(tmp_path, env)
    try:
        stack.start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + 120
        while True:
            try:
                if stack.api("/health") is True:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"server did not come up\n{stack.logs()}"
            time.sleep(0.5)
        for pool in ("cpu", "gpu"):
            stack.cli("work-pool", "create", pool, "--type", "process")
        out = stack.cli("--no-prompt", "deploy", "--all")
        for name in ("nightly", "on-demand", "filings-facts", "news", "gpu"):
            assert name in out, out
        nightly = stack.api("/deployments/name/nightly-reports/nightly")
        assert nightly["global_concurrency_limit"]["limit"] == 1
        assert nightly["concurrency_options"]["collision_strategy"] == "ENQUEUE"
        assert nightly["schedules"][0]["schedule"]["cron"] == "30 1 * * 2-6"
        assert nightly["schedules"][0]["schedule"]["timezone"] == "America/New_York"
        assert stack.api("/deployments/name/generate/gpu")["work_pool_name"] == "gpu"
        # The CPU worker serves the report queues only (the hourly ingest schedule would race
        # this test); its flows hand generation to generate/gpu, served by the GPU worker.
        stack.start(
            "worker-cpu",
            *("worker", "start", "--pool", "cpu", "--work-queue", "on-demand", "--work-queue", "nightly"),
            env={
                **fakes,
                "RESEARCHDESK_GENERATION_DEPLOYMENT": "generate/gpu",
                "RESEARCHDESK_GENERATION_PARALLEL_JOBS": "2",
            },
        )
        stack.start("worker-gpu", "worker", "start", "--pool", "gpu", "--limit", "1", env=fakes)

        # 1. on demand: one ticker, through the GPU deployment
        run = stack.run_deployment("ticker-report/on-demand", "ticker=AAPL", "as_of=2025-06-01")
        assert run["state_type"] == "COMPLETED", stack.logs()
        [report] = (tmp_path / "var" / "reports").glob("2025-06-01-*/AAPL.html")
        assert "Apple" in report.read_text()
        manifest = json.loads((report.parent / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["model"]["chat"]["jobs"] == 1
        # the generation job ran in another process (the gpu worker's flow run) than the publish
        gen_pids = {e["pid"] for e in _events(events) if e["event"] == "generate"}
        assert gen_pids and gen_pids.isdisjoint(
            {e["pid"] for e in _events(events) if e["event"] == "publish"}
        )

        # 2. nightly for two tickers, killed during the second publish, then run again
        crash.touch()
        params = ('tickers=["AAPL","NVDA"]', "as_of=2025-06-02", "ingest=false")
        first = stack.run_deployment("nightly-reports/nightly", *params)
        assert first["state_type"] == "CRASHED", stack.logs()
        assert not crash.exists()
        [run_dir] = (tmp_path / "var" / "reports").glob("2025-06-02-*")
        aapl = run_dir / "AAPL.html"
        aapl_before = (aapl.stat().st_mtime_ns, aapl.read_bytes())
        assert not (run_dir / "NVDA.html").exists() and not (run_dir / "manifest.json").exists()

        second = stack.run_deployment("nightly-reports/nightly", *params)
        assert second["state_type"] == "COMPLETED", stack.logs()
        assert (aapl.stat().st_mtime_ns, aapl.read_bytes()) == aapl_before  # not published again
        assert (run_dir / "NVDA.html").is_file()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        assert manifest["resume"]["resumed_tickers"] == ["AAPL"]
        units = {  # generation units per ticker, from the contexts the run wrote
            t: sum(len(s["units"]) for s in json.loads((run_dir / "audit" / f"context-{t}.json").read_text())["sections"])
            for t in ("AAPL", "NVDA")
        }
        assert manifest["resume"]["sections_cached"] == units["NVDA"] > 0  # generated before the crash
        assert manifest["resume"]["sections_generated"] == 0
        nightly_events = [e for e in _events(events) if run_dir.name in json.dumps(e)]
        generated = [rid for e in nightly_events if e["event"] == "generate" for rid in e["request_ids"]]
        assert len(generated) == len(set(generated)) == sum(units.values())  # every unit, each once
        published = [e["ticker"] for e in nightly_events if e["event"] == "publish"]
        assert sorted(published) == ["AAPL", "NVDA"]  # each report published exactly once
        artifacts = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(
                    env["PREFECT_API_URL"] + "/artifacts/filter",
                    data=json.dumps({"artifacts": {"flow_run_id": {"any_": [second["id"]]}}}).encode(),
                    headers={"Content-Type": "application/json"},
                ),
                timeout=10,
            ).read()
        )
        by_key = {a["key"]: a for a in artifacts}
        assert {"report-run", "report-run-summary", "report-aapl", "report-nvda"} <= by_key.keys(), artifacts
        assert (run_dir / "NVDA.html").resolve().as_uri() in by_key["report-nvda"]["data"]  # link artifact
        table = next(a for a in artifacts if a["type"] == "table")
        rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
        assert {r["ticker"]: r["status"] for r in rows} == {
            "AAPL": "published (resumed)",
            "NVDA": "published",
        }
    finally:
        stack.close()
