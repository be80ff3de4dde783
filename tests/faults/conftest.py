"""Fault-injection tests: registers the `faults_long` marker (skipped unless selected)."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "faults_long: every kill point of the fault harness (slow)")


def pytest_collection_modifyitems(config, items) -> None:
    if "faults_long" in (config.getoption("-m") or "") or os.environ.get("RESEARCHDESK_FAULTS_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long fault run: use -m faults_long or RESEARCHDESK_FAULTS_LONG=1")
    for item in items:
        if "faults_long" in item.keywords:
            item.add_marker(skip)
