"""Wire types of the deployments surface (``/deployments``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    action: Literal["create", "switch", "rollback", "retrain_kept"] = Field(
        ..., description="retrain_kept: the retrain policy's candidate was not better (the reason is the note)."
    )
    target: str
    previous_target: str | None
    switched_by: str = Field(..., description="'user NAME', 'key NAME (PREFIX...)' or 'retrain policy'.")
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


class RetrainPolicyIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        ..., min_length=1, max_length=180, description="Where corrections go; '-train' and '-holdout' are derived."
    )
    task_type: Literal["ner", "classification", "structures", "relations", "decoder"]
    min_corrections: int = Field(20, ge=1, le=100_000, description="New corrections that start a run.")
    margin: float = Field(0.02, ge=0, le=1, description="How much better the candidate's headline figure must be.")
    holdout_fraction: float = Field(0.2, ge=0.05, le=0.5, description="Share of new examples held out for evaluation.")
    training_type: Literal["lora", "full"] = "full"
    nr_epochs: int | None = Field(None, ge=1, le=100)
    batch_size: int | None = Field(None, ge=1, le=1024)


class RetrainPolicyOut(BaseModel):
    object: Literal["retrain_policy"] = "retrain_policy"
    deployment: str
    dataset: str
    task_type: str
    min_corrections: int
    margin: float
    holdout_fraction: float
    training: dict[str, Any]
    corrections_since: datetime | None = Field(..., description="Corrections after this start the next run.")
    run: dict[str, Any] | None = Field(
        ...,
        description="The current or last run: stage (building, training, evaluating, done), serving, built, train, "
        "holdout, training_job, candidate, evaluation, outcome (switched, kept, nothing new, failed) and reason.",
    )
    created_at: datetime
    updated_at: datetime


class RetrainPolicyDeleted(BaseModel):
    deployment: str
    deleted: bool = True
