"""Prefect plumbing shared by the flows: the result store, resume keys, task runners, the dev hook.

Why explicit keys instead of Prefect's DEFAULT cache policy: DEFAULT includes the flow RUN_ID, so
it only helps a retry of the same flow run. A crashed nightly is resumed by a NEW run (a manual
`prefect deployment run`, or the next attempt of the schedule), so work is keyed on what it
depends on instead: (ticker, as_of, inputs digest, model revision). The keys live in one result
store (a Prefect `WritableFileSystem`: a local folder by default, S3 by setting) that the publish
task also uses as its Prefect `result_storage`: its persisted result IS the report's record.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect.cache_policies import NO_CACHE
from prefect.filesystems import LocalFileSystem

from flows.settings import Settings
from rag.errors import ConfigError
from rag.types import digest

# Settings that change what a report says: a change starts a new run key (a new run folder).
_RUN_KEY_SETTINGS = (
    "chat_preset",
    "chat_source",
    "moderation_preset",
    "input_checks",
    "output_checks",
    "moderation_policy",
    "embedder",
    "max_new_tokens",
    "seed",
    "model_revision",
)


def result_storage(settings: Settings):
    """The store's Prefect filesystem block; a ConfigError says what to install or set when it can't."""
    from prefect.filesystems import RemoteFileSystem

    spec = settings.result_store.strip()
    if not spec:
        return LocalFileSystem(basepath=str(settings.results_dir.resolve()))
    if spec.startswith("block:"):
        from prefect.blocks.core import Block

        try:
            return Block.load(spec.removeprefix("block:"))
        except (ValueError, ImportError, KeyError) as exc:
            raise ConfigError(
                f"RESEARCHDESK_RESULT_STORE={spec}: cannot load that Prefect block ({exc}); create it "
                "(e.g. S3Bucket(...).save('results') with prefect-aws installed) or use a folder"
            ) from exc
    if "://" in spec and not spec.startswith("file://"):
        scheme = spec.split("://", 1)[0]
        module = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}.get(scheme)
        if module and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"RESEARCHDESK_RESULT_STORE={spec} needs the {module} package on every node "
                f"(pip install {module}); or use block:s3-bucket/NAME with prefect-aws, or a folder"
            )
        return RemoteFileSystem(basepath=spec.rstrip("/"))
    return LocalFileSystem(basepath=str(Path(spec.removeprefix("file://")).resolve()))


def storage_ref(settings: Settings) -> Path | str:
    """The store as a task `result_storage` argument: a folder Path or a saved block's slug.

    Prefect only accepts saved blocks there (a flow run's results must be loadable elsewhere),
    so an fsspec URL is saved once as the `remote-file-system/researchdesk-results` block.
    """
    spec = settings.result_store.strip()
    if spec.startswith("block:"):
        return spec.removeprefix("block:")
    storage = result_storage(settings)
    if isinstance(storage, LocalFileSystem):
        return Path(storage.basepath)
    storage.save("researchdesk-results", overwrite=True)
    return "remote-file-system/researchdesk-results"


def result_store(settings: Settings):
    """Prefect ResultStore over the result storage, JSON-serialized so records stay readable."""
    from prefect.results import ResultStore
    from prefect.serializers import JSONSerializer

    return ResultStore(result_storage=result_storage(settings), serializer=JSONSerializer())


def run_key(as_of: str, tickers: list[str], settings: Settings) -> str:
    """Run folder name: the same (as_of, tickers, report settings) always lands in the same folder."""
    relevant = json.loads(settings.model_dump_json(include=set(_RUN_KEY_SETTINGS)))
    return f"{as_of}-{digest(json.dumps([sorted(tickers), relevant], sort_keys=True), 8)}"


def report_key(run_id: str, ticker: str, as_of: str, inputs_digest: str, model: str) -> str:
    """Key of one published report (a Prefect cache key: its record is the publish task's result)."""
    return f"reports/{run_id}/{ticker}-{as_of}-{inputs_digest}-{digest(model, 8)}.json"


def section_key(ticker: str, as_of: str, request: dict, model: str) -> str:
    """Key of one generated section: the prompt and sampling parameters, not the run it came from."""
    payload = {k: v for k, v in request.items() if k != "request_id"}
    section = request["request_id"].rsplit(":", 1)[-1]
    prompt = digest(json.dumps(payload, sort_keys=True))
    return f"sections/{as_of}/{ticker}/{section}-{prompt}-{digest(model, 8)}.json"


def default_as_of(settings: Settings) -> str:
    """The date of the flow run's scheduled start in the desk's timezone (today for ad-hoc runs).

    A retried or resumed scheduled run therefore keeps its report date after midnight.
    """
    from prefect.runtime import flow_run

    start = flow_run.scheduled_start_time or datetime.now(ZoneInfo("UTC"))
    return start.astimezone(ZoneInfo(settings.timezone)).date().isoformat()


def task_runner(name: str, address: str = ""):
    """The task runner named by RESEARCHDESK_TASK_RUNNER; dask/ray are optional extras."""
    if name in ("", "thread"):
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=4)
    extras = {"dask": ("prefect_dask", "DaskTaskRunner"), "ray": ("prefect_ray", "RayTaskRunner")}
    if name not in extras:
        raise ConfigError(f"RESEARCHDESK_TASK_RUNNER={name!r}: use thread, dask or ray")
    module, cls = extras[name]
    try:
        runner = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ConfigError(
            f"RESEARCHDESK_TASK_RUNNER={name} needs the {module.replace('_', '-')} package on the worker "
            f"(pip install {module.replace('_', '-')}); it is an optional extra, not installed by default"
        ) from exc
    if not address:
        return runner()
    return runner(address=address)


def settings_task_runner():
    """A flow's `task_runner=`: resolved from settings when a run starts, not at import.

    Prefect duplicates a flow's task runner at the start of every run; this one duplicates into
    the runner RESEARCHDESK_TASK_RUNNER names, so the same deployment runs its tasks on threads,
    a Dask cluster or Ray by setting, and a missing extra fails that run with a clear message.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    class SettingsTaskRunner(ThreadPoolTaskRunner):
        def duplicate(self):
            settings = Settings()
            return task_runner(settings.task_runner, settings.task_runner_address)

    return SettingsTaskRunner(max_workers=4)


def apply_model_source(settings: Settings) -> None:
    """RESEARCHDESK_CHAT_SOURCE: the chat preset keeps its prompt format, stop words and sampling,
    with weights from another place (e.g. the 20B model unpacked from S3). Applied once per flow
    process; a tensor-parallel job gets the same source as `--source`."""
    if settings.chat_source:
        from dataclasses import replace

        from models.presets import get_preset, register_preset

        preset = get_preset(settings.chat_preset)
        if preset.source != settings.chat_source:
            register_preset(replace(preset, source=settings.chat_source), replace=True)


def io_error_only(task, task_run, state) -> bool:
    """Retry condition: retry I/O failures (disk, network), never deterministic ones."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure would fail the same way again
        return False
    return False


# Options of the tasks that only move bytes (result store, hand-off files): transient I/O failures
# are retried with backoff, anything else fails at once; never cached (they have side effects).
IO_TASK = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": io_error_only,
    "cache_policy": NO_CACHE,
}
