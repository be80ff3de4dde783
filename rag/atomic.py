"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every single-file write that another process (or the next run after a crash) may read goes
through here: reports and run manifests, ingest's `files.json` and summary, the facts and risk
factor tables, the EDGAR state and downloads, the embedding cache, batch request files.

How: the data goes to a temporary file in the target's directory (`os.replace` is only atomic
within one filesystem), is flushed and fsynced, then `os.replace`d over the target; the directory
is fsynced too, so the rename itself survives a power loss. On any failure the temporary file is
removed and the old target is left as it was. Lives in `rag/`, the lowest package, so every
package may use it.

Directory swaps (a corpus store, a model cache: a whole folder built aside and renamed into
place) are a different mechanism and stay with their owners (rag/store.py, models/weights.py).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o644  # mkstemp creates 0600; what we write is meant to be read by others


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def write_atomic(path: str | Path, data: str | bytes) -> str:
    """Replace `path` with `data` (str is written as UTF-8) atomically; returns the sha256 hex."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_open(path, "wb") as fh:
        fh.write(payload)
    return sha256_hex(payload)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """A file object to write `path` through (np.savez, json.dump, line by line ...).

    The target is replaced when the block exits cleanly; an exception inside the block leaves it
    untouched. Text modes default to UTF-8.
    """
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh  # closed before atomic_path fsyncs and replaces


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` for writers that want a file name (parquet, faiss).

    Write the whole file to the yielded path; on a clean exit it is fsynced and replaces `path`.
    The temporary name ends in `.tmp`, so a writer that appends its own suffix to names without
    one (np.savez adds `.npz`) must be given a file object instead: use `atomic_open`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def replace_symlink(link: str | Path, target: str) -> None:
    """Point the symlink `link` at `target` in one rename, so a reader never finds it missing."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(link.parent)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in `folder` (recursively).

    A temporary name carries its writer's pid (`.<target>.<pid>.<random>.tmp`); one whose process
    is gone can never be renamed into place, and in a published run folder it would be served and
    listed. Files of a live writer are kept, so this is safe while another run writes. Returns the
    files removed.
    """
    removed = []
    for tmp in Path(folder).rglob(".*.tmp"):
        parts = tmp.name.rsplit(".", 3)  # ['.<target>', '<pid>', '<random>', 'tmp']
        if len(parts) == 4 and parts[1].isdigit() and not _alive(int(parts[1])) and tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the replace is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
