"""Console logging of the `researchdesk` CLI: a failure is one line, never a traceback.

Problem: Prefect's engines log every failed task and flow run with `exc_info` ("Task run failed
with exception: ...", "Encountered exception during execution: ..."), and a subflow's exception
is logged again by each parent flow, so one "nothing ingested" printed ~60 lines of traceback
around the CLI's own one-line error. Solution: in CLI mode only (flows/cli.py calls
`install_one_line_errors` unless `--debug`), a `logging.Filter` on the console handlers that
Prefect configured keeps each record's message and drops its traceback, and drops a record whose
exception (same type, same message) was already logged, i.e. the same error re-raised by a parent
flow, or an error line quoting it as "Type: message" (Prefect's "Finished in state Failed(...)").
Deployments and workers never call it: their logs keep the tracebacks.

Why a handler filter and not PREFECT_LOGGING_SETTINGS_PATH: a logging.yml of our own would have to
copy all of Prefect's and follow its changes; a filter added after Prefect's `setup_logging`
(run when `prefect` is imported) touches nothing else. The API log handler runs before the
console handler (it sits on `prefect.flow_runs`/`prefect.task_runs`, the console one on the root
logger), so the run's logs in the Prefect API still carry the traceback.
"""

from __future__ import annotations

import logging


class OneLineErrors(logging.Filter):
    """Keeps a record's message, drops its traceback; drops a repeat of an exception already shown."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()  # "Type: message" of each exception shown

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if exc is not None:
            key = f"{type(exc).__name__}: {exc}"
            if key in self._seen:  # the same error, re-raised and logged again by a parent flow
                return False
            if str(exc):  # an empty message would match every line naming the type
                self._seen.add(key)
        elif record.levelno >= logging.ERROR and any(key in record.getMessage() for key in self._seen):
            # Prefect's state line after it ("Finished in state Failed('Task run encountered an
            # exception NoDataError: ...')") names the same exception again; a distinct error does not
            return False
        # handlers share the record: later ones must not find the traceback either
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def _console_handlers() -> list[logging.Handler]:
    """Prefect's handlers that write to a terminal stream (its console handler on the root and on
    uvicorn/fastapi, its debug handler): only Prefect's, so a handler someone else added (pytest's
    log capture, when a test calls the CLI in-process) keeps what it records."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and type(handler).__module__.startswith("prefect."):
                seen.setdefault(id(handler), handler)
    return list(seen.values())


def install_one_line_errors() -> OneLineErrors:
    """Add the filter to the console handlers (importing Prefect first, which creates them).

    Idempotent: a handler that already has a OneLineErrors filter is left as it is.
    """
    # `import prefect` is lazy; its first public name loads prefect/main.py, which runs setup_logging
    from prefect import flow  # noqa: F401

    one_line, redact = OneLineErrors(), RedactSecrets()
    for handler in _console_handlers():
        if not any(isinstance(f, OneLineErrors) for f in handler.filters):
            handler.addFilter(one_line)
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(redact)  # credentials never reach the console (flows/redact.py)
    return one_line


class RedactSecrets(logging.Filter):
    """Masks credentials (flows/redact.py) in a record's formatted message and its traceback text,
    so a URL with userinfo or an e-mail in the EDGAR User-Agent never reaches a console or the API."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flows.redact import redact_text

        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # Formatter.format uses exc_text when it is set
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def _prefect_handlers() -> list[logging.Handler]:
    """Every handler Prefect's logging config created: its console handlers and the APILogHandler
    on `prefect.flow_runs`/`prefect.task_runs`, which stores each run's log lines in the API's DB."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__module__.startswith("prefect."):
                seen.setdefault(id(handler), handler)
    return list(seen.values())


def install_redaction() -> list[logging.Handler]:
    """RedactSecrets on every Prefect handler (importing Prefect first, which creates them), in
    every mode, `--debug` included: the API's copy of a run's logs outlives the terminal's.
    Idempotent; returns the handlers it covers."""
    from prefect import flow  # noqa: F401

    handlers = _prefect_handlers()
    for handler in handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    return handlers
