"""One typed settings object: environment variables `RESEARCHDESK_*` or a `.env` file.

Flow parameters carry only per-run choices (tickers, as_of); everything about where things live
and which models run is here. Paths are relative to the working directory unless absolute.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# S3 bucket names (AWS rules): 3-63 of lowercase letters, digits, '.' and '-', starting and ending
# with a letter or digit, not shaped like an IP address.
_BUCKET = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_USERINFO = re.compile(r"^([a-zA-Z0-9+.-]*://)[^@]*@")  # to the last "@": AWS secrets hold "/" and "+"


def _masked(url: str) -> str:
    """The URL as a message may quote it: credentials in its userinfo are masked."""
    return repr(_USERINFO.sub(r"\1***@", url))


def check_s3_url(url: str, expected: str, need_key: bool = True) -> tuple[str, str]:
    """(bucket, key) of an s3:// URL, or ValueError saying what is wrong (settings show it as one
    line naming the variable). Userinfo (s3://KEY:SECRET@bucket) is allowed and never echoed."""
    if not url.lower().startswith("s3://") or not url.startswith("s3://"):
        raise ValueError(f"{_masked(url)} is not an s3:// URL (lowercase scheme, two slashes); {expected}")
    rest = url[len("s3://") :].rpartition("@")[2]  # userinfo ends at the last "@" (a secret may hold "/")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"{_masked(url)} names no bucket; {expected}")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"{_masked(url)}: {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, "
            f"'.' or '-'); {expected}"
        )
    if need_key and not key.strip("/"):
        raise ValueError(f"{_masked(url)} names no key inside the bucket; {expected}")
    return bucket, key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESEARCHDESK_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="input files: sec/, news/, wikipedia/")
    var_dir: Path = Field(Path("var"), description="index, model cache, reports, Prefect home")
    min_free_mb: int = Field(64, ge=0, description="refuse to start with less free disk under var; 0: off")
    watchlist: Annotated[list[str], NoDecode] = Field(
        ["AAPL", "NVDA", "TSLA", "AMZN", "META"], description="nightly tickers: AAPL,NVDA or a JSON list"
    )
    models_dir_override: Path | None = Field(
        None, alias="RESEARCHDESK_MODELS_DIR", description="converted-model cache (default var/models)"
    )
    chat_preset: str = "smollm2-135m"
    moderation_preset: str = Field("", description="empty: moderate with the chat model")
    chat_source: str = Field(
        "", description="the chat preset's weights elsewhere: local dir, s3://bucket/key.tar[.gz], .gguf"
    )
    # Moderation (models/screens.py): checks on retrieved passages before they enter a prompt, and
    # on every generated section; the policy maps the combined label to publish/caution/withhold
    # (inputs: "withhold" = dropped). Policy overrides as JSON: '{"possibly needs caution":"publish"}'.
    input_checks: Annotated[list[str], NoDecode] = Field(
        ["injection", "profanity"], description="add label-scoring with a production moderation model"
    )
    output_checks: Annotated[list[str], NoDecode] = Field(["label-scoring", "injection", "profanity"])
    moderation_policy: Annotated[dict[str, str], NoDecode] = Field(
        {}, description="label -> action overrides of the default"
    )
    # Engines and embedders by registered name (flows/resources.py): a registered embedder name
    # wins over the sentence-transformers model name / local folder meaning of `embedder`.
    engine: str = Field("transformers", description="registered engine factory (flows/resources.py)")
    embedder: str = "all-MiniLM-L6-v2"
    # the CPU embedder's runtime (rag/embedding.py); "" = openvino on CPU, torch elsewhere
    embedder_backend: Literal["", "openvino", "onnxruntime", "torch"] = ""
    batch_size: int = Field(16, ge=1, description="prompts per forward batch")
    max_new_tokens: int = Field(0, ge=0, description="0: each section's own budget")
    seed: int = 0
    # Live EDGAR (`researchdesk fetch`). SEC's fair-access policy: declare who you are (name and
    # e-mail) and stay at or under 10 requests/s. The URLs are settings so tests can point at a
    # local server.
    edgar_user_agent: str = Field("", description='required for fetch: "Acme Research research@acme.com"')
    edgar_www_url: str = "https://www.sec.gov"
    edgar_data_url: str = "https://data.sec.gov"
    edgar_rate_limit: float = Field(10.0, gt=0, le=10, description="requests/s across all threads")
    edgar_forms: Annotated[list[str], NoDecode] = Field(["10-K", "10-Q", "8-K"], description="10-K,10-Q")
    edgar_first_run: int = Field(2, ge=1, description="first fetch of a form: its latest N filings")
    edgar_max_retries: int = Field(5, ge=0, description="retries on 429, 5xx, connection errors")
    edgar_workers: int = Field(4, ge=1, description="tickers fetched concurrently (one shared rate)")
    # OpenChatKit's pre-built Wikipedia index (knn.index + parquet) and its query encoder, a local
    # copy of facebook/contriever-msmarco. When set, report Wikipedia queries go to that index.
    okc_index_dir: Path | None = Field(None, description="folder with knn.index + passages parquet")
    okc_encoder: Path | None = Field(None, description="local HF folder of facebook/contriever-msmarco")
    okc_window: int = Field(5, ge=0, description="neighbouring snippets considered to widen a hit")
    okc_window_threshold: float = Field(0.5, description="cosine to the hit a neighbour needs to join")
    # Orchestration (flows/: prefect.yaml deployments, resume, GPU hand-off; README "Production setup").
    # The result store holds the resume state: generated sections and published-report records,
    # keyed by (ticker, as_of, inputs digest, model revision). A folder (default var/results), an
    # fsspec URL such as s3://bucket/prefix (needs s3fs on every node), or a Prefect storage block
    # as block:<type-slug>/<name> (e.g. block:s3-bucket/results, needs prefect-aws).
    result_store: str = Field("", description="folder, s3://bucket/prefix or block:s3-bucket/NAME")
    generation_deployment: str = Field("", description="e.g. generate/gpu; empty: generate in-process")
    generation_timeout_s: float = Field(6 * 3600, gt=0, description="how long the CPU flow waits for a job")
    generation_job_tickers: int = Field(16, ge=0, description="tickers per generation job; 0: one job")
    generation_tp: int = Field(1, ge=1, description="tensor-parallel ranks of the GPU job (torchrun)")
    generation_parallel_jobs: int = Field(1, ge=1, description="jobs in flight at once: the GPU node count")
    model_revision: str = Field("", description="pin for report keys when generation runs elsewhere")
    timezone: str = Field("America/New_York", description="a scheduled run's date (as_of) is taken here")
    task_runner: str = Field("thread", description="thread | dask | ray (prefect-dask / prefect-ray extras)")
    task_runner_address: str = Field("", description="existing Dask scheduler / Ray cluster address")
    report_base_url: str = Field("", description="URL prefix of var/reports for link artifacts")
    # `researchdesk ask` conversation turns (reports/sessions.py): "" = SQLite in var/sessions.sqlite;
    # sqlite:///abs/path.db; dynamodb://TABLE (boto3: AWS_ENDPOINT_URL_DYNAMODB, region, credentials).
    sessions: str = Field("", description="session store: '', sqlite:///path.db or dynamodb://TABLE")

    @field_validator("chat_source")
    @classmethod
    def _model_source_url(cls, value: str) -> str:
        """A URL source must be an s3:// tar archive: a typo is one line at settings load, not a
        failure after the run has started (local dirs, .gguf files and HF ids pass unchanged)."""
        spec = value.strip()
        if "://" in spec or spec.lower().startswith("s3:"):
            bucket, key = check_s3_url(spec, "expected s3://bucket/key.tar or .tar.gz")
            if not key.split("#", 1)[0].endswith((".tar", ".tar.gz", ".tgz")):
                raise ValueError(
                    f"{_masked(spec)}: the key must name a .tar, .tar.gz or .tgz archive "
                    "(s3://bucket/key.tar.gz), a local folder or a .gguf file"
                )
        return spec

    @field_validator("result_store")
    @classmethod
    def _result_store_url(cls, value: str) -> str:
        """s3:// needs a valid bucket; http(s) is not a store the flows can write to."""
        spec = value.strip()
        scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
        if scheme in ("http", "https"):
            raise ValueError(
                f"{_masked(spec)}: an HTTP URL cannot hold results; use a folder, s3://bucket/prefix "
                "or block:s3-bucket/NAME"
            )
        if scheme == "s3" or (spec.lower().startswith("s3:") and not scheme):
            check_s3_url(spec, "expected s3://bucket/prefix", need_key=False)
        return spec

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}, e.g. America/New_York") from exc
        return value

    @field_validator("input_checks", "output_checks", mode="before")
    @classmethod
    def _split_checks(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        return [str(c).strip().lower() for c in value if str(c).strip()] if isinstance(value, list) else value

    @field_validator("moderation_policy", mode="before")
    @classmethod
    def _policy_json(cls, value: object) -> object:
        """A JSON typo is one line naming the fix, not pydantic-settings' SettingsError."""
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"not JSON ({exc.msg} at char {exc.pos}); write it as '{{\"LABEL\": \"publish\"}}'"
                ) from exc
        return value

    @property
    def policy(self) -> dict[str, str]:
        """The default moderation policy with this deployment's overrides (validated)."""
        from models.moderation import DEFAULT_POLICY
        from models.screens import validate_policy
        from rag.errors import ConfigError

        try:
            return validate_policy({**DEFAULT_POLICY, **self.moderation_policy})
        except ConfigError as exc:  # name the variable to fix, as the other setting errors do
            raise ConfigError(f"invalid setting: RESEARCHDESK_MODERATION_POLICY: {exc}") from exc

    @field_validator("edgar_forms", mode="before")
    @classmethod
    def _split_forms(cls, value: object) -> object:
        return cls._split(value)

    @field_validator("watchlist", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        return [str(t).strip().upper() for t in value if str(t).strip()] if isinstance(value, list) else value

    @property
    def index_dir(self) -> Path:
        return self.var_dir / "index"

    @property
    def reports_dir(self) -> Path:
        return self.var_dir / "reports"

    @property
    def models_dir(self) -> Path:
        return self.models_dir_override or self.var_dir / "models"

    @property
    def results_dir(self) -> Path:
        return self.var_dir / "results"

    @property
    def company_tickers(self) -> Path:
        return self.data_dir / "sec" / "company_tickers.json.gz"
