"""Planted secrets never reach a log, a report, a manifest, an audit file or Prefect's own database;
planted markup in news headlines never reaches the HTML. One real `researchdesk run` (fake engine).

Why a subprocess CLI run and not the in-process flow: the CLI is what writes logs to a terminal
(flows/logs.py filters), and only a run of its own puts Prefect's home, whose SQLite database holds
the API's copy of every flow/task log line and every artifact, under var/prefect (flows/__init__.py),
where the walk below reads it. The in-process test harness keeps that database in a temp folder.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from reports.page_clean import tokens
from tests.flows.conftest import aapl_data_dir, write_news

ROOT = Path(__file__).resolve().parents[2]
KEY_ID = "AKIAPLANTEDKEY7Q2W3E"  # AKIA + 16: the shape flows/redact.py masks
SECRET = "plantedSecret/Zx9Qv8Wm7Ln6Kp5Jo4Ih3Gu2Fy1"
TOKEN = "plantedSessionToken+IQoJb3JpZ2luX2VjEPlanted//42"
EMAIL = "planted.person@acme-research.example"
URL_PASSWORD = "hunter2PlantedPass"
URL_SECRET = SECRET.replace("/", "%2F")  # in a URL's userinfo a "/" must be percent-encoded (RFC 3986)
# What must never appear, in any file or log: the values, and the tell-tale parts of each (a secret
# with its "/" JSON-escaped, the e-mail's local part, the URL password alone).
PLANTED = [KEY_ID, SECRET, SECRET.split("/")[1], TOKEN, TOKEN.split("+")[1].split("/")[0], EMAIL,
           "planted.person", URL_PASSWORD, URL_SECRET]
PRODUCTS = ["iPhone", "Mac Studio", "Vision Pro", "Apple Watch", "AirPods"]
PAYLOADS = [
    "<script>alert('s1')</script>",
    "<img src=x onerror=alert('s2')>",
    '<a href="javascript:alert(\'s3\')">click</a>',
    '<iframe src="https://evil.example/f"></iframe>',
    "<svg onload=alert('s4')>",
]


# The run's process: the fakes (tests/flows/worker_hook.py), and a publish step that also logs the
# planted values through Prefect's run logger, once as a message and once in a traceback, so the
# console and the API log handler (-> var/prefect/prefect.db) both get something to redact.
HOOK = """
import os

import tests.flows.worker_hook

tests.flows.worker_hook.install()
import reports.publish

_real_publish = reports.publish.publish_report


def publish_report(report, run_dir):
    from prefect import get_run_logger

    log = get_run_logger()
    env = os.environ
    log.info("planted-log-marker source %s ua %s base %s", env["RESEARCHDESK_CHAT_SOURCE"],
             env["RESEARCHDESK_EDGAR_USER_AGENT"], env["RESEARCHDESK_REPORT_BASE_URL"])
    try:
        raise RuntimeError("planted-exc-marker " + env["AWS_SECRET_ACCESS_KEY"] + " " + env["AWS_SESSION_TOKEN"])
    except RuntimeError:
        log.warning("planted-exc-marker key %s", env["AWS_ACCESS_KEY_ID"], exc_info=True)
    return _real_publish(report, run_dir)


reports.publish.publish_report = publish_report
"""


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("planted")
    data = aapl_data_dir(tmp)
    write_news(data / "news" / "AAPL.csv.gz", [
        (f"Apple unveils new {product} lineup {p.replace(chr(34), chr(39))}",
         f"Apple announced a new {product} with longer battery life. {p}")
        for product, p in zip(PRODUCTS, PAYLOADS, strict=True)
    ])
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RESEARCHDESK_", "AWS_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "RESEARCHDESK_ENGINE": "fake",
        "RESEARCHDESK_EMBEDDER": "fake-hash",
        "RESEARCHDESK_DATA_DIR": str(data),
        "RESEARCHDESK_VAR_DIR": str(tmp / "var"),  # PREFECT_HOME unset: var/prefect (flows/__init__.py)
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "RESEARCHDESK_EDGAR_USER_AGENT": f"Planted Research {EMAIL}",
        # settings the run reads: the model source is part of the run key and the manifest, the
        # report base URL goes into the Prefect link artifacts
        "RESEARCHDESK_CHAT_SOURCE": f"s3://{KEY_ID}:{URL_SECRET}@planted-bucket/models/chat.tar.gz",
        "RESEARCHDESK_REPORT_BASE_URL": f"https://reportuser:{URL_PASSWORD}@reports.example/desk",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from flows.cli import main; sys.exit(main(sys.argv[1:]))",
         "run", "--tickers", "AAPL", "--as-of", "2025-06-01"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=900,
    )
    return {"proc": proc, "var": tmp / "var"}


def _contents(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return raw + gzip.decompress(raw)
        except (OSError, EOFError):
            return raw
    return raw


def test_run_succeeds_and_var_holds_reports_and_prefect_db(planted_run):
    proc, var = planted_run["proc"], planted_run["var"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = [p for p in var.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"AAPL.html", "AAPL.md", "index.html", "manifest.json"} <= names
    assert any(p.is_relative_to(var / "prefect") and p.suffix == ".db" for p in files), "no Prefect DB"
    assert any("audit" in p.parts for p in files)


def test_no_planted_secret_in_any_file_or_log(planted_run):
    proc, var = planted_run["proc"], planted_run["var"]
    logs = (proc.stdout + proc.stderr).encode()
    leaks = [(value, "stdout/stderr") for value in PLANTED if value.encode() in logs]
    files = [p for p in var.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 10
    for path in files:
        data = _contents(path)
        leaks += [(value, str(path.relative_to(var))) for value in PLANTED if value.encode() in data]
    assert not leaks, leaks
    # the masked forms are there: the redaction ran, the values were not just never written
    manifest = next(var.glob("reports/*/manifest.json")).read_text()
    assert "s3://***@planted-bucket/models/chat.tar.gz" in manifest
    assert "planted-log-marker source s3://***@planted-bucket" in proc.stderr  # console, masked
    with sqlite3.connect(var / "prefect" / "prefect.db") as db:  # the API's copy of the run logs
        stored = [m for (m,) in db.execute("select message from log where message like '%planted-%-marker%'")]
        links = [d for (d,) in db.execute("select data from artifact where type = 'markdown'")]
    assert any("source s3://***@planted-bucket" in m and "ua Planted Research ***" in m for m in stored), stored
    assert any("planted-exc-marker *** ***" in m and "Traceback" in m for m in stored), stored
    assert any("https://***@reports.example/desk/" in d for d in links), links


def test_planted_markup_in_headlines_never_reaches_html(planted_run):
    var = planted_run["var"]
    pages = list(var.glob("reports/*/*.html"))
    assert {p.name for p in pages} >= {"AAPL.html", "index.html"}
    report = (var / "reports" / "latest" / "AAPL.html").read_text()
    shown = [product for product in PRODUCTS if f"Apple unveils new {product} lineup" in report]
    assert shown, "no planted headline in the report: the test would prove nothing"
    for page in pages:
        html = page.read_text()
        toks = tokens(html[html.find("<body>"):])
        tags = [t[1] for t in toks if t[0] == "start"]
        assert not {"script", "img", "iframe", "object", "embed"} & set(tags), page.name
        assert tags.count("svg") == len(list(var.glob("reports/latest/*.svg"))) * (page.name == "AAPL.html")
        attrs = [a for t in toks if t[0] == "start" for a in t[2]]
        assert not [a for a in attrs if a[0].startswith("on")], page.name
        assert not [a for a in attrs if a[0] in ("href", "src") and a[1].strip().lower().startswith(
            ("javascript:", "data:", "vbscript:"))], page.name
        assert "javascript:" not in html.lower()
