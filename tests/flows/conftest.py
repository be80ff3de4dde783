"""Flow tests run against Prefect's test harness (a temporary local API) with the fakes wired in."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

import flows  # noqa: F401  (offline Prefect environment)
from flows.resources import register_embedder, register_engine
from tests.fakes import FakeEngine, HashEmbedder, word_budget

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session", autouse=True)
def prefect_api(tmp_path_factory):
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def aapl_data_dir(root: Path) -> Path:
    """A real data dir holding Apple's 10-K, companyfacts and news, and the Wikipedia pages."""
    data = root / "data"
    for sub in ("sec/filings", "sec/companyfacts", "news", "wikipedia"):
        (data / sub).mkdir(parents=True)
    shutil.copy(DATA / "sec" / "company_tickers.json.gz", data / "sec")
    shutil.copy(DATA / "sec" / "filings" / "aapl-10-k-2024-11-01.html.gz", data / "sec" / "filings")
    shutil.copy(next((DATA / "sec" / "companyfacts").glob("*AAPL*")), data / "sec" / "companyfacts")
    shutil.copy(DATA / "news" / "AAPL.csv.gz", data / "news")
    shutil.copy(DATA / "wikipedia" / "companies.jsonl.gz", data / "wikipedia")
    return data


@pytest.fixture
def sample_data(tmp_path: Path) -> Path:
    """AAPL complete, plus TSLA with a corrupt 10-K (a truncated download: the gzip stream stops half way)."""
    data = aapl_data_dir(tmp_path)
    raw = (DATA / "sec" / "filings" / "tsla-10-k-2025-01-30.html.gz").read_bytes()
    (data / "sec" / "filings" / "tsla-10-k-2025-01-30.html.gz").write_bytes(raw[: len(raw) // 2])
    return data


def write_news(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["title,published,descriptionText,storyPath"]
    for i, (title, body) in enumerate(rows):
        lines.append(f'"{title}",{1748000000000 + i * 60000},"{body}",https://example.com/n/{i}')
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def register_fakes(engine: FakeEngine) -> None:
    """Engine "fake" (this `engine` for every preset, word-count prompt budget) and embedder
    "fake-hash", by name in flows/resources.py; registering clears its caches."""
    register_engine("fake", lambda *_: engine, budget=lambda *_: word_budget())
    embedder = HashEmbedder()
    register_embedder("fake-hash", lambda: embedder)


@pytest.fixture
def fakes(monkeypatch, sample_data: Path, tmp_path: Path):
    """Point settings at the sample and select the fake engine and embedder; yields the fake engine."""
    monkeypatch.setenv("RESEARCHDESK_DATA_DIR", str(sample_data))
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RESEARCHDESK_WATCHLIST", "AAPL,TSLA")
    engine = FakeEngine()
    register_fakes(engine)
    monkeypatch.setenv("RESEARCHDESK_ENGINE", "fake")
    monkeypatch.setenv("RESEARCHDESK_EMBEDDER", "fake-hash")
    return engine
