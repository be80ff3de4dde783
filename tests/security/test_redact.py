"""Planted secrets are masked by flows/redact.py."""

from __future__ import annotations

import json

from flows.redact import redact_settings, redact_text
from flows.settings import Settings

KEY_ID = "AKIAPLANTED1234567890"
SECRET = "plantedSecretValue/abcdEFGH1234567890xyz"


def test_redact_text_masks_userinfo_keys_emails_and_env_secrets(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    text = (
        f"s3://{KEY_ID}:{SECRET}@bucket/x https://user:pass@host/p "
        f"UA Acme planted.person@acme.example key {KEY_ID} raw {SECRET}"
    )
    out = redact_text(text)
    for planted in (KEY_ID, SECRET, "user:pass", "planted.person@acme.example"):
        assert planted not in out
    assert "s3://***@bucket/x" in out and "https://***@host/p" in out
    assert redact_text(out) == out
    assert redact_text("revenue $391,035M https://www.sec.gov/x") == "revenue $391,035M https://www.sec.gov/x"


def test_redact_settings_dump_has_no_planted_values(monkeypatch):
    monkeypatch.setenv("RESEARCHDESK_EDGAR_USER_AGENT", "Acme Research planted.person@acme.example")
    # in a URL's userinfo the secret's "/" is percent-encoded (RFC 3986); settings refuse a raw one
    url_secret = SECRET.replace("/", "%2F")
    monkeypatch.setenv("RESEARCHDESK_RESULT_STORE", f"s3://{KEY_ID}:{url_secret}@bucket/results")
    dumped = redact_settings(json.loads(Settings().model_dump_json()))
    text = json.dumps(dumped)
    assert KEY_ID not in text and url_secret not in text and "planted.person" not in text
    assert "plantedSecretValue" not in text
    assert dumped["edgar_user_agent"] == "Acme Research ***"
    assert dumped["result_store"] == "s3://***@bucket/results"


def test_log_filter_masks_planted_values(caplog):
    import logging

    from flows.logs import RedactSecrets

    logger = logging.getLogger("tests.security.redact")
    logger.addFilter(RedactSecrets())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("store %s ua %s", f"s3://{KEY_ID}:{SECRET}@bucket/r", "Acme planted.person@acme.example")
    assert caplog.records and KEY_ID not in caplog.text and "planted.person" not in caplog.text
    assert "s3://***@bucket/r" in caplog.text


def test_api_log_handler_and_tracebacks_are_redacted(monkeypatch):
    """The Prefect API's copy of run logs (APILogHandler) gets the filter too, tracebacks included."""
    import logging
    import sys

    from flows.logs import RedactSecrets, install_redaction

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    handlers = install_redaction()
    api = [h for h in logging.getLogger("prefect.flow_runs").handlers if type(h).__name__ == "APILogHandler"]
    assert api and all(h in handlers for h in api)
    install_redaction()  # idempotent
    assert [sum(isinstance(f, RedactSecrets) for f in h.filters) for h in api] == [1] * len(api)
    try:
        raise RuntimeError(f"upload failed with {SECRET}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "store %s failed",
                               (f"s3://{KEY_ID}:{SECRET}@bucket/x",), exc_info)
    assert api[0].filter(record)
    text = logging.Formatter().format(record)
    assert "Traceback" in text and "upload failed with ***" in text and "s3://***@bucket/x" in text
    assert SECRET not in text and KEY_ID not in text
