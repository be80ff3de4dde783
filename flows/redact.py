"""Secrets out of everything we write: manifests, logs, artifacts, reports.

Why one module: the manifest dumps Settings, logs quote URLs and errors, and each writer would
otherwise grow its own partial scrubber. `redact_text` removes URL userinfo (s3://KEY:SECRET@bucket,
https://user:pass@host), AWS access key ids (AKIA/ASIA...), values of AWS secret env vars, and
e-mail addresses (the EDGAR User-Agent); `redact_settings` applies it to a Settings dump and blanks
the e-mail in `edgar_user_agent`.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>[^/@\s\"'<>:]+(?::[^@\s\"'<>]*)?)@")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,20}\b")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def redact_text(text: str) -> str:
    """`text` with credentials masked; idempotent, and a no-op on text holding none."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    out = _AWS_KEY_ID.sub(MASK, out)
    out = _EMAIL.sub(MASK, out)
    for name in _SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 8:  # a short value would mask ordinary words
            out = out.replace(value, MASK)
    return out


def redact_settings(dumped: dict[str, Any]) -> dict[str, Any]:
    """A JSON dump of Settings with every string value redacted (nested lists/dicts too)."""
    return {key: _redact_value(value) for key, value in dumped.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v) for v in value]
    return value
