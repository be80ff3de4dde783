"""Preflight of the var folder: writable and with room to work, checked before any flow starts.

Without it a full disk or a read-only reports folder surfaces late and misleadingly: Prefect's
temporary API server keeps its SQLite database under var/prefect, so a full disk reads as "timed
out waiting for the ephemeral Prefect API server", minutes in. A probe file, written, fsynced and
removed in each folder a run writes to, finds both at once and names the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rag.errors import ConfigError

MIN_FREE_BYTES = 64 * 2**20  # a run writes a few MB of reports; the index and Prefect's DB need room


def check_workspace(folders: list[Path], min_free: int = MIN_FREE_BYTES) -> None:
    """Raise ConfigError (one line) if a folder cannot be created or written, or its disk is nearly full."""
    for folder in folders:
        _check_writable(Path(folder))
        free = shutil.disk_usage(folder).free
        if free < min_free:
            raise ConfigError(
                f"only {free / 2**20:.1f} MB free on the disk of {folder} (a run needs at least "
                f"{min_free // 2**20} MB); free space there or point RESEARCHDESK_VAR_DIR elsewhere, "
                "then rerun"
            )


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".write-probe.{os.getpid()}.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"researchdesk")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot write to {folder}: {why}; fix its permissions or free space (or set "
            f"RESEARCHDESK_VAR_DIR to a writable folder), then rerun"
        ) from exc
