"""Wire types of the deployments surface (``/deployments``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody
from outrider.services.deployments import MAX_NOTE_CHARS


class DeploymentIn(CheckedBody):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_id: str = Field(
        ...,
        min_length=1,
        max_length=300,
        description="The model it serves: a training job id, a checkpoint id, a base model or an upstream model.",
    )
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS, description="Why, kept in the history.")


class RollbackIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)


class DeploymentEventOut(BaseModel):
    version: int
    action: Literal["create", "switch", "rollback"]
    target: str
    previous_target: str | None
    switched_by: str = Field(..., description="'user NAME' or 'key NAME (PREFIX...)'.")
    switched_by_id: str | None = Field(None, description="The user's or the API key's id.")
    note: str | None
    switched_at: datetime


class DeploymentOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    object: Literal["deployment"] = "deployment"
    name: str
    model: str = Field(..., description="The id clients call: '@' + name.")
    target: str = Field(..., description="The model id it serves now.")
    version: int = Field(..., description="How many times its target was set (create, switches, rollbacks).")
    created_at: datetime
    updated_at: datetime
    history: list[DeploymentEventOut] = Field(..., description="Every change of target, newest first.")


class DeploymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeploymentOut]


class DeploymentDeleted(BaseModel):
    name: str
    model: str
    deleted: bool = True
