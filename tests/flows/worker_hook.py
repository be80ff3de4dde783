"""TEST HOOK for flow runs in a separate process (a Prefect worker's subprocess): fakes, not models.

Installed at interpreter start: the integration test starts its workers with a folder on
PYTHONPATH whose `sitecustomize.py` calls `install()` (Python imports `sitecustomize` in every
process, so the workers' flow-run subprocesses get it too), and with RESEARCHDESK_ENGINE=fake,
RESEARCHDESK_EMBEDDER=fake-hash. `install()` registers those names in flows/resources.py, like the
in-process `fakes` fixture does, and adds two probes the integration test reads:
  RESEARCHDESK_TEST_EVENTS=FILE  every generated request and every publish is appended as JSON;
  RESEARCHDESK_TEST_CRASH=FILE   while FILE exists, the 2nd publish of a flow process deletes it
                                 and SIGKILLs that process (a node dying mid-run, once).
Never set any of these in production.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from tests.fakes import FakeEngine, HashEmbedder, word_budget


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
    import reports.publish
    from flows.resources import register_embedder, register_engine

    engine, embedder = LoggedFakeEngine(), HashEmbedder()  # one of each per process, as real ones
    register_engine("fake", lambda *_: engine, budget=lambda *_: word_budget())
    register_embedder("fake-hash", lambda: embedder)

    # The crash probe (not a model seam): flows/reports.py binds `publish_report` when it is
    # imported, so wrap it at its source before that import, and in flows.reports if it is loaded.
    real_publish = reports.publish.publish_report
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

    reports.publish.publish_report = publish_report
    if "flows.reports" in sys.modules:
        sys.modules["flows.reports"].publish_report = publish_report
