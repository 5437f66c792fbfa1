"""Frozen records returned by query functions: what services see instead of database rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    is_admin: bool
    created_at: datetime


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


@dataclass(frozen=True)
class Feedback:
    verdict: str
    corrected_output: Any
    notes: str | None
    created_at: datetime
    updated_at: datetime


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
