"""Registry of document sources: ingest discovers files by glob and parses them by name.

Extend by registration, not subclassing: a source module calls `register(SourceSpec(...))` at
import time and gets one import line at the bottom of this file.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.types import Document


@dataclass(frozen=True)
class SourceSpec:
    """How to find and parse one kind of input under the data dir."""

    name: str  # registry key, e.g. "filings"
    corpus: str  # corpus the documents go to ("filings" | "news" | "wikipedia")
    patterns: tuple[str, ...]  # glob patterns relative to the data dir, e.g. "sec/filings/*.html.gz"
    parse: Callable[[Path], list[Document]]  # one input file -> its documents; raises SourceError

    def files(self, data_dir: Path) -> list[Path]:
        """Matching input files, sorted and de-duplicated, so ingest order is reproducible."""
        found = {p for pattern in self.patterns for p in Path(data_dir).glob(pattern) if p.is_file()}
        return sorted(found)


SOURCES: dict[str, SourceSpec] = {}


def register(spec: SourceSpec) -> SourceSpec:
    """Add a source; a second registration under the same name is a bug, not an override."""
    if spec.name in SOURCES and SOURCES[spec.name] != spec:
        raise ValueError(f"source {spec.name!r} is already registered")
    SOURCES[spec.name] = spec
    return spec


# A parser that drops PART of a file (one bad record, a missing exhibit) keeps the rest and says so
# through `skipped(...)`; ingest collects these per file into the summary's `skips`, so nothing is
# lost silently. A parser that cannot use the file at all raises SourceError instead.
_SKIPS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("researchdesk_skips", default=None)


def skipped(reason: str) -> None:
    """Record that part of the file being parsed was dropped, and why (shown to the user)."""
    sink = _SKIPS.get()
    if sink is not None:
        sink.append(reason)


@contextmanager
def collect_skips() -> Iterator[list[str]]:
    """Collect `skipped(...)` reasons raised while parsing inside this block."""
    sink: list[str] = []
    token = _SKIPS.set(sink)
    try:
        yield sink
    finally:
        _SKIPS.reset(token)


# Source modules register themselves on import (after SourceSpec/register exist, hence at the
# bottom); add each new source module's name to this import.
from rag.sources import filings, news, pdf, submissions, wikipedia  # noqa: E402,F401
