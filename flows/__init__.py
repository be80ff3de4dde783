"""Application layer: Prefect flows, the `researchdesk` CLI and settings.

Prefect reads its environment at import time, so the offline defaults are set here, before any
flow module imports it: no telemetry (the machine may have no network at all) and a
project-local PREFECT_HOME so the in-process API's SQLite database lives under `var/`.
"""

import os
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PREFECT_HOME" not in os.environ:
    _home = Path(os.environ.get("RESEARCHDESK_VAR_DIR", "var")).resolve() / "prefect"
    _home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(_home)
