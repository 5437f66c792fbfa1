"""Wire types of the evaluations surface (``/evaluations``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody
from outrider.services.evaluations import DEFAULT_MAX_TOKENS, MAX_EXAMPLES, MAX_MODELS

EvaluationStatus = Literal["queued", "running", "complete", "failed", "stopped"]


class EvaluationIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        ...,
        min_length=1,
        max_length=MAX_MODELS,
        description="Model ids (jobs, checkpoints, base, upstream models, '@deployments'): encoders for extraction "
        "data, decoders for decoder data; the first is the baseline each other one is compared with.",
    )
    dataset: str = Field(..., min_length=1, max_length=200, description="A dataset of this account.")
    version: int | Literal["latest"] | None = Field(None, description="A version number; default the latest.")
    threshold: float = Field(0.5, ge=0, le=1, description="The extraction threshold every model answers with.")
    max_examples: int | None = Field(
        None, ge=1, le=MAX_EXAMPLES, description=f"Score the first N examples (default all, at most {MAX_EXAMPLES})."
    )
    labels: list[str] | None = Field(
        None,
        max_length=1000,
        description="The labels in the order the models were trained with (default sorted: the order Outrider's "
        "trainer uses). Must include every label of the dataset version.",
    )
    max_tokens: int = Field(
        DEFAULT_MAX_TOKENS, ge=1, le=4096, description="Decoders: the longest answer (greedy decoding)."
    )
    json_schema: dict[str, Any] | None = Field(
        None, description="Decoders: a JSON schema the answers are checked against (the schema_valid rate)."
    )


class EvaluatedDataset(BaseModel):
    name: str
    version: int
    task_type: str
    examples: int


class ModelEvaluationOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: str = Field(..., description="As asked for (a deployment's '@name' too).")
    model_used: str = Field(..., description="The model that answered (a deployment's target when queued).")
    examples: int
    metrics: dict[str, Any] = Field(
        ...,
        description="Extraction: micro, macro and per_label precision/recall/f1. Classification: accuracy, macro, "
        "per_label and confusion_matrix ({labels, matrix[gold][predicted]}). Decoders: exact_match, json_valid, "
        "schema_valid (null without a json_schema) and errors (examples whose call failed).",
    )
    latency_ms: dict[str, float] = Field(..., description="Per example (one served call each): mean, p50, p95, max.")
    tokens: int
    cost_usd: float = Field(..., description="What these calls cost at the model's price (not charged).")
    cost_usd_per_example: float


class EvaluationOut(BaseModel):
    id: str
    object: Literal["evaluation"] = "evaluation"
    status: EvaluationStatus
    dataset: EvaluatedDataset
    threshold: float
    labels: list[str]
    max_tokens: int | None = Field(None, description="Decoders: the longest answer.")
    json_schema: dict[str, Any] | None = Field(None, description="Decoders: the schema answers were checked against.")
    models: list[dict[str, str]] = Field(..., description="[{model_id, model_used}], in the order asked.")
    progress: dict[str, Any]
    results: list[ModelEvaluationOut] = Field(..., description="One per model, as each is done.")
    comparisons: list[dict[str, Any]] = Field(
        ...,
        description="Each model after the first against the first: per_label differences and a paired bootstrap "
        "(difference, ci95, p_value) of the headline figures.",
    )
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EvaluationList(BaseModel):
    evaluations: list[EvaluationOut]
    total: int
    limit: int
    offset: int
