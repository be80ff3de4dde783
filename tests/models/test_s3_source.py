"""s3://…tar[.gz] model sources against a real local S3 endpoint (moto's server over HTTP).

The archive is a tar of the tiny random GPT-NeoX saved by the fixtures; boto3 reaches the server
through AWS_ENDPOINT_URL_S3, exactly as it would reach MinIO or AWS.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import uuid
from pathlib import Path

import pytest
import torch

from models import archive
from models.loading import load_model, load_tokenizer, resolve_source
from models.presets import ModelPreset
from rag.errors import ConfigError, ModelError

BUCKET = "models"


@pytest.fixture(scope="module")
def s3():
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_S3", f"http://{host}:{port}")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    server.stop()


def _tar(model_dir: Path, gz: bool = True, top: str = "tiny-neox", skip: str = "", cut: str = "") -> bytes:
    """The model folder as a tar (optionally leaving a file out, or cutting one file in half)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for f in sorted(model_dir.iterdir()):
            if f.name == skip:
                continue
            data = f.read_bytes()
            if f.name == cut:
                data = data[: len(data) // 2]
            info = tarfile.TarInfo(f"{top}/{f.name}" if top else f.name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def tar_gz(tiny_dir: Path) -> bytes:
    return _tar(tiny_dir)


def _put(client, data: bytes, name: str = "") -> str:
    key = f"{name or uuid.uuid4().hex}.tar.gz"
    client.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def _preset(source: str) -> ModelPreset:
    return ModelPreset(name=f"s3-{uuid.uuid4().hex[:8]}", source=source, prompt_format="openchatkit")


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = archive._download

    def counting(client, bucket, key, dest, source):
        calls.append(key)
        return real(client, bucket, key, dest, source)

    monkeypatch.setattr(archive, "_download", counting)
    return calls


def _leftovers(cache_root: Path, name: str) -> list[str]:
    """Everything in the cache root but the lock file: must be empty after a failed load."""
    return sorted(p.name for p in cache_root.iterdir() if p.name != f".{name}.lock")


def test_load_unpacks_once_then_uses_the_cache(s3, tar_gz, tiny_dir, tmp_path, downloads) -> None:
    preset = _preset(_put(s3, tar_gz))
    first = load_model(preset, cache_dir=tmp_path)
    assert not first.from_cache and first.revision == "sha256:" + hashlib.sha256(tar_gz).hexdigest()[:16]
    assert first.path == tmp_path / preset.name / "tiny-neox"
    second = load_model(preset, cache_dir=tmp_path)
    assert second.from_cache and second.revision == first.revision and len(downloads) == 1
    ref = load_model(
        ModelPreset(name="ref", source=str(tiny_dir), prompt_format="openchatkit"), cache_dir=None
    )
    for (name, a), (_, b) in zip(
        ref.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert load_tokenizer(preset, cache_dir=tmp_path).encode("net sales") == ref.tokenizer.encode("net sales")
    assert _leftovers(tmp_path, preset.name) == [preset.name]


@pytest.mark.parametrize("how", ["fragment", "sidecar"])
def test_checksum_match_loads_and_mismatch_fails_clean(s3, tar_gz, tmp_path, how) -> None:
    good = hashlib.sha256(tar_gz).hexdigest()
    bad = hashlib.sha256(b"something else").hexdigest()
    for digest, ok in ((bad, False), (good, True)):
        url = _put(s3, tar_gz)
        if how == "fragment":
            url += f"#sha256={digest}"
        else:
            s3.put_object(
                Bucket=BUCKET, Key=url.split("/", 3)[3] + ".sha256", Body=f"{digest}  model.tar.gz\n"
            )
        preset = _preset(url)
        if ok:
            assert load_model(preset, cache_dir=tmp_path).revision == "sha256:" + good[:16]
        else:
            with pytest.raises(ModelError, match="does not match the expected"):
                load_model(preset, cache_dir=tmp_path)
            assert _leftovers(tmp_path, preset.name) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, t: t[: len(t) // 2], "truncated or corrupt"),  # truncated upload
        (lambda d, t: t[:200] + bytes(len(t) - 200), "truncated or corrupt"),  # corrupt gzip stream
        (lambda d, t: b"not a tar at all" * 100, "truncated or corrupt"),
        (lambda d, t: _tar(d, skip="config.json"), "no config.json"),
        (lambda d, t: _tar(d, cut="model.safetensors"), "does not load"),  # valid tar, broken weights
        (lambda d, t: _tar(d, top="../escape"), "truncated or corrupt"),  # path traversal refused
    ],
)
def test_bad_archives_fail_clearly_and_leave_nothing(s3, tar_gz, tiny_dir, tmp_path, make, message) -> None:
    preset = _preset(_put(s3, make(tiny_dir, tar_gz)))
    with pytest.raises(ModelError, match=message):
        load_model(preset, cache_dir=tmp_path)
    assert _leftovers(tmp_path, preset.name) == []
    assert not (tmp_path.parent / "escape").exists()


def test_plain_tar_and_missing_key(s3, tiny_dir, tmp_path) -> None:
    key = f"{uuid.uuid4().hex}.tar"
    s3.put_object(Bucket=BUCKET, Key=key, Body=_tar(tiny_dir, gz=False, top=""))
    loaded = load_model(_preset(f"s3://{BUCKET}/{key}"), cache_dir=tmp_path)
    assert loaded.model.config.model_type == "gpt_neox"
    with pytest.raises(ModelError, match="does not exist"):
        load_model(_preset(f"s3://{BUCKET}/missing.tar.gz"), cache_dir=tmp_path)


def test_concurrent_loads_download_once(s3, tar_gz, tmp_path, downloads) -> None:
    preset = _preset(_put(s3, tar_gz))
    results: list = []
    errors: list = []
    start = threading.Barrier(3)

    def load() -> None:
        start.wait()
        try:
            results.append(load_model(preset, cache_dir=tmp_path))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 3
    assert len(downloads) == 1 and sorted(r.from_cache for r in results) == [False, True, True]
    assert len({r.revision for r in results}) == 1


def test_changed_source_replaces_the_cache(s3, tar_gz, tiny_dir, tmp_path, downloads) -> None:
    name = "s3-changing"
    old = ModelPreset(name=name, source=_put(s3, tar_gz), prompt_format="openchatkit")
    load_model(old, cache_dir=tmp_path)
    new_tar = _tar(tiny_dir, top="v2")
    new = ModelPreset(name=name, source=_put(s3, new_tar), prompt_format="openchatkit")
    loaded = load_model(new, cache_dir=tmp_path)
    assert not loaded.from_cache and loaded.path == tmp_path / name / "v2" and len(downloads) == 2
    assert _leftovers(tmp_path, name) == [name] and not (tmp_path / name / "tiny-neox").exists()


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/model.zip",
        "s3:///model.tar",
        "s3://bucket/model.tar#md5=abc",
        "s3://bucket/m.tar#sha256=12",
    ],
)
def test_malformed_s3_urls_are_config_errors(source: str) -> None:
    with pytest.raises(ConfigError):
        resolve_source(source)


def test_s3_source_needs_a_cache_dir() -> None:
    with pytest.raises(ConfigError, match="cache_dir"):
        load_model(_preset("s3://bucket/model.tar"), cache_dir=None)
