"""tools/dep_audit.py: which advisories apply to an installed version, the PyPI-JSON fallback
against a local server, and the offline answer (skipped, exit 0 unless --strict)."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dep_audit", ROOT / "tools" / "dep_audit.py")
assert _spec and _spec.loader
dep_audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dep_audit)


@pytest.mark.parametrize(
    ("version", "fixed_in", "expected"),
    [
        ("1.26.17", ["1.26.18", "2.0.7"], True),  # below the fix of its branch
        ("1.26.18", ["1.26.18", "2.0.7"], False),  # fixed on its branch, though below 2.0.7
        ("2.0.0", ["1.26.18", "2.0.7"], True),
        ("2.0.7", ["1.26.18", "2.0.7"], False),
        ("1.25.0", ["1.26.18", "2.0.7"], True),  # same major, older minor: below its fix
        ("3.1.0", ["1.26.18", "2.0.7"], False),  # newer than every fix
        ("0.9", ["1.26.18", "2.0.7"], True),
        ("3.1.6", [], True),  # no fix released: the listed version is affected
    ],
)
def test_advisory_applies_by_branch(version, fixed_in, expected):
    assert dep_audit.applies(version, {"id": "X", "fixed_in": fixed_in}) is expected


def test_withdrawn_and_out_of_range_advisories_do_not_apply():
    assert not dep_audit.applies("1.0", {"fixed_in": ["2.0"], "withdrawn": "2024-01-01T00:00:00"})
    ranges = [{"events": [{"introduced": "1.5"}, {"fixed": "2.0"}]}]
    assert not dep_audit.applies("1.0", {"fixed_in": ["2.0"], "ranges": ranges})
    assert dep_audit.applies("1.7", {"fixed_in": ["2.0"], "ranges": ranges})


@pytest.fixture
def fake_pypi(monkeypatch):
    """A local stand-in for pypi.org/pypi/<name>/json: "demo" has two advisories, "gone" is a 404."""
    projects = {
        "demo": {"info": {"version": "2.1"}, "vulnerabilities": [
            {"id": "PYSEC-0000-1", "aliases": ["CVE-0000-1"], "fixed_in": ["1.4.2", "2.0.1"], "summary": "bad"},
            {"id": "PYSEC-0000-2", "aliases": [], "fixed_in": ["0.9"], "summary": "old"},
            {"id": "PYSEC-0000-3", "fixed_in": ["9.0"], "withdrawn": "2024-01-01"},
        ]},
        "clean": {"info": {"version": "1.0"}, "vulnerabilities": []},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - stdlib name
            name = self.path.strip("/").split("/")[0]
            body = json.dumps(projects[name]).encode() if name in projects else b""
            self.send_response(200 if name in projects else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(dep_audit, "PYPI", f"http://127.0.0.1:{server.server_address[1]}/{{name}}/json")
    yield
    server.shutdown()
    server.server_close()


def test_pypi_json_fallback_reports_findings_for_installed_version(fake_pypi):
    result = dep_audit.run_pypi_json({"demo": "1.4.1", "clean": "1.0", "gone": "3.0"}, timeout=5, workers=2)
    assert result["source"] == "pypi-json" and result["audited"] == 2 and result["not_on_pypi"] == 1
    assert [f["id"] for f in result["findings"]] == ["PYSEC-0000-1"]
    assert result["findings"][0]["aliases"] == ["CVE-0000-1"]
    assert result["outdated"] == [{"package": "demo", "version": "1.4.1", "latest": "2.1"}]
    fixed = dep_audit.run_pypi_json({"demo": "1.4.2"}, timeout=5, workers=1)
    assert fixed["findings"] == []


def test_main_prints_table_and_json_last_line(fake_pypi, monkeypatch, capsys):
    monkeypatch.setattr(dep_audit, "installed", lambda: {"demo": "2.0.0", "clean": "1.0"})
    assert dep_audit.main(["--no-pip-audit"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:3] == ["package", "installed", "advisory"] and "PYSEC-0000-1" in out[1]
    last = json.loads(out[-1])
    assert last["status"] == "findings" and last["findings"][0]["package"] == "demo"
    assert dep_audit.main(["--no-pip-audit", "--strict"]) == 1


def test_unreachable_sources_skip_with_exit_0_unless_strict(monkeypatch, capsys):
    monkeypatch.setattr(dep_audit, "PYPI", "http://127.0.0.1:9/{name}/json")  # discard port: refused
    monkeypatch.setattr(dep_audit, "installed", lambda: {"demo": "1.0", "other": "2.0"})
    monkeypatch.setattr(dep_audit, "run_pip_audit", lambda timeout: None)
    assert dep_audit.main(["--timeout", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("dep-audit: skipped: no vulnerability source reachable")
    assert json.loads(out[-1])["status"] == "skipped"
    assert dep_audit.main(["--timeout", "2", "--strict"]) == 1


def test_pip_audit_that_audited_nothing_is_not_taken_as_clean(monkeypatch, tmp_path):
    """pip-audit here: every package skipped, "No known vulnerabilities found", exit 0."""
    def fake_run(cmd, **kwargs):
        out = Path(cmd[cmd.index("-o") + 1])
        out.write_text(json.dumps({"dependencies": [
            {"name": "jinja2", "skip_reason": "Dependency not found on PyPI and could not be audited"}]}))

    monkeypatch.setattr(dep_audit.subprocess, "run", fake_run)
    assert dep_audit.run_pip_audit(timeout=5) is None
