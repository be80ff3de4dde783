"""The project's one exception hierarchy.

Every error a user can cause or fix derives from `ResearchDeskError` and carries a message that
names the thing (ticker, file, preset) and the remedy. The CLI prints these as one line; anything
else is a bug and keeps its traceback. Lives in `rag/` because it is the lowest layer every other
package already depends on.
"""

from __future__ import annotations


class ResearchDeskError(Exception):
    """Base class: a problem the user can act on, shown as one line without a traceback."""


class ConfigError(ResearchDeskError):
    """Settings or paths are wrong (missing data dir, unknown preset)."""


class UnknownTickerError(ResearchDeskError):
    """The ticker is not in SEC's company_tickers list."""


class NoDataError(ResearchDeskError):
    """The ticker is known but nothing was ingested for it."""


class SourceError(ResearchDeskError):
    """One input file could not be read or parsed; the message names the file."""


class IndexNotBuiltError(ResearchDeskError):
    """Retrieval was asked for before `researchdesk ingest` built the index."""


class ModelError(ResearchDeskError):
    """A model could not be found, loaded or run."""
