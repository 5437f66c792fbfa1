"""Wire types for credits, transactions and usage. Amounts are given in USD and in integer micro-dollars
(the exact figure: 1 USD = 1,000,000 micro-dollars)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody


class CreditsOut(BaseModel):
    account_id: str
    balance_usd: float
    balance_micro_usd: int
    reserved_micro_usd: int = Field(description="Held by calls in flight; released or charged when they end.")
    available_micro_usd: int
    unlimited: bool = Field(description="Unlimited accounts are metered in usage but never charged.")


class TransactionOut(BaseModel):
    id: str
    kind: Literal["grant", "refund", "inference", "generation", "training"]
    amount_usd: float
    amount_micro_usd: int = Field(description="Positive for grants and refunds, negative for charges.")
    balance_after_micro_usd: int
    reference_id: str | None = Field(description="The inference or job charged, or the grant's reference.")
    api_key_id: str | None
    model_id: str | None
    description: str | None
    created_at: datetime


class TransactionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TransactionOut]
    total: int
    limit: int
    offset: int


class GrantCreate(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    account_id: str | None = None
    account_name: str | None = None
    amount_usd: float = Field(gt=0, le=1_000_000)
    kind: Literal["grant", "refund"] = "grant"
    description: str | None = Field(None, max_length=500)
    reference_id: str | None = Field(None, max_length=60, description="For a refund: the charge refunded.")


class UsageOut(BaseModel):
    id: str
    created_at: datetime
    inference_id: str | None = Field(description="The history record (null when the call used store: false).")
    api_key_id: str | None
    surface: str
    model_id: str
    model_used: str
    task: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_read_tokens: int = Field(0, description="Of prompt_tokens: read from an upstream's prompt cache.")
    cache_write_tokens: int = Field(0, description="Of prompt_tokens: written to an upstream's prompt cache.")
    cost_usd: float
    cost_micro_usd: int
    latency_ms: float


class UsageTotalsOut(BaseModel):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_read_tokens: int = Field(0, description="Of prompt_tokens: read from an upstream's prompt cache.")
    cache_write_tokens: int = Field(0, description="Of prompt_tokens: written to an upstream's prompt cache.")
    cost_usd: float
    cost_micro_usd: int


class UsageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UsageOut]
    totals: UsageTotalsOut = Field(description="Over every record matching the filters, not only this page.")
    limit: int
    offset: int
