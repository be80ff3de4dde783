"""One typed settings object: environment variables `RESEARCHDESK_*` or a `.env` file.

Flow parameters carry only per-run choices (tickers, as_of); everything about where things live
and which models run is here. Paths are relative to the working directory unless absolute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESEARCHDESK_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="input files: sec/, news/, wikipedia/")
    var_dir: Path = Field(Path("var"), description="index, model cache, reports, Prefect home")
    watchlist: Annotated[list[str], NoDecode] = Field(
        ["AAPL", "NVDA", "TSLA", "AMZN", "META"], description="nightly tickers: AAPL,NVDA or a JSON list"
    )
    models_dir_override: Path | None = Field(
        None, alias="RESEARCHDESK_MODELS_DIR", description="converted-model cache (default var/models)"
    )
    chat_preset: str = "smollm2-135m"
    moderation_preset: str = Field("", description="empty: moderate with the chat model")
    embedder: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(16, ge=1, description="prompts per forward batch")
    max_new_tokens: int = Field(0, ge=0, description="0: each section's own budget")
    seed: int = 0

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
    def company_tickers(self) -> Path:
        return self.data_dir / "sec" / "company_tickers.json.gz"
