"""Two ingests at once (real processes), and crashes mid-ingest leaving the previous index intact.

Data: the shipped AAPL news CSV and Wikipedia articles from data/, embedded with HashEmbedder.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from rag.ingest import ingest
from rag.ingest_lock import OWNER_FILE
from rag.store import CorpusStore
from tests.fakes import HashEmbedder

DATA = Path(__file__).resolve().parents[2] / "data"


class SlowHashEmbedder(HashEmbedder):
    """Holds the lock long enough for a second process to arrive while the first is embedding."""

    def encode(self, texts, batch_size=64, progress=None):
        time.sleep(1.5)
        return super().encode(texts, batch_size, progress)


class CrashingEmbedder(HashEmbedder):
    """Embeds the first corpus, then dies the way a killed or OOM worker would, mid-ingest."""

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=64, progress=None):
        self.calls += 1
        if self.calls > 1:
            raise MemoryError("simulated crash while embedding the second corpus")
        return super().encode(texts, batch_size, progress)


def _data(root: Path, tickers=("AAPL",), wiki_lines: int = 8) -> Path:
    (root / "news").mkdir(parents=True, exist_ok=True)
    (root / "wikipedia").mkdir(exist_ok=True)
    for t in tickers:
        (root / "news" / f"{t}.csv.gz").write_bytes((DATA / "news" / f"{t}.csv.gz").read_bytes())
    lines = gzip.decompress((DATA / "wikipedia" / "companies.jsonl.gz").read_bytes()).splitlines()
    (root / "wikipedia" / "companies.jsonl.gz").write_bytes(
        gzip.compress(b"\n".join(lines[:wiki_lines]) + b"\n")
    )
    return root


def _worker(name: str, data: str, index: str, out: str, slow: bool) -> None:
    """Runs in a fresh (spawned) process: one ingest, with timestamps and progress messages recorded."""
    messages: list[str] = []
    record = {"pid": os.getpid(), "start": time.time()}
    embedder = SlowHashEmbedder() if slow else HashEmbedder()
    summary = ingest(Path(data), Path(index), embedder, progress=messages.append)
    record.update(end=time.time(), messages=messages, summary=summary.to_json())
    Path(out, f"{name}.json").write_text(json.dumps(record))


def test_second_ingest_waits_for_the_first_and_sees_its_results(tmp_path: Path):
    data, index = _data(tmp_path / "data"), tmp_path / "index"
    ctx = multiprocessing.get_context("spawn")  # no fork: the parent may already run OpenMP threads
    first = ctx.Process(target=_worker, args=("first", str(data), str(index), str(tmp_path), True))
    first.start()
    deadline = time.time() + 60
    while not (index / OWNER_FILE).exists() or (index / OWNER_FILE).read_text() != str(first.pid):
        assert time.time() < deadline and first.is_alive(), "first ingest never took the lock"
        time.sleep(0.05)
    second = ctx.Process(target=_worker, args=("second", str(data), str(index), str(tmp_path), False))
    second.start()
    first.join(120)
    second.join(120)
    assert first.exitcode == 0 and second.exitcode == 0
    a = json.loads((tmp_path / "first.json").read_text())
    b = json.loads((tmp_path / "second.json").read_text())
    assert f"waiting for another ingest (pid {first.pid}) to finish" in b["messages"]
    assert not any("waiting" in m for m in a["messages"])
    assert a["start"] < b["start"] < a["end"] < b["end"]  # second started inside, finished after the first
    # the second one ran on the first one's index: every file unchanged, nothing parsed or embedded
    assert a["summary"]["documents"] > 0 and a["summary"]["corpora"]["news"]["passages"] > 0
    assert b["summary"]["files_skipped_unchanged"] == b["summary"]["files_seen"] == a["summary"]["files_seen"]
    assert b["summary"]["documents"] == 0
    assert b["summary"]["corpora"]["news"]["passages"] == a["summary"]["corpora"]["news"]["passages"]
    assert not any(m.startswith("embed") for m in b["messages"])


def _passage_ids(index: Path, corpus: str) -> list[str]:
    return list(CorpusStore.load(index, corpus).table["passage_id"])


def test_crash_mid_ingest_keeps_previous_index_and_next_run_finishes(tmp_path: Path):
    data, index = _data(tmp_path / "data", wiki_lines=4), tmp_path / "index"
    ingest(data, index, HashEmbedder())
    before = {c: _passage_ids(index, c) for c in ("news", "wikipedia")}
    files_before = (index / "files.json").read_text()
    # new data for both corpora; the embedder dies on the second one (news embeds first, then wikipedia)
    _data(data, tickers=("AAPL", "NVDA"), wiki_lines=8)
    with pytest.raises(MemoryError):
        ingest(data, index, CrashingEmbedder())
    assert _passage_ids(index, "wikipedia") == before["wikipedia"]  # previous index, same passages
    assert not (index / "wikipedia.tmp").exists() or not (index / "wikipedia.tmp" / "meta.json").exists()
    assert len(_passage_ids(index, "news")) > len(before["news"])  # the finished corpus was swapped in
    assert (index / "files.json").read_text() == files_before  # so the next run re-reads the changed files
    summary = ingest(data, index, HashEmbedder())
    assert summary.corpora["wikipedia"]["docs_added"] == 4 and not summary.failures
    assert set(before["wikipedia"]) < set(_passage_ids(index, "wikipedia"))


def test_crash_between_the_two_renames_is_recovered(tmp_path: Path, monkeypatch):
    data, index = _data(tmp_path / "data"), tmp_path / "index"
    ingest(data, index, HashEmbedder())
    before = _passage_ids(index, "news")
    store = CorpusStore.load(index, "news")
    real_rename = Path.rename

    def dies_after_moving_the_live_copy_away(self: Path, target):
        if self.name.endswith(".tmp"):
            raise OSError("simulated power loss between renames")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", dies_after_moving_the_live_copy_away)
    with pytest.raises(OSError, match="power loss"):
        store.save()
    monkeypatch.undo()
    assert not (index / "news").exists() and (index / "news.old" / "meta.json").exists()
    assert _passage_ids(index, "news") == before  # load() moved `.old` back
    again = ingest(data, index, HashEmbedder())
    assert again.files_skipped_unchanged == again.files_seen and again.corpora["news"]["passages"] == len(
        before
    )
