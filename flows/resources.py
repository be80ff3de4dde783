"""Process-wide resources: the loaded engine, prompt budget, embedder, retriever, OpenChatKit corpus.

Problem: a model takes seconds to minutes to load and a batch reuses it for every ticker,
generation and moderation alike, so each flow process loads it once; tests and the integration
test's worker need fakes in its place. Solution: this module is the only cache of those
resources, and engines and embedders are chosen by a registered NAME (DESIGN.md convention 8):
    RESEARCHDESK_ENGINE=transformers      (default) models.engine.load_engine for the preset
    RESEARCHDESK_EMBEDDER=all-MiniLM-L6-v2 (default) or a local sentence-transformers folder
A name registered with `register_engine` / `register_embedder` (tests register "fake" and
"fake-hash", tests/flows/conftest.py) wins over those; registering clears the caches, so the
next call builds the newly registered resource.

It imports only flows.settings, models/, rag/ and reports/ (no other flows module, no Prefect),
so every flow, the CLI and the benchmarks can share it without an import cycle
(`python tools/import_cycles.py`). Heavy imports (torch, transformers) happen at first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flows.settings import Settings
from models.types import Engine
from rag.errors import ConfigError
from reports.trim import PromptBudget

DEFAULT_ENGINE = "transformers"

# (preset, models_dir, batch_size) -> engine; (preset, models_dir) -> prompt budget; () -> embedder
EngineFactory = Callable[[str, str, int], Engine]
BudgetFactory = Callable[[str, str], PromptBudget]
EmbedderFactory = Callable[[], Any]


def _load_transformers(preset: str, models_dir: str, batch_size: int) -> Engine:
    from models.engine import load_engine

    return load_engine(preset, cache_dir=Path(models_dir), batch_size=batch_size)


def tokenizer_budget(preset: str, models_dir: str) -> PromptBudget:
    """The preset's own tokenizer and context size: prompts are trimmed to fit (reports/trim.py)."""
    from models.loading import prompt_counter

    return PromptBudget(*prompt_counter(preset, cache_dir=Path(models_dir)))


@dataclass(frozen=True)
class EngineSpec:
    load: EngineFactory
    budget: BudgetFactory  # the prompt budget follows the engine that will read the prompts


_ENGINES: dict[str, EngineSpec] = {DEFAULT_ENGINE: EngineSpec(_load_transformers, tokenizer_budget)}
_EMBEDDERS: dict[str, EmbedderFactory] = {}


def register_engine(name: str, factory: EngineFactory, budget: BudgetFactory = tokenizer_budget) -> None:
    """Make RESEARCHDESK_ENGINE=<name> load engines with `factory`; `budget` counts prompt tokens
    for it (default: the preset's tokenizer). Replaces an earlier registration of that name."""
    _ENGINES[name] = EngineSpec(factory, budget)
    _engine.cache_clear()
    _budget.cache_clear()


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make RESEARCHDESK_EMBEDDER=<name> use `factory()` (an object with encode/dim/signature)
    instead of loading a sentence-transformers model of that name."""
    _EMBEDDERS[name] = factory
    _embedder.cache_clear()
    shared_retriever.cache_clear()


def _engine_spec(name: str) -> EngineSpec:
    try:
        return _ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(_ENGINES))
        raise ConfigError(f"RESEARCHDESK_ENGINE={name!r}: not a registered engine (known: {known})") from None


def shared_engine(preset: str, models_dir: str, batch_size: int, engine: str | None = None) -> Engine:
    """The model is loaded once per process and reused by generation and moderation.

    `engine`: a registered engine name; None: RESEARCHDESK_ENGINE (default "transformers").
    """
    return _engine(engine or Settings().engine, preset, models_dir, batch_size)


@cache
def _engine(name: str, preset: str, models_dir: str, batch_size: int) -> Engine:
    return _engine_spec(name).load(preset, models_dir, batch_size)


def shared_prompt_budget(preset: str, models_dir: str, engine: str | None = None) -> PromptBudget:
    """How many tokens a prompt costs the engine that will run it, and its context size."""
    return _budget(engine or Settings().engine, preset, models_dir)


@cache
def _budget(name: str, preset: str, models_dir: str) -> PromptBudget:
    return _engine_spec(name).budget(preset, models_dir)


def shared_embedder(name: str):
    """One embedder per process: ingest and retrieval in the same run reuse the loaded model.

    A registered name wins; otherwise `name` is a sentence-transformers model (rag/embedding.py:
    the shipped all-MiniLM-L6-v2 or a local model folder).
    """
    return _embedder(name)


@cache
def _embedder(name: str):
    if name in _EMBEDDERS:
        return _EMBEDDERS[name]()
    from flows.settings import Settings
    from rag.embedding import Embedder

    settings = Settings()  # the backend and the exported graph's cache are per deployment, not per call
    return Embedder(
        name, backend=settings.embedder_backend or None, cache_dir=settings.var_dir / "cache" / "embedder"
    )


@cache
def shared_okc_corpus(index_dir: Path, encoder: Path | None, window: int, threshold: float):
    """OpenChatKit's Wikipedia index and its encoder, loaded once per process (see rag/okc_index.py)."""
    from rag.okc_index import open_okc_corpus

    return open_okc_corpus(index_dir, encoder, window, threshold)


@cache
def shared_retriever(index_dir: Path, embedder: str, stamp: int, okc: tuple | None = None):
    """One loaded index per process and index version (`stamp`): tickers of a run share it.

    `okc` (index dir, encoder dir, window, threshold), from settings: Wikipedia queries then go to
    OpenChatKit's pre-built index instead of the locally ingested Wikipedia articles.
    """
    from rag.retrieve import Retriever

    external = {"wikipedia": shared_okc_corpus(*okc)} if okc else {}
    return Retriever(index_dir, shared_embedder(embedder), external)


def okc_setting(settings: Settings) -> tuple | None:
    """The OpenChatKit index settings as `shared_retriever`'s hashable `okc` key (None: not set)."""
    if settings.okc_index_dir is None:
        return None
    return (settings.okc_index_dir, settings.okc_encoder, settings.okc_window, settings.okc_window_threshold)


def index_stamp(index_dir: Path) -> int:
    """Changes whenever ingest rewrites the index (it rewrites the summary last)."""
    summary = index_dir / "ingest_summary.json"
    return summary.stat().st_mtime_ns if summary.exists() else 0


def settings_retriever(settings: Settings):
    """The retriever of the configured index, embedder and OpenChatKit corpus (reports and ask)."""
    return shared_retriever(
        settings.index_dir, settings.embedder, index_stamp(settings.index_dir), okc_setting(settings)
    )
