"""`researchdesk fetch`: settings -> Prefect flow -> live EDGAR client, against the local EDGAR server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import main
from tests.edgar_server import EdgarServer, edgar_tree

UA = "Researchdesk Tests tests@researchdesk.example"


@pytest.fixture
def env(monkeypatch, tmp_path: Path):
    server = EdgarServer(edgar_tree(tmp_path / "edgar")).start()
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RESEARCHDESK_EDGAR_WWW_URL", server.www)
    monkeypatch.setenv("RESEARCHDESK_EDGAR_DATA_URL", server.data)
    monkeypatch.setenv("RESEARCHDESK_EDGAR_FIRST_RUN", "1")
    yield server, tmp_path
    server.stop()


def test_fetch_without_user_agent_exits_2_before_any_request(env, monkeypatch, capsys):
    server, _ = env
    monkeypatch.setenv("RESEARCHDESK_EDGAR_USER_AGENT", "")
    assert main(["fetch", "--tickers", "AAPL"]) == 2
    assert "RESEARCHDESK_EDGAR_USER_AGENT" in capsys.readouterr().err
    assert server.requests == []


def test_fetch_command_downloads_then_reports_up_to_date(env, monkeypatch, capsys):
    server, root = env
    monkeypatch.setenv("RESEARCHDESK_EDGAR_USER_AGENT", UA)
    assert main(["fetch", "--tickers", "AAPL,NOPE", "--forms", "10-K"]) == 1  # NOPE failed, AAPL fetched
    out = capsys.readouterr()
    assert "AAPL   fetched" in out.out and "NOPE" in out.err
    data = root / "data"
    assert (data / "sec/filings/aapl-10-k-2024-11-01.0000320193-24-000123.html.gz").is_file()
    assert (data / "sec/companyfacts/companyfacts_CIK0000320193_AAPL.json.gz").is_file()
    state = json.loads((root / "var" / "edgar_state.json").read_text())
    assert state["ciks"]["0000320193"]["forms"]["10-K"]["last_filing_date"] == "2024-11-01"

    assert main(["fetch", "--tickers", "AAPL", "--forms", "10-K"]) == 0
    assert "AAPL   up-to-date 0 files" in capsys.readouterr().out
    assert {r.headers["User-Agent"] for r in server.requests} == {UA}
