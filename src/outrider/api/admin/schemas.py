"""Wire types for accounts and keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OptimizeMode = Literal["balanced", "quality", "cost", "latency"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("default", min_length=1, max_length=200)
    model_pool: list[str] | None = None
    optimize_mode: OptimizeMode = "balanced"
    expires_at: datetime | None = None
    rpm_limit: int | None = Field(None, ge=1, description="Requests per minute for this key, over every endpoint.")
    tpm_limit: int | None = Field(None, ge=1, description="Tokens (prompt + completion) per minute for this key.")


class KeyUpdate(BaseModel):
    """Only the fields sent are changed; send null to clear ``model_pool`` or ``expires_at``."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    model_pool: list[str] | None = None
    optimize_mode: OptimizeMode | None = None
    expires_at: datetime | None = None
    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    model_pool: list[str] | None
    optimize_mode: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None


class KeyCreated(KeyOut):
    key: str = Field(description="The raw key. Shown only in this response: store it now.")


class KeyList(BaseModel):
    keys: list[KeyOut]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    is_admin: bool = False
    unlimited_credits: bool = Field(False, description="Meter usage but never refuse or charge for credit.")


class AccountOut(BaseModel):
    id: str
    name: str
    is_admin: bool
    unlimited_credits: bool
    created_at: datetime


class AccountCreated(AccountOut):
    api_key: KeyCreated


class AccountList(BaseModel):
    accounts: list[AccountOut]
