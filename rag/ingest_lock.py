"""One ingest at a time per index directory: the seed's "one process prepares, the others wait".

Two ingests into the same index (the nightly flow and an analyst's on-demand run, or two workers)
would each read the old index, add their passages and swap in their own copy, so the last one to
finish would silently drop the other's work. Instead the second one blocks on an OS file lock in the
index directory, says whose turn it waits for, and then runs against the index the first one left:
files the first one ingested are skipped as unchanged.

The lock is `flock` (via filelock), so it is released when its holder exits or crashes; the holder's
pid is written to a separate file for the waiting message only (filelock truncates its own file).
On a network file system without working `flock`, run ingests from one host.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from rag.atomic import remove_stale_temps

LOCK_FILE = ".ingest.lock"
OWNER_FILE = ".ingest.owner"
T = TypeVar("T")


def _owner(index_dir: Path) -> str:
    try:
        return (index_dir / OWNER_FILE).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def ingest_lock(index_dir: Path, progress: Callable[[str], None] = lambda msg: None) -> Iterator[None]:
    """Hold the index directory's ingest lock for the duration of the block, waiting if it is taken."""
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        progress(f"waiting for another ingest (pid {_owner(index_dir)}) to finish")
        lock.acquire(timeout=-1, poll_interval=0.2)
    try:
        (index_dir / OWNER_FILE).write_text(str(os.getpid()))
        remove_stale_temps(index_dir)  # left by an ingest killed mid-write
        yield
    finally:
        lock.release()


def holds_ingest_lock(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate a function taking `index_dir` (and optionally `progress`) to run under the lock."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def locked(*args, **kwargs) -> T:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        progress = bound.arguments.get("progress") or (lambda msg: None)
        with ingest_lock(Path(bound.arguments["index_dir"]), progress):
            return fn(*args, **kwargs)

    return locked
