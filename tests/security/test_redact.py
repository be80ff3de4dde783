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
    monkeypatch.setenv("RESEARCHDESK_RESULT_STORE", f"s3://{KEY_ID}:{SECRET}@bucket/results")
    dumped = redact_settings(json.loads(Settings().model_dump_json()))
    text = json.dumps(dumped)
    assert KEY_ID not in text and SECRET not in text and "planted.person" not in text
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
