"""`researchdesk serve` serves the reports folder only: traversal forms, symlinks, headers, binding."""

from __future__ import annotations

import argparse
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows.serve import CSP, DEFAULT_HOST, make_server, run_serve

SECRET = "PLANTED-OUTSIDE-SECRET-7f3a"


@pytest.fixture
def site(tmp_path: Path):
    """var/reports with a run, `latest` -> the run, a secret next to the folder and a symlink out."""
    var = tmp_path / "var"
    reports = var / "reports"
    run = reports / "20250601-abc"
    run.mkdir(parents=True)
    (run / "AAPL.html").write_text("<!doctype html><p>Apple report</p>")
    (run / "index.html").write_text("<!doctype html><p>run index</p>")
    (reports / "latest").symlink_to(run.name)  # relative, as reports/publish.py writes it
    (var / "secret.txt").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    (reports / "escape").symlink_to(var)  # a stray symlink pointing out of the folder
    (reports / "escape.txt").symlink_to(var / "secret.txt")
    server = make_server(reports, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def raw(port: int, target: str) -> tuple[int, bytes]:
    """Send `target` byte for byte (urllib would normalise it) and return status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_report_and_latest_symlink_are_served_with_security_headers(site):
    status, headers, body = get(site, "/20250601-abc/AAPL.html")
    assert status == 200 and b"Apple report" in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert "Python" not in headers["Server"]
    status, _, body = get(site, "/latest/AAPL.html")  # latest -> run folder inside the reports dir
    assert status == 200 and b"Apple report" in body
    status, _, body = get(site, "/latest/")
    assert status == 200 and b"run index" in body


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%2f..%2fsecret.txt",
        "/latest/../../secret.txt",
        "/latest/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/%2e%2e%5csecret.txt",
        "/%00/../secret.txt",
        "//etc/passwd",
        "http://127.0.0.1/../secret.txt",
        "/etc/passwd",
        "/%2fetc%2fpasswd",
        "/escape/secret.txt",
        "/escape/",
        "/escape.txt",
    ],
)
def test_traversal_and_outside_symlinks_are_refused(site, target):
    status, data = raw(site, target)
    assert status in (400, 404), (target, status)
    assert SECRET.encode() not in data and b"root:" not in data
    assert b"nosniff" in data  # error pages carry the headers too


def test_directory_listing_only_inside_the_folder(site):
    status, headers, body = get(site, "/")
    assert status == 200 and b"20250601-abc" in body and headers["Content-Security-Policy"] == CSP
    assert b"secret.txt" not in body  # the folder above is never listed


def test_only_get_and_head(site):
    req = urllib.request.Request(f"http://127.0.0.1:{site}/latest/AAPL.html", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 501


def test_binds_loopback_by_default_and_warns_otherwise(tmp_path, monkeypatch, capsys):
    assert DEFAULT_HOST == "127.0.0.1"
    from flows.cli import _parser

    args = _parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    (tmp_path / "var" / "reports").mkdir(parents=True)
    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "var"))
    seen = {}

    def fake_forever(self, *a, **k):  # bind happened; record where, then stop at once
        seen["address"] = self.server_address
        raise KeyboardInterrupt

    monkeypatch.setattr("http.server.ThreadingHTTPServer.serve_forever", fake_forever)
    assert run_serve(argparse.Namespace(host="127.0.0.1", port=0)) == 0
    assert seen["address"][0] == "127.0.0.1"
    assert "warning" not in capsys.readouterr().err
    assert run_serve(argparse.Namespace(host="0.0.0.0", port=0)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: serving on 0.0.0.0")


def test_missing_reports_folder_and_bad_port_are_one_line_errors(tmp_path, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("RESEARCHDESK_VAR_DIR", str(tmp_path / "nothing"))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: reports folder") and "does not exist" in err[0]
    (tmp_path / "nothing" / "reports").mkdir(parents=True)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        assert main(["serve", "--port", str(busy.getsockname()[1])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: cannot listen on 127.0.0.1:")
    finally:
        busy.close()
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be" in capsys.readouterr().err
