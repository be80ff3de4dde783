"""Test-wide environment: offline, and Prefect's home in a temporary folder (set before Prefect loads);
and the shared local DynamoDB endpoint fixture."""

import logging
import os
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="researchdesk-prefect-"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def dynamo() -> Iterator[str]:
    """A real DynamoDB endpoint (moto's server over HTTP on 127.0.0.1) for one test module; yields
    its URL, reached through AWS_ENDPOINT_URL_DYNAMODB as boto3 would reach AWS."""
    pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)  # a line per request otherwise
        mp.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        yield url
    server.stop()
