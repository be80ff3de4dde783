"""Fault-injection tests: registers the `faults_long` marker (skipped unless selected)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import harness


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "faults_long: every kill point of the fault harness (slow)")


def pytest_collection_modifyitems(config, items) -> None:
    if "faults_long" in (config.getoption("-m") or "") or os.environ.get("RESEARCHDESK_FAULTS_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long fault run: use -m faults_long or RESEARCHDESK_FAULTS_LONG=1")
    for item in items:
        if "faults_long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server for every child of the fault tests (each would otherwise start its own)."""
    home = tmp_path_factory.mktemp("prefect") / "home"
    home.mkdir()
    with harness.prefect_server(home) as url:
        yield url


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Path:
    """var/index of one clean ingest of the harness data, copied into each run-point test (those
    kill the report run, not ingest, which has its own points)."""
    root = tmp_path_factory.mktemp("ingested")
    done = harness.child(harness.make_env(root, prefect_api), ["ingest"])
    assert done.returncode == 0, done.stderr[-1500:]
    return root / "var" / "index"
