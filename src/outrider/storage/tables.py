"""SQLAlchemy table definitions. Migrations in ``migrations/versions`` must match these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Credits in integer micro-dollars; ``reserved`` is held by calls in flight (available = balance - reserved).
    balance_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    unlimited_credits: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    model_pool: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    optimize_mode: Mapped[str] = mapped_column(String(20), default="balanced")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The user the key acts as (its role applies); None: a key of the account itself, with an owner's rights.
    user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class UserRow(Base):
    """A person who signs in to an account. Usernames and emails are stored lower-cased."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InferenceRow(Base):
    __tablename__ = "inferences"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    surface: Mapped[str] = mapped_column(String(20))
    model_id: Mapped[str] = mapped_column(String(300))
    model_used: Mapped[str] = mapped_column(String(300))
    task: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    training_job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    input: Mapped[Any] = mapped_column(JSON)
    output: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    error_type: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost_micro_usd: Mapped[int] = mapped_column(Integer, default=0)
    routing: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_inferences_account_created", "account_id", "created_at", "id"),
        Index("ix_inferences_account_model", "account_id", "model_id"),
    )


class FeedbackRow(Base):
    __tablename__ = "inference_feedback"

    inference_id: Mapped[str] = mapped_column(ForeignKey("inferences.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), index=True)
    verdict: Mapped[str] = mapped_column(String(20))
    corrected_output: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JudgementRow(Base):
    """An LLM judge's verdict on one inference record (Pioneer's ``llmaj_*`` fields). A judge that failed
    leaves ``verdict`` null and says why in ``error``."""

    __tablename__ = "inference_judgements"

    inference_id: Mapped[str] = mapped_column(ForeignKey("inferences.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), index=True)
    judge_model: Mapped[str] = mapped_column(String(300))
    verdict: Mapped[str | None] = mapped_column(String(20), nullable=True)  # pass | fail | uncertain
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasoning: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    judged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditTransactionRow(Base):
    __tablename__ = "credit_transactions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    balance_after_micro_usd: Mapped[int] = mapped_column(BigInteger)
    reference_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_credit_transactions_account_created", "account_id", "created_at"),)


class UsageRow(Base):
    __tablename__ = "usage_records"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    inference_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    surface: Mapped[str] = mapped_column(String(20))
    model_id: Mapped[str] = mapped_column(String(300))
    model_used: Mapped[str] = mapped_column(String(300))
    task: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Windows (totals, buckets, small windows' latencies) and pages read from this index alone (migration 0008).
        Index(
            "ix_usage_records_account_window",
            "account_id",
            "created_at",
            "id",
            "status",
            "cost_micro_usd",
            "prompt_tokens",
            "completion_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "latency_ms",
        ),
        Index("ix_usage_records_account_latency", "account_id", "latency_ms", "created_at"),
        Index("ix_usage_records_account_model", "account_id", "model_id", "created_at", "id"),
        Index("ix_usage_records_account_key", "account_id", "api_key_id"),
    )


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ux_datasets_account_name", "account_id", "name", unique=True),)


class DatasetVersionRow(Base):
    """One immutable version. Its examples live in a JSONL file under DATA_DIR/datasets (``path``), with a
    sidecar offsets file; ``example_count`` and ``byte_size`` are what is committed (a job appends)."""

    __tablename__ = "dataset_versions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    task_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    example_count: Mapped[int] = mapped_column(Integer, default=0)
    byte_size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    label_stats: Mapped[dict] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(String(500))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ux_dataset_versions_dataset_version", "dataset_id", "version", unique=True),)


class JobRow(Base):
    """Work run by a worker (generation, training, ...): claimed by compare-and-set on ``status``."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    payload: Mapped[Any] = mapped_column(JSON)
    progress: Mapped[Any] = mapped_column(JSON)
    result: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_account_kind_created", "account_id", "kind", "created_at"),
    )


class TrainingCheckpointRow(Base):
    """A checkpoint saved by a training job; ``path`` is relative to DATA_DIR/training."""

    __tablename__ = "training_checkpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metrics: Mapped[Any] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_training_checkpoints_job_step", "job_id", "step"),)


class DeploymentRow(Base):
    """A stable name (called as ``@name``) pointing at a model id of its account. ``version`` counts the changes
    of ``target``: each change is a compare-and-set on it, so two concurrent switches never both win."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ux_deployments_account_name", "account_id", "name", unique=True),)


class DeploymentEventRow(Base):
    """One change of a deployment's target (``create``, ``switch``, ``rollback``): who, when, from what to what."""

    __tablename__ = "deployment_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(300))
    previous_target: Mapped[str | None] = mapped_column(String(300), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # a user id or an API key id
    actor_name: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ux_deployment_events_deployment_version", "deployment_id", "version", unique=True),)


class JudgeConfigRow(Base):
    """Which model judges an account's records in the background, and what share of them. ``project_id`` ""
    is the account-wide configuration; a project's own one overrides it for that project's records."""

    __tablename__ = "judge_configs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(200))
    judge_model: Mapped[str] = mapped_column(String(300))
    sampling_rate: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ux_judge_configs_account_project", "account_id", "project_id", unique=True),)


class JudgeQueueRow(Base):
    """A sampled record waiting for its judge. A worker claims it by a compare-and-set on ``attempts`` and
    pushes ``not_before`` past its lease (or its retry back-off); the row goes once the record is judged or
    its judge has failed for good."""

    __tablename__ = "judge_queue"

    inference_id: Mapped[str] = mapped_column(ForeignKey("inferences.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40))
    judge_model: Mapped[str] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetrainPolicyRow(Base):
    """A deployment's retrain policy and its current (or last) run. ``revision`` counts the changes of the row:
    each one is a compare-and-set on it, so two workers never advance one run twice."""

    __tablename__ = "retrain_policies"

    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), index=True)
    dataset: Mapped[str] = mapped_column(String(200))
    task_type: Mapped[str] = mapped_column(String(20))
    min_corrections: Mapped[int] = mapped_column(Integer)
    margin: Mapped[float] = mapped_column(Float)
    holdout_fraction: Mapped[float] = mapped_column(Float)
    training: Mapped[dict] = mapped_column(JSON)  # training_type, nr_epochs, batch_size, learning_rate
    corrections_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    run: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
