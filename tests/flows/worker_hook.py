"""TEST HOOK for flow runs in a separate process (a Prefect worker's subprocess): fakes, not models.

Selected with RESEARCHDESK_DEV_HOOK=tests.flows.worker_hook:install (flows/runtime.py runs it once
per flow process). It swaps the model seams for the fakes of tests/fakes.py, like the in-process
`fakes` fixture does with monkeypatch, and adds two probes the integration test reads:
  RESEARCHDESK_TEST_EVENTS=FILE  every generated request and every publish is appended as JSON;
  RESEARCHDESK_TEST_CRASH=FILE   while FILE exists, the 2nd publish of a flow process deletes it
                                 and SIGKILLs that process (a node dying mid-run, once).
Never set any of these in production.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from reports.trim import PromptBudget
from tests.fakes import FakeEngine, HashEmbedder


def _event(**fields) -> None:
    path = os.environ.get("RESEARCHDESK_TEST_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"pid": os.getpid(), **fields}) + "\n")


class LoggedFakeEngine(FakeEngine):
    def generate(self, requests):
        _event(event="generate", request_ids=[r.request_id for r in requests])
        return super().generate(requests)


def install() -> None:
    import flows.ingest
    import flows.reports

    engine, embedder = LoggedFakeEngine(), HashEmbedder()
    budget = PromptBudget(lambda system, user: len(f"{system} {user}".split()), 2048)
    flows.ingest.shared_embedder = lambda name: embedder
    flows.reports.shared_embedder = lambda name: embedder
    flows.reports.shared_engine = lambda *a, **k: engine
    flows.reports.shared_prompt_budget = lambda *a, **k: budget
    real_publish = flows.reports.publish_report
    calls = []

    def publish_report(report, run_dir):
        calls.append(report.ticker)
        crash = os.environ.get("RESEARCHDESK_TEST_CRASH")
        if crash and len(calls) == 2 and Path(crash).exists():
            Path(crash).unlink()
            _event(event="crash", ticker=report.ticker)
            os.kill(os.getpid(), signal.SIGKILL)
        _event(event="publish", ticker=report.ticker, run_dir=str(run_dir))
        return real_publish(report, run_dir)

    flows.reports.publish_report = publish_report
