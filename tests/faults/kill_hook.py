"""TEST HOOK: SIGKILL a child `researchdesk` process at the n-th hit of a named point.

Installed by a generated `sitecustomize.py` (see harness.py) before any project module is
imported, so every wrapper below is in place at its source module before other modules bind it.
  RESEARCHDESK_KILL_AT=<point>:<n>  kill at the n-th hit of <point>;
  RESEARCHDESK_TEST_EVENTS=FILE     publish starts/ends and the kill are appended as JSON.
Points: parse, embed, swap (between the store's two renames), write:<glob> (a finished temporary
file about to replace a target whose name matches <glob>), context, generate, moderate, publish,
latest. Never set these in production.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
from pathlib import Path

_hits: dict[str, int] = {}


def _event(**fields) -> None:
    path = os.environ.get("RESEARCHDESK_TEST_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"pid": os.getpid(), **fields}) + "\n")


def hit(point: str) -> None:
    """Count a hit of `point`; SIGKILL this process if it is the one asked for."""
    spec = os.environ.get("RESEARCHDESK_KILL_AT", "")
    want, _, n = spec.rpartition(":")
    if point != want and not (want.startswith("write:") and point.startswith("write:")
                              and fnmatch.fnmatch(point[6:], want[6:])):
        return
    _hits[want] = _hits.get(want, 0) + 1
    if _hits[want] == int(n):
        _event(event="kill", point=point)
        os.kill(os.getpid(), signal.SIGKILL)


def _before(module, name: str, point: str) -> None:
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        hit(point)
        return real(*args, **kwargs)

    setattr(module, name, wrapper)


def install() -> None:
    import models.moderation
    import rag.atomic
    import rag.ingest
    import rag.store
    import reports.context
    import reports.publish
    from tests.flows.worker_hook import install as install_fakes

    real_fsync = rag.atomic._fsync_file

    def fsync_then_maybe_die(path: Path) -> None:
        real_fsync(path)
        name = Path(path).name  # .<target>.<pid>.<random>.tmp
        if name.startswith(".") and name.endswith(".tmp"):
            hit("write:" + name[1:].rsplit(".", 3)[0])

    rag.atomic._fsync_file = fsync_then_maybe_die

    real_swap = rag.store.CorpusStore._swap

    def swap(self, tmp: Path) -> None:
        real_rename = Path.rename

        def rename(src, dst):
            if Path(src) == Path(tmp):  # live is already `.old`: the second rename
                hit("swap")
            return real_rename(src, dst)

        Path.rename = rename
        try:
            real_swap(self, tmp)
        finally:
            Path.rename = real_rename

    rag.store.CorpusStore._swap = swap
    _before(rag.ingest, "_parse_changed", "parse")
    _before(reports.context, "build_context", "context")
    _before(models.moderation, "decide", "moderate")
    _before(rag.atomic, "replace_symlink", "latest")

    real_publish = reports.publish.publish_report

    def publish_report(report, out_dir):
        _event(event="publish-start", ticker=report.ticker)
        hit("publish")
        written = real_publish(report, out_dir)
        _event(event="publish-done", ticker=report.ticker, run_dir=str(out_dir))
        return written

    reports.publish.publish_report = publish_report
    install_fakes()  # fake engine + fake-hash embedder; wraps our publish_report too
    from tests.flows import worker_hook

    real_generate = worker_hook.LoggedFakeEngine.generate

    def generate(self, requests):
        hit("generate")
        return real_generate(self, requests)

    worker_hook.LoggedFakeEngine.generate = generate
    from tests import fakes

    real_encode = fakes.HashEmbedder.encode

    def encode(self, *args, **kwargs):
        hit("embed")
        return real_encode(self, *args, **kwargs)

    fakes.HashEmbedder.encode = encode
