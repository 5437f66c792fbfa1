"""Typed settings, built once at start-up by :func:`build_settings` and passed down.

Every setting reads from the environment with the ``OUTRIDER_`` prefix (``OUTRIDER_PORT=9000``) or
from a ``.env`` file. Nothing here is created at import time: callers build a :class:`Settings` and
hand it to the app factory, the CLI or the worker. Building one checks: each field's bounds (the metrics
token's length among them), the rate-limit strings, the routing fit scores and the providers file (when
set); and, with ``environment="production"`` only, that the secret is not the default and has 32+
characters. Nothing else is refused, in any environment.
"""

from __future__ import annotations

import contextlib
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
    database_pool_size: int = Field(
        10, ge=1, description="Connections each process keeps open to a PostgreSQL database (not SQLite)."
    )
    database_max_overflow: int = Field(
        10, ge=0, description="Extra PostgreSQL connections a process may open past the pool size under load."
    )
    database_pool_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for a free PostgreSQL connection before a request fails."
    )
    redis_url: str | None = Field(
        None,
        description=(
            "Redis (redis://host:port/db) through which API processes share key, user and circuit-breaker changes; "
            "needed for `--workers` above 1."
        ),
    )
    api_workers: int = Field(
        1, ge=1, le=64, description="API processes `outrider serve` runs on its port (as `--workers`)."
    )
    host: str = Field("127.0.0.1", description="Bind address of `outrider serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port of `outrider serve`.")
    secret_key: str = Field(DEFAULT_SECRET, description="Secret that signs session tokens (sign-in cookies).")
    admin_api_key: str | None = Field(
        None, description="Raw API key for the first admin account; generated and printed once when unset."
    )
    admin_password: str | None = Field(
        None,
        description="Password of the first admin account's owner user `admin`; generated and printed once when unset.",
    )
    session_lifetime_s: int = Field(
        43_200, ge=60, le=31_536_000, description="Seconds a session stays valid after its last renewal (sliding)."
    )
    session_max_age_s: int = Field(
        604_800, ge=60, le=31_536_000, description="Seconds after sign-in past which a session is never renewed."
    )
    session_cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Mark session cookies `Secure`: auto (when the request came over https), always or never."
    )
    session_trusted_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) besides the server's own allowed to send cookie-signed writes.",
    )
    login_failures_per_user: int = Field(
        5, ge=1, description="Failed sign-ins allowed per username or email within the login window, then 429."
    )
    login_attempts_per_address: int = Field(
        50, ge=1, description="Sign-in attempts allowed per client address within the login window, then 429."
    )
    login_window_s: int = Field(900, ge=1, description="The window (seconds) the sign-in throttles count over.")
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
    encoder_runtime: Literal["auto", "torch"] = Field(
        "auto",
        description=(
            "How GLiNER2 encoders run: `auto` serves each model's int8 ONNX Runtime form when it matches fp32 "
            "within the documented tolerance (built on first load), `torch` always serves fp32 PyTorch."
        ),
    )
    optimized_models_dir: Path | None = Field(
        None,
        description=(
            "Where the int8 ONNX forms of encoders are kept, one folder per distinct set of weights "
            "(default DATA_DIR/optimized); shareable between instances."
        ),
    )
    embedding_batch_max_size: int = Field(
        32, ge=1, description="Most texts in one micro-batched pass of a local embedding model."
    )
    embedding_batch_max_wait_ms: float = Field(
        4.0, ge=0, description="Longest wait for more texts before a local embedding pass starts."
    )
    embedding_max_inputs: int = Field(2048, ge=1, description="Most texts in one `POST /v1/embeddings` request.")
    decoder_max_batch: int = Field(8, ge=1, description="Most concurrent generations decoded together in one batch.")
    decoder_max_wait_ms: float = Field(
        10.0, ge=0, description="Longest wait for more generation requests before a decode batch starts."
    )
    model_prices: dict[str, tuple[float, float] | tuple[float, float, float, float]] = Field(
        default_factory=dict,
        description=(
            "Per-model USD prices per million [input, output] tokens, or [input, output, cache read, cache write], "
            "overriding the local defaults."
        ),
    )
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: all cores).")
    auth_cache_ttl_s: float = Field(
        5.0,
        ge=0,
        description=(
            "Seconds a verified API key, and an account's judge configurations, are trusted without a database "
            "read (0 disables)."
        ),
    )
    rate_limits: dict[str, str] = Field(
        default_factory=lambda: {
            "inference": "1200/minute",
            "chat": "200/minute",
            "embeddings": "1200/minute",
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
    max_images_per_request: int = Field(
        20, ge=0, description="Most image parts in one chat request (all messages together); more get 400."
    )
    max_image_bytes: int = Field(
        5_000_000, ge=1, description="Largest inline (base64) image, in decoded bytes; larger ones get 400."
    )
    max_new_tokens_limit: int = Field(2048, ge=1, description="Upper bound on `max_tokens` for local decoders.")
    local_price_input_per_mtok: float = Field(
        0.0, ge=0, description="USD per million input tokens charged for local models."
    )
    local_price_output_per_mtok: float = Field(
        0.0, ge=0, description="USD per million output tokens charged for local models."
    )
    initial_credits_usd: float = Field(
        0.0, ge=0, description="Credit (USD) granted to every new account; the bootstrap admin is unlimited."
    )
    embedded_worker: bool = Field(
        True, description="Run a job worker inside `outrider serve` (off: jobs wait for an `outrider worker`)."
    )
    worker_concurrency: int = Field(2, ge=1, description="Most jobs one worker runs at the same time.")
    worker_poll_interval_s: float = Field(1.0, gt=0, description="How often an idle worker looks for queued jobs.")
    job_heartbeat_s: float = Field(
        5.0, gt=0, description="How often a worker stamps its running jobs' heartbeats and reads their stop flags."
    )
    job_stale_after_s: float = Field(
        60.0, gt=0, description="A running job whose heartbeat is older than this is failed as abandoned."
    )
    judge_poll_interval_s: float = Field(
        5.0, gt=0, description="How often a worker looks for sampled records waiting for their background judge."
    )
    judge_batch_size: int = Field(
        8, ge=1, le=1000, description="Records a worker claims from the judge queue at a time."
    )
    judge_max_attempts: int = Field(
        3, ge=1, le=100, description="Tries of a background judge that fails with an upstream error or a rate limit."
    )
    judge_retry_after_s: float = Field(
        60.0, gt=0, description="Wait before the second try of a failed background judge; doubled for each later one."
    )
    judge_lease_s: float = Field(
        600.0, gt=0, description="A claimed record whose worker died is judged again after this many seconds."
    )
    retrain_check_interval_s: float = Field(
        30.0, gt=0, description="How often a worker advances retrain runs and starts those whose corrections arrived."
    )
    job_backend: Literal["local", "ray"] = Field(
        "local",
        description=(
            "Where jobs run: `local` (the embedded worker or `outrider worker` processes) or `ray` (Ray tasks on "
            "the cluster at `ray_address`; needs the `ray` extra and a data directory shared with the Ray nodes)."
        ),
    )
    ray_address: str | None = Field(
        None,
        description=(
            "Ray cluster the `ray` job backend submits to (`HOST:6379`, `ray://HOST:10001`, `auto`); "
            "unset: a local Ray."
        ),
    )
    ray_job_resources: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description=(
            "Per job kind, what its Ray task asks for: `num_cpus`, `num_gpus`, `memory_mb` "
            '(e.g. `{"training": {"num_cpus": 4, "num_gpus": 1, "memory_mb": 8000}}`); unset keys: 1 CPU, no GPU '
            "(1 GPU for training when `device` names CUDA), no memory reservation."
        ),
    )
    device: str = Field(
        "auto",
        description=(
            "Where models run and train: `auto` (the first GPU when there is one, else CPU), `cpu`, `cuda`, `cuda:N`."
        ),
    )
    training_price_per_hour_usd: float = Field(
        0.0, ge=0, description="USD charged per hour a training job's trainer runs (metered every few seconds)."
    )
    training_threads: int | None = Field(
        None, ge=1, description="torch threads of a trainer process (default: all cores, less one if serving too)."
    )
    training_stop_grace_s: float = Field(
        20.0, gt=0, description="Seconds a stopped trainer gets to save a checkpoint and exit before it is killed."
    )
    default_teacher_model: str = Field(
        "HuggingFaceTB/SmolLM2-135M-Instruct", description="Teacher model of `POST /generate` when none is given."
    )
    default_labeling_model: str = Field(
        "outrider/gliner2-minilm-l6",
        description="Encoder of the label-existing endpoints when none is given (prefer a fine-tuned model id).",
    )
    max_generate_examples: int = Field(10_000, ge=1, description="Largest `num_examples` of one generation job.")
    max_dataset_upload_bytes: int = Field(
        200_000_000, ge=1024, description="Largest dataset upload or import (it overrides the request body limit)."
    )
    providers_file: Path | None = Field(
        None, description="YAML or JSON file declaring upstream providers and their models (docs/providers.md)."
    )
    upstream_health_ttl_s: float = Field(
        30.0, ge=0, description="Seconds an upstream model's health probe result is reused."
    )
    upstream_breaker_failures: int = Field(
        3, ge=1, description="Consecutive upstream failures (calls or probes) that open a model's circuit breaker."
    )
    upstream_breaker_cooldown_s: float = Field(
        30.0, gt=0, description="Seconds an upstream model stays unavailable once its circuit breaker opened."
    )
    routing_fit_scores: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Fit (0-1) of each model for each routing task type ('*': the model's default); absent = unknown.",
    )
    routing_default_mode: Literal["balanced", "quality", "cost", "latency"] = Field(
        "balanced", description='Optimisation mode of `model: "auto"` when neither the key nor the request sets one.'
    )
    routing_feedback_prior_strength: float = Field(
        8.0, gt=0, description="How many feedback verdicts a configured fit score is worth when blending them."
    )
    routing_max_attempts: int = Field(
        3, ge=1, description='Most models tried for one `model: "auto"` call (the chosen one, then fallbacks).'
    )
    routing_latency_window: int = Field(
        200, ge=1, description="Recent request latencies kept per model for routing's observed p50."
    )
    log_level: str = Field("info", description="Log level of the server.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines of `outrider serve` and `outrider worker`: text, or one JSON object per line."
    )
    access_log: bool = Field(
        False, description="Log one line per HTTP request (method, path, route, status, duration, request id)."
    )
    metrics_token: str | None = Field(
        None,
        min_length=16,
        description="Bearer token that may read `GET /metrics` (admin API keys always may); 16+ characters.",
    )
    ready_timeout_s: float = Field(
        5.0, gt=0, description="Longest wait of each `/health/ready` check (and of a scrape's store read)."
    )

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        weak_secret = self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        if self.environment == "production" and weak_secret:
            raise ValueError("OUTRIDER_SECRET_KEY must be set to 32+ random characters in production")
        return self

    @field_validator("device")
    @classmethod
    def _valid_device(cls, value: str) -> str:
        from outrider.backends.devices import parse_device

        return parse_device(value)  # syntax only: whether that GPU exists is checked when services start

    @field_validator("ray_job_resources")
    @classmethod
    def _valid_ray_job_resources(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from outrider.core.job_resources import validate_resources

        return validate_resources(value)

    @field_validator("rate_limits")
    @classmethod
    def _valid_rate_limits(cls, value: dict[str, str]) -> dict[str, str]:
        from outrider.core.rate_limit_groups import parse_limits

        parse_limits(value)  # raises on an unknown group or an unparsable limit
        return value

    @field_validator("routing_fit_scores")
    @classmethod
    def _valid_routing_fit_scores(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from outrider.routing.scorer import validate_fit_scores

        return validate_fit_scores(value)  # canonical task names; raises on unknown tasks or scores outside 0-1

    @field_validator("providers_file")
    @classmethod
    def _valid_providers_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            from outrider.backends.upstream_config import load_providers

            load_providers(value)  # raises ProvidersFileError (a ValueError) naming each problem
        return value

    def sharing_problems(self) -> list[str]:
        """Why this configuration cannot serve from several API processes (empty: it can)."""
        problems = []
        if self.resolved_database_url.startswith("sqlite"):
            problems.append("the database is SQLite: set OUTRIDER_DATABASE_URL to a PostgreSQL database")
        if self.rate_limit_storage.removeprefix("async+").startswith("memory://"):
            problems.append("rate limits are counted in memory: set OUTRIDER_RATE_LIMIT_STORAGE=redis://...")
        if not self.redis_url:
            problems.append(
                "key, user and circuit-breaker changes would stay in the process that made them: set OUTRIDER_REDIS_URL"
            )
        if self.embedded_worker:
            problems.append(
                "each process would run its own job worker: set OUTRIDER_EMBEDDED_WORKER=false and run "
                "`outrider worker`"
            )
        return problems

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

    @property
    def resolved_optimized_models_dir(self) -> Path:
        return self.optimized_models_dir or self.data_dir / "optimized"


def build_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (used by the CLI and tests)."""
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    prepare_data_dir(settings.data_dir)
    return settings


def prepare_data_dir(path: Path) -> None:
    """Create the data directory private to this user (0700; an existing one is tightened to that) and make
    what this process creates from here on private too: it holds the database (key hashes, credit, every
    stored call), datasets and trained weights. The umask is process-wide, so it is set here, where the
    server, the worker and the CLI make their data directory, never at import; it only ever tightens
    (``| 0o077``), and trainer processes inherit it."""
    os.umask(os.umask(0o077) | 0o077)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(PermissionError):  # not ours to change: leave it as its owner set it
            path.chmod(0o700)
