"""Wire types for accounts and keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody
from outrider.services.accounts import ACCOUNT_NAME_PATTERN, KEY_NAME_PATTERN, MAX_RPM_LIMIT, MAX_TPM_LIMIT

OptimizeMode = Literal["balanced", "quality", "cost", "latency"]
_POOL = "Model ids this key may call (null: any). A key may only give keys it makes a subset of its own pool."
# A pool names models, not data: 200 ids of at most 300 characters each is far beyond any real pool.
ModelPool = list[Annotated[str, Field(min_length=1, max_length=300)]]
MAX_POOL_MODELS = 200
_EXPIRES = "When the key stops working; must be in the future (a time without a zone is UTC)."


class KeyCreate(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("default", min_length=1, max_length=200, pattern=KEY_NAME_PATTERN)
    model_pool: ModelPool | None = Field(None, max_length=MAX_POOL_MODELS, description=_POOL)
    optimize_mode: OptimizeMode = "balanced"
    expires_at: datetime | None = Field(None, description=_EXPIRES)
    rpm_limit: int | None = Field(
        None, ge=1, le=MAX_RPM_LIMIT, description="Requests per minute for this key, over every endpoint."
    )
    tpm_limit: int | None = Field(
        None, ge=1, le=MAX_TPM_LIMIT, description="Tokens (prompt + completion) per minute for this key."
    )


class KeyUpdate(CheckedBody):
    """Only the fields sent are changed; send null to clear ``model_pool`` or ``expires_at``."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200, pattern=KEY_NAME_PATTERN)
    model_pool: ModelPool | None = Field(None, max_length=MAX_POOL_MODELS, description=_POOL)
    optimize_mode: OptimizeMode | None = None
    expires_at: datetime | None = Field(None, description=_EXPIRES)
    rpm_limit: int | None = Field(None, ge=1, le=MAX_RPM_LIMIT)
    tpm_limit: int | None = Field(None, ge=1, le=MAX_TPM_LIMIT)


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
    user_id: str | None = Field(description="The user this key acts as (its role); null: the account's own key.")


class KeyCreated(KeyOut):
    key: str = Field(description="The raw key. Shown only in this response: store it now.")


class KeyList(BaseModel):
    keys: list[KeyOut]


class AccountCreate(CheckedBody):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=ACCOUNT_NAME_PATTERN,
        description="Letters, digits, '.', '_' and '-', starting with a letter or digit.",
    )
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
