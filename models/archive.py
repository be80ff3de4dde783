"""`s3://bucket/key.tar[.gz][#sha256=<hex>]` model sources: download, verify, unpack once, share.

The seed packaged its models as tarballs on S3. A 20B checkpoint is ~40 GB, so it is fetched once
per machine into `<cache>/<preset>/` and every later run (and every rank of a torchrun group)
reads the unpacked copy:

* Verify: the tar's SHA-256 is computed while it streams to disk and checked against the
  `#sha256=` suffix of the source, else against a `<key>.sha256` object next to it (sha256sum
  format), when either exists. A mismatch, a truncated download or a corrupt tar is a ModelError
  and leaves nothing behind in the cache.
* Unpack once, atomically: members go to a temporary directory (tarfile's "data" filter refuses
  absolute paths, `..` and links out of the tree), the caller's `validate` loads the model from
  there, and only then is the directory renamed into place with a metadata file, so a crash
  never leaves a half-unpacked cache that a later run would trust.
* Concurrent runs wait on a file lock per cache directory; the second one finds the cache
  complete and never downloads.

boto3 resolves credentials and the endpoint the usual way (environment, profile, instance role;
`AWS_ENDPOINT_URL_S3` for MinIO/moto/another S3-compatible store).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from rag.errors import ConfigError, ModelError

T = TypeVar("T")
META = "researchdesk-cache.json"
LOCK_TIMEOUT_S = 6 * 3600  # a 40 GB download on a slow link; a dead holder's lock is freed by the OS


def parse_s3(source: str) -> tuple[str, str, str]:
    """(bucket, key, expected sha256 or "") from `s3://bucket/key.tar[.gz][#sha256=hex]`."""
    url = urlparse(source)
    expected = ""
    if url.fragment:
        name, _, value = url.fragment.partition("=")
        if name != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
            raise ConfigError(f"bad model source {source!r}: the only fragment allowed is #sha256=<64 hex>")
        expected = value.lower()
    bucket, key = url.netloc, url.path.lstrip("/")
    if url.scheme != "s3" or not bucket or not key.endswith((".tar", ".tar.gz", ".tgz")):
        raise ConfigError(f"bad model source {source!r}; expected s3://bucket/key.tar or .tar.gz")
    return bucket, key, expected


def _client() -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - boto3 is a declared dependency
        raise ModelError("s3:// model sources need boto3: pip install boto3") from exc
    return boto3.client("s3")


def _s3_error(source: str, exc: Exception) -> ModelError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NoSuchBucket"):
        return ModelError(f"{source} does not exist ({code}); check the preset's source")
    if exc.__class__.__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return ModelError(f"no AWS credentials to read {source}; set AWS_PROFILE or AWS_ACCESS_KEY_ID/...")
    return ModelError(f"could not download {source}: {exc}")


def _expected_digest(client: Any, bucket: str, key: str, source: str) -> str:
    """The hex digest in `<key>.sha256`, or "" when there is no such object."""
    try:
        body = client.get_object(Bucket=bucket, Key=key + ".sha256")["Body"].read().decode().split()
    except Exception as exc:  # ClientError 404 = no checksum published, which is allowed
        if getattr(exc, "response", {}).get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
            return ""
        raise _s3_error(source, exc) from exc
    if not body or len(body[0]) != 64:
        raise ModelError(f"s3://{bucket}/{key}.sha256 is not a sha256sum line; fix or delete it")
    return body[0].lower()


def _download(client: Any, bucket: str, key: str, dest: Path, source: str) -> str:
    """Stream the object to `dest`; returns its sha256 hex."""
    digest = hashlib.sha256()
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
        expected_len = obj.get("ContentLength")
        with dest.open("wb") as fh:
            for chunk in obj["Body"].iter_chunks(chunk_size=8 << 20):
                digest.update(chunk)
                fh.write(chunk)
    except Exception as exc:
        raise _s3_error(source, exc) from exc
    if expected_len is not None and dest.stat().st_size != expected_len:
        raise ModelError(f"{source}: download truncated ({dest.stat().st_size} of {expected_len} bytes)")
    return digest.hexdigest()


def _unpack(tar_path: Path, dest: Path, source: str) -> Path:
    """Extract into `dest`; returns the directory holding config.json (tars often wrap a folder)."""
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            tar.extractall(dest, filter="data")
            # tarfile stops at the end-of-archive marker; a gzip CRC is only checked at the end of
            # the stream, so read to EOF or a corrupt .tar.gz can unpack garbage without an error.
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ModelError(f"{source} is not a readable tar archive (truncated or corrupt): {exc}") from exc
    configs = sorted(dest.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ModelError(f"{source} holds no config.json; it is not a saved transformers model")
    return configs[0].parent


def read_meta(cache: Path) -> dict | None:
    try:
        return json.loads((cache / META).read_text())
    except (OSError, ValueError):
        return None


def fetch(source: str, cache: Path, validate: Callable[[Path], T]) -> tuple[T, Path, str, bool]:
    """(validate(model dir), model dir, revision, from_cache) for an s3:// tar source.

    `validate` loads the model; it runs on the unpacked copy before that copy is published, so
    a tar that unpacks but does not load (a truncated weights file) is never cached.
    """
    from filelock import FileLock, Timeout

    bucket, key, pinned = parse_s3(source)
    cache.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache.parent / f".{cache.name}.lock"), timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            meta = read_meta(cache)
            if meta and meta.get("source") == source and (not pinned or meta.get("sha256") == pinned):
                model_dir = cache / meta.get("subdir", ".")
                return validate(model_dir), model_dir, meta["revision"], True
            return _fill(source, bucket, key, pinned, cache, validate)
    except Timeout as exc:
        msg = f"waited {LOCK_TIMEOUT_S} s for another run to unpack {source} into {cache}"
        raise ModelError(msg) from exc


def _fill(
    source: str, bucket: str, key: str, pinned: str, cache: Path, validate: Callable[[Path], T]
) -> tuple[T, Path, str, bool]:
    client = _client()
    expected = pinned or _expected_digest(client, bucket, key, source)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tar_path = cache.parent / f".{cache.name}.download-{tag}"
    tmp = cache.parent / f".{cache.name}.tmp-{tag}"
    try:
        digest = _download(client, bucket, key, tar_path, source)
        if expected and digest != expected:
            raise ModelError(
                f"{source}: sha256 {digest} does not match the expected {expected}; "
                "the object is corrupt or was replaced; re-upload it or fix the checksum"
            )
        tmp.mkdir()
        model_dir = _unpack(tar_path, tmp, source)
        tar_path.unlink()
        try:
            result = validate(model_dir)
        except Exception as exc:
            raise ModelError(f"{source} unpacked but does not load: {exc}") from exc
        subdir = model_dir.relative_to(tmp).as_posix()
        meta = {
            "source": source,
            "sha256": digest,
            "revision": "sha256:" + digest[:16],
            "subdir": subdir,
            "created": time.time(),
        }
        (tmp / META).write_text(json.dumps(meta, indent=2))
        if cache.exists():  # stale copy (the source changed): move it aside, then swap
            old = cache.parent / f".{cache.name}.old-{tag}"
            os.rename(cache, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, cache)
        return result, cache / subdir, meta["revision"], False
    finally:
        tar_path.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
