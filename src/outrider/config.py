"""Typed settings, built once at start-up by :func:`build_settings` and passed down.

Every setting reads from the environment with the ``OUTRIDER_`` prefix (``OUTRIDER_PORT=9000``) or
from a ``.env`` file. Nothing here is created at import time: callers build a :class:`Settings` and
hand it to the app factory, the CLI or the worker. Unsafe values (a default secret, binding to every
interface without a secret) are refused outside ``environment="development"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-outrider-development-secret"


class Settings(BaseSettings):
    """Outrider's configuration. See ``docs/configuration.md`` for the reference."""

    model_config = SettingsConfigDict(env_prefix="OUTRIDER_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = Field(
        "development", description="Deployment environment; production refuses unsafe values."
    )
    data_dir: Path = Field(
        Path("./outrider-data"), description="Where the database, built base models and job files live."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite (WAL mode) at DATA_DIR/outrider.db."
    )
    host: str = Field("127.0.0.1", description="Bind address of `outrider serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port of `outrider serve`.")
    secret_key: str = Field(DEFAULT_SECRET, description="Secret for dashboard session tokens.")
    admin_api_key: str | None = Field(
        None, description="Raw API key for the first admin account; generated and printed once when unset."
    )
    base_models_dir: Path | None = Field(
        None,
        description="Where built base models are kept (default DATA_DIR/base-models); shareable between instances.",
    )
    model_dirs: list[Path] = Field(
        default_factory=list,
        description="Extra folders whose sub-folders are saved models, served under their folder name.",
    )
    model_cache_size: int = Field(4, ge=1, description="How many loaded models stay in memory (LRU).")
    hub_offline: bool = Field(
        default_factory=lambda: os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false"),
        description="Never contact a model hub; hub models load only from the local cache.",
    )
    hub_probe_timeout_s: float = Field(3.0, gt=0, description="Timeout of the hub reachability probe.")
    batch_max_size: int = Field(16, ge=1, description="Most texts in one micro-batched extraction pass.")
    batch_max_wait_ms: float = Field(
        4.0, ge=0, description="Longest wait for more requests before an extraction pass starts."
    )
    decoder_max_batch: int = Field(8, ge=1, description="Most concurrent generations decoded together in one batch.")
    decoder_max_wait_ms: float = Field(
        10.0, ge=0, description="Longest wait for more generation requests before a decode batch starts."
    )
    model_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Per-model USD prices per million [input, output] tokens, overriding the local defaults.",
    )
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: all cores).")
    auth_cache_ttl_s: float = Field(
        5.0, ge=0, description="Seconds a verified API key is trusted without a database read (0 disables)."
    )
    rate_limits: dict[str, str] = Field(
        default_factory=lambda: {
            "inference": "1200/minute",
            "chat": "200/minute",
            "generate": "120/minute",
            "training": "20/minute",
        },
        description="Requests allowed per key and per account for each endpoint group (`limits` syntax).",
    )
    rate_limit_storage: str = Field(
        "memory://", description="Where rate-limit counters live: memory:// or redis://host:port/db."
    )
    max_request_bytes: int = Field(10_000_000, ge=1024, description="Largest accepted request body.")
    max_text_chars: int = Field(100_000, ge=1, description="Longest accepted single input text.")
    max_batch_texts: int = Field(1000, ge=1, description="Most texts in one `/inference` request.")
    max_new_tokens_limit: int = Field(2048, ge=1, description="Upper bound on `max_tokens` for local decoders.")
    local_price_input_per_mtok: float = Field(
        0.0, ge=0, description="USD per million input tokens charged for local models."
    )
    local_price_output_per_mtok: float = Field(
        0.0, ge=0, description="USD per million output tokens charged for local models."
    )
    log_level: str = Field("info", description="Log level of the server.")

    @model_validator(mode="after")
    def _refuse_unsafe_outside_development(self) -> Settings:
        weak_secret = self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        if self.environment == "production" and weak_secret:
            raise ValueError("OUTRIDER_SECRET_KEY must be set to 32+ random characters in production")
        return self

    @field_validator("rate_limits")
    @classmethod
    def _valid_rate_limits(cls, value: dict[str, str]) -> dict[str, str]:
        from outrider.services.rate_limits import parse_limits

        parse_limits(value)  # raises on an unknown group or an unparsable limit
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'outrider.db').resolve()}"

    @property
    def saved_models_dir(self) -> Path:
        """DATA_DIR/models: always served, where `outrider demo-model` and trainers save models."""
        return self.data_dir / "models"

    @property
    def all_model_dirs(self) -> list[Path]:
        return [self.saved_models_dir, *self.model_dirs]

    @property
    def resolved_base_models_dir(self) -> Path:
        return self.base_models_dir or self.data_dir / "base-models"


def build_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (used by the CLI and tests)."""
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
