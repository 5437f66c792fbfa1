"""Frozen records returned by query functions: what services see instead of database rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    is_admin: bool
    created_at: datetime
    unlimited_credits: bool = False


@dataclass(frozen=True)
class ApiKey:
    id: str
    account_id: str
    name: str
    prefix: str
    model_pool: list[str] | None
    optimize_mode: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class User:
    """A person who signs in to an account (never with the password hash)."""

    id: str
    account_id: str
    username: str
    email: str | None
    role: str
    session_version: int
    disabled: bool
    created_at: datetime
    password_changed_at: datetime


@dataclass(frozen=True)
class Feedback:
    verdict: str
    corrected_output: Any
    notes: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Judgement:
    judge_model: str
    verdict: str | None  # pass | fail | uncertain; None when the judge failed
    score: float | None
    reasoning: str | None
    error: str | None
    judged_at: datetime


@dataclass(frozen=True)
class Inference:
    id: str
    account_id: str
    api_key_id: str | None
    surface: str
    model_id: str
    model_used: str
    task: str
    project_id: str | None
    training_job_id: str | None
    input: Any
    output: Any
    status: str
    error_type: str | None
    error_message: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_micro_usd: int
    routing: Any
    created_at: datetime
    feedback: Feedback | None = None
    cache_read_tokens: int = 0  # of prompt_tokens: read from an upstream's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens: written to it
    judgement: Judgement | None = None


@dataclass(frozen=True)
class NewInference:
    """What a service hands to storage to record one call."""

    account_id: str
    api_key_id: str | None
    surface: str
    model_id: str
    model_used: str
    task: str
    input: Any
    output: Any
    status: str
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    project_id: str | None = None
    training_job_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    routing: Any = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class Balance:
    account_id: str
    balance_micro_usd: int
    reserved_micro_usd: int
    unlimited: bool

    @property
    def available_micro_usd(self) -> int:
        return self.balance_micro_usd - self.reserved_micro_usd


@dataclass(frozen=True)
class CreditTransaction:
    id: str
    account_id: str
    kind: str
    amount_micro_usd: int
    balance_after_micro_usd: int
    reference_id: str | None
    api_key_id: str | None
    model_id: str | None
    description: str | None
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class NewUsage:
    account_id: str
    api_key_id: str | None
    inference_id: str | None
    surface: str
    model_id: str
    model_used: str
    task: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    cost_micro_usd: int
    latency_ms: float
    cache_read_tokens: int = field(default=0, kw_only=True)  # of prompt_tokens
    cache_write_tokens: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class UsageRecord(NewUsage):
    id: str
    created_at: datetime


@dataclass(frozen=True)
class UsageTotals:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micro_usd: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class DatasetVersion:
    id: str
    dataset_id: str
    version: int
    task_type: str
    status: str  # building | ready | partial
    source: str  # upload | import | generation | label-existing
    example_count: int
    byte_size: int
    sha256: str | None
    label_stats: dict[str, int]
    path: str
    job_id: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Dataset:
    id: str
    account_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    versions: tuple[DatasetVersion, ...] = ()


@dataclass(frozen=True)
class Job:
    id: str
    account_id: str
    kind: str
    status: str  # queued | running | complete | failed | stopped
    payload: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    stop_requested: bool
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class TrainingCheckpoint:
    id: str
    job_id: str
    account_id: str
    step: int
    epoch: int | None
    metrics: dict[str, Any]
    path: str  # relative to DATA_DIR/training
    created_at: datetime


@dataclass(frozen=True)
class DeploymentEvent:
    version: int
    action: str  # create | switch | rollback | retrain_kept
    target: str
    previous_target: str | None
    actor_id: str | None
    actor_name: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class Deployment:
    id: str
    account_id: str
    name: str
    target: str
    version: int
    created_at: datetime
    updated_at: datetime
    history: tuple[DeploymentEvent, ...] = ()  # newest first


@dataclass(frozen=True)
class JudgeConfig:
    """A background judge: ``project_id`` None is the account-wide one."""

    account_id: str
    project_id: str | None
    judge_model: str
    sampling_rate: float
    updated_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class QueuedJudgement:
    """A sampled record claimed by a worker for its judge; ``attempts`` counts this one."""

    inference_id: str
    account_id: str
    judge_model: str
    attempts: int


@dataclass(frozen=True)
class RetrainPolicy:
    deployment_id: str
    account_id: str
    deployment: str  # the deployment's name
    dataset: str
    task_type: str
    min_corrections: int
    margin: float
    holdout_fraction: float
    training: dict[str, Any]
    corrections_since: datetime | None
    revision: int
    run: dict[str, Any] | None  # the current or last run: stage, jobs, outcome
    created_at: datetime
    updated_at: datetime
