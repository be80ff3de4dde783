"""rag/atomic.py: whole-file replacement, no torn files, no temp files left; and ingest uses it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.atomic import atomic_open, atomic_path, write_atomic

DATA = Path(__file__).resolve().parents[2] / "data"


def _broken_replace(src, dst):
    raise OSError("disk full")


@pytest.mark.parametrize(
    ("data", "expected"),
    [("näive text ✓\n", "näive text ✓\n".encode()), (b"\x00\xffbytes", b"\x00\xffbytes")],
)
def test_writes_text_as_utf8_and_bytes_as_they_are(tmp_path: Path, data, expected: bytes) -> None:
    target = tmp_path / "new" / "dir" / "f.json"  # parents are created
    digest = write_atomic(target, data)
    assert target.read_bytes() == expected
    assert digest == hashlib.sha256(expected).hexdigest()
    assert os.listdir(target.parent) == ["f.json"]
    assert target.stat().st_mode & 0o777 == 0o644  # readable by others, not mkstemp's 0600


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old, and longer than the new content")
    write_atomic(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["f.txt"]


def test_failed_replace_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.txt"
    write_atomic(target, "old")
    monkeypatch.setattr(os, "replace", _broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_error_inside_a_writer_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    write_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write("half a ro")
        raise RuntimeError("writer died")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["rows.jsonl"]


def test_file_object_and_path_writers(tmp_path: Path) -> None:
    """np.savez through a file object (a path would get `.npz` appended); parquet through a path."""
    import pandas as pd

    npz = tmp_path / "cache.npz"
    with atomic_open(npz) as fh:
        np.savez(fh, a=np.arange(3))
    with np.load(npz) as data:
        assert data["a"].tolist() == [0, 1, 2]
    table = tmp_path / "t.parquet"
    with atomic_path(table) as tmp:
        assert tmp.parent == tmp_path and tmp != table
        pd.DataFrame({"x": [1, 2]}).to_parquet(tmp, engine="pyarrow", index=False)
    assert pd.read_parquet(table)["x"].tolist() == [1, 2]
    assert sorted(os.listdir(tmp_path)) == ["cache.npz", "t.parquet"]


def _news_data(root: Path) -> Path:
    (root / "news").mkdir(parents=True)
    (root / "news" / "AAPL.csv.gz").write_bytes((DATA / "news" / "AAPL.csv.gz").read_bytes())
    return root


def test_ingest_writes_files_json_and_summary_by_temp_then_replace(tmp_path: Path, monkeypatch) -> None:
    from rag.ingest import SUMMARY_FILE, ingest
    from tests.fakes import HashEmbedder

    data, index = _news_data(tmp_path / "data"), tmp_path / "index"
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append((Path(src), Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    ingest(data, index, HashEmbedder())
    by_target = {dst.name: src for src, dst in replaced}
    for name in ("files.json", SUMMARY_FILE):
        src = by_target[name]  # written to a temp file beside the target, then renamed over it
        assert src.parent == index and src.name != name
    files_before = (index / "files.json").read_text()
    assert json.loads(files_before)

    # A crash while replacing files.json on the next run: the old files.json survives whole.
    monkeypatch.setattr(
        os, "replace", lambda s, d: _broken_replace(s, d) if Path(d).name == "files.json" else real_replace(s, d)
    )
    with pytest.raises(OSError, match="disk full"):
        ingest(data, index, HashEmbedder())
    assert (index / "files.json").read_text() == files_before
    assert not [p for p in index.iterdir() if p.name.startswith(".files.json.")]


def test_remove_stale_temps_deletes_only_files_of_dead_writers(tmp_path: Path) -> None:
    import subprocess
    import sys

    from rag.atomic import remove_stale_temps

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    (tmp_path / "run" / "audit").mkdir(parents=True)
    stale = [tmp_path / "run" / f".manifest.json.{dead}.ab12cd.tmp", tmp_path / "run" / "audit" / f".x.jsonl.{dead}.q.tmp"]
    live = tmp_path / "run" / f".AAPL.html.{os.getpid()}.zz.tmp"  # a writer still running
    other = [tmp_path / "run" / ".keep.tmp", tmp_path / "run" / "AAPL.html"]  # no pid: not ours
    for path in [*stale, live, *other]:
        path.write_text("x")
    removed = remove_stale_temps(tmp_path / "run")
    assert sorted(removed) == sorted(stale)
    assert live.exists() and all(p.exists() for p in other) and not any(p.exists() for p in stale)


def test_temporary_names_carry_the_writer_pid(tmp_path: Path, monkeypatch) -> None:
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(Path(src).name), real(src, dst)))
    write_atomic(tmp_path / "f.json", "{}")
    assert seen and seen[0].startswith(f".f.json.{os.getpid()}.") and seen[0].endswith(".tmp")
