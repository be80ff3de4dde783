"""Fuzzing: every registered source parser and both facts readers, fed random bytes, random text,
truncated and mutated real files, either return documents/facts or raise SourceError — nothing else.

Parametrized over `rag.sources.SOURCES`, so a newly registered source is fuzzed without edits here.
Seeds are the real files each parser reads: the shipped sample in `data/` and the news format
fixtures (real shipped articles as JSON/RSS/Atom/CSV) in `tests/fixtures/news/`, and for PDF (no
PDF ships in data/) the real FinanceBench pages in `tests/fixtures/financebench/`.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import facts as facts_mod
from rag.errors import SourceError
from rag.press_facts import facts_from_press_release
from rag.sources import SOURCES, collect_skips
from rag.types import Document, Fact
from rag.xbrl_instance import facts_from_instance

ROOT = Path(__file__).resolve().parents[2]
SEED_DIRS = (ROOT / "data", ROOT / "tests" / "fixtures")
# real samples kept outside the source's own pattern, by source name
EXTRA_SEEDS = {"pdf": ("financebench/*.pdf",)}
MAX_SEEDS = 2  # smallest real files per parser: enough variety, and keeps each example fast
MAX_TEXT = 3000


def _seeds(patterns: tuple[str, ...], name: str = "") -> list[Path]:
    patterns = patterns + EXTRA_SEEDS.get(name, ())
    found = {p for d in SEED_DIRS for pat in patterns for p in d.glob(pat) if p.is_file()}
    return sorted(found, key=lambda p: (p.stat().st_size, p.name))[:MAX_SEEDS]


@cache
def _plain(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _target_name(patterns: tuple[str, ...], seeds: list[Path]) -> str:
    """Relative path the fuzzed file is written to: a real seed's name, else the first pattern."""
    if seeds:
        for d in SEED_DIRS:
            if seeds[0].is_relative_to(d):
                return str(seeds[0].relative_to(d))
    return patterns[0].replace("*", "sample")


TARGETS: list[tuple[str, Callable[[Path], list], tuple[str, ...]]] = [
    (spec.name, spec.parse, spec.patterns) for spec in SOURCES.values()
] + [
    ("companyfacts", facts_mod.facts_from_companyfacts, ("sec/companyfacts/companyfacts_*.json.gz",)),
    ("inline-xbrl", facts_mod.facts_from_inline_xbrl, ("sec/filings/*-10-q-*.html.gz",)),
    ("xbrl-instance", facts_from_instance, ("xbrl/*_htm.xml.gz",)),
    ("press-release", facts_from_press_release, ("sec8k/*EX99*.html.gz",)),
]


def _inputs(seeds: list[Path]) -> st.SearchStrategy[tuple[bytes, bool]]:
    """(content, already_encoded): random bytes are written as is, everything else gzipped when the
    target name ends in .gz, so the parser gets past decompression and into its own code."""
    random_bytes = st.binary(max_size=MAX_TEXT).map(lambda b: (b, True))
    random_text = st.text(max_size=MAX_TEXT).map(lambda s: (s.encode("utf-8", "surrogatepass"), False))
    options = [random_bytes, random_text]
    if seeds:
        seed = st.sampled_from(seeds).map(_plain)
        truncated = st.tuples(seed, st.floats(0, 1)).map(lambda t: (t[0][: int(len(t[0]) * t[1])], False))
        raw_cut = st.tuples(st.sampled_from(seeds), st.floats(0, 1)).map(
            lambda t: (t[0].read_bytes()[: int(t[0].stat().st_size * t[1])], True)
        )
        mutated = st.tuples(seed, st.floats(0, 1), st.integers(0, 200), st.binary(max_size=64)).map(
            lambda t: (t[0][: int(len(t[0]) * t[1])] + t[3] + t[0][int(len(t[0]) * t[1]) + t[2] :], False)
        )
        options += [truncated, raw_cut, mutated]
    return st.one_of(options)


def _data_dir(tmp: str) -> Path:
    """A scratch data dir with the real ticker list, as parsers see it under ingest."""
    (Path(tmp) / "sec").mkdir()
    catalog = ROOT / "data" / "sec" / "company_tickers.json.gz"
    (Path(tmp) / "sec" / catalog.name).write_bytes(catalog.read_bytes())
    return Path(tmp)


def _run(parse: Callable[[Path], list], path: Path, content: bytes, encoded: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz") and not encoded:
        content = gzip.compress(content, mtime=0)
    path.write_bytes(content)
    try:
        with collect_skips():
            out = parse(path)
    except SourceError as exc:
        assert str(exc), "SourceError without a message"
        return
    assert isinstance(out, list)
    assert all(isinstance(x, Document | Fact) for x in out)


@pytest.mark.parametrize("name, parse, patterns", TARGETS, ids=[t[0] for t in TARGETS])
def test_parser_returns_documents_or_source_error(name, parse, patterns):
    seeds = _seeds(patterns, name)
    rel = _target_name(patterns, seeds)

    with tempfile.TemporaryDirectory() as tmp:
        path = _data_dir(tmp) / rel

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(_inputs(seeds))
        def fuzz(case: tuple[bytes, bool]) -> None:
            _run(parse, path, *case)

        fuzz()


@pytest.mark.parametrize("name, parse, patterns", TARGETS, ids=[t[0] for t in TARGETS])
def test_real_seed_still_parses(name, parse, patterns):
    """The seeds are real inputs: each parses cleanly, so the fuzzing starts from working files."""
    seeds = _seeds(patterns, name)
    if not seeds:
        pytest.skip(f"no real sample for {name} in data/ or tests/fixtures/")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            path = _data_dir(tmp) / _target_name(patterns, [seed])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(seed.read_bytes())
            with collect_skips():
                assert parse(path), f"{seed} gave nothing"


# Inputs random generation practically never produces; the first three crashed the Wikipedia and
# companyfacts readers (RecursionError out of json.loads) before they were fixed.
HOSTILE = {
    "deep-json-array": b"[" * 100_000,
    "deep-json-object": b'{"a":' * 100_000,
    "deep-json-in-record": b'{"wiki_title_used": "x", "title": "x", "clean_text": ' + b"[" * 100_000 + b"}\n",
    "deep-html": b"<html><body>" + b"<div>" * 20_000 + b"Item 1. Business" + b"</div>" * 20_000,
    "entity-expansion": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><rss><channel><item><title>&c;</title></item></channel></rss>'
    ),
    "huge-csv-field": b'title,date\n"' + b"x" * 200_000 + b'",2025-05-23\n',
    "nul-bytes": b"title,date\n\x00\x00,2025-05-23\n",
    "bom-only": b"\xef\xbb\xbf",
    "whitespace-only": b" \r\n\t\r\n",
    "nan-values": b'{"facts": {"us-gaap": {"Revenues": {"units": {"USD": [{"form": "10-K", "start": '
    b'"2024-01-01", "end": "2024-12-31", "val": NaN}]}}}}, "title": "x", "published": NaN}',
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("name, parse, patterns", TARGETS, ids=[t[0] for t in TARGETS])
def test_hostile_input(name, parse, patterns, case):
    with tempfile.TemporaryDirectory() as tmp:
        path = _data_dir(tmp) / _target_name(patterns, _seeds(patterns, name))
        _run(parse, path, HOSTILE[case], encoded=False)


def test_companyfacts_drops_non_finite_values(tmp_path: Path):
    path = tmp_path / "companyfacts_CIK0000320193_AAPL.json"
    path.write_bytes(HOSTILE["nan-values"])
    assert facts_mod.facts_from_companyfacts(path) == []
