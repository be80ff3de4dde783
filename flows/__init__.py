"""Application layer: Prefect flows, the `researchdesk` CLI and settings.

Prefect reads its environment at import time, so the offline defaults are set here, before any
flow module imports it: no telemetry (the machine may have no network at all) and a
project-local PREFECT_HOME so the in-process API's SQLite database lives under `var/`; and time
enough for that API's first start on a slow machine.
"""

import os
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Prefect waits 20 s for its in-process API server by default. On a fresh 2-core machine the first
# start (importing the server, migrating a new SQLite database) took longer once: `make demo` on a
# fresh clone died with "Timed out while attempting to connect to ephemeral Prefect API server".
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
if "PREFECT_HOME" not in os.environ:
    _home = Path(os.environ.get("RESEARCHDESK_VAR_DIR", "var")).resolve() / "prefect"
    _home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(_home)
