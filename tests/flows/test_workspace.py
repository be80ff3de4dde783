"""flows/workspace.py: the var folder preflight names the folder and what to do, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.workspace import check_workspace
from rag.errors import ConfigError


def test_a_writable_folder_with_room_passes_and_leaves_no_probe(tmp_path: Path) -> None:
    check_workspace([tmp_path / "var" / "reports"], min_free=0)
    assert list((tmp_path / "var" / "reports").iterdir()) == []  # created, probe removed


def test_too_little_free_space_is_refused_with_the_numbers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"only [\d.]+ MB free on the disk of .* needs at least \d+ MB"):
        check_workspace([tmp_path], min_free=2**62)


def test_a_folder_that_cannot_be_created_names_it(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("a file where the folder should be")
    with pytest.raises(ConfigError, match=r"cannot write to .*var/reports: Not a directory; fix its permissions"):
        check_workspace([tmp_path / "var" / "reports"])


def test_the_cli_refuses_a_nearly_full_disk_before_any_flow(tmp_path, monkeypatch, capsys) -> None:
    import shutil

    import flows.cli as cli

    data = Path(__file__).resolve().parents[2] / "data"
    (tmp_path / "data" / "sec").mkdir(parents=True)
    shutil.copy(data / "sec" / "company_tickers.json.gz", tmp_path / "data" / "sec")
    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RESEARCHDESK_MIN_FREE_MB", str(2**40))
    assert cli.main(["report", "AAPL"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: only ") and len(err.strip().splitlines()) == 1, err
