"""Wire types of the data surface: datasets, generation jobs, label-existing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody


class VersionOut(BaseModel):
    name: str
    version: int
    task_type: str
    status: Literal["building", "ready", "partial"]
    source: str
    example_count: int
    byte_size: int
    sha256: str | None
    label_stats: dict[str, int]
    job_id: str | None
    created_at: datetime
    finished_at: datetime | None


class DatasetOut(BaseModel):
    name: str
    task_type: str  # of the latest version
    latest_version: int
    example_count: int  # of the latest version
    created_at: datetime
    updated_at: datetime
    versions: list[VersionOut]


class DatasetList(BaseModel):
    datasets: list[DatasetOut]


class DeletedOut(BaseModel):
    name: str
    deleted_versions: list[int]


class ExamplePageOut(BaseModel):
    name: str
    version: int
    task_type: str
    status: str
    total: int
    offset: int
    limit: int
    examples: list[dict[str, Any]]


class GenerateIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")

    task_type: Literal["ner", "classification", "decoder"]
    dataset_name: str = Field(min_length=1, max_length=200)
    num_examples: int = Field(ge=1)
    labels: list[str] = Field(default_factory=list, max_length=200)
    domain_description: str | None = Field(None, max_length=10_000)
    classified_examples: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    prompt: str | None = Field(None, max_length=20_000)
    teacher_model: str | None = Field(None, min_length=1, max_length=300)


class GenerateOut(BaseModel):
    job_id: str
    status: str


class GenerationJobOut(BaseModel):
    job_id: str
    status: Literal["queued", "running", "complete", "failed", "stopped"]
    task_type: str
    dataset_name: str
    dataset_version: int | None
    num_examples: int  # generated (committed) so far
    num_requested: int
    teacher_model: str
    error: str | None
    progress: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class GenerationJobList(BaseModel):
    jobs: list[GenerationJobOut]
    total: int
    limit: int
    offset: int


class LabelExistingIn(CheckedBody):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(min_length=1, max_length=200)
    inputs: list[str] = Field(min_length=1, max_length=1000)
    model_id: str | None = Field(None, min_length=1, max_length=300)
    threshold: float | None = Field(None, ge=0.0, le=1.0)  # None: the model's own defaults
    dataset_name: str | None = Field(None, min_length=1, max_length=200)


class SpanOut(BaseModel):
    start: int
    end: int
    text: str
    label: str
    confidence: float


class NerAnnotation(BaseModel):
    text: str
    entities: list[SpanOut]


class ClassAnnotation(BaseModel):
    text: str
    label: str | None
    confidence: float | None


class LabelUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


class LabelExistingOut(BaseModel):
    model_id: str
    model_used: str
    results: list[NerAnnotation] | list[ClassAnnotation]
    latency_ms: float
    usage: LabelUsage
    dataset_name: str | None = None
    dataset_version: int | None = None


class FromInferencesIn(CheckedBody):
    """Which reviewed inference records become examples, and of what."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_id: str | None = Field(
        None, max_length=300, description="Records of calls to this id (a deployment's '@name' too)."
    )
    project_id: str | None = Field(None, max_length=200)
    human_verdict: Literal["correct", "incorrect", "reviewed"] = Field(
        "reviewed", description="incorrect: corrected outputs; correct: confirmed outputs; reviewed: both."
    )
    since: datetime | None = None
    until: datetime | None = None
    task_type: Literal["ner", "classification", "structures", "relations", "decoder"] | None = Field(
        None, description="Required when the dataset does not exist yet; else it must match the dataset's."
    )
    classification_task: str | None = Field(
        None, max_length=200, description="For classification: which task of the records' schema, if several."
    )
    max_records: int = Field(10_000, ge=1, le=10_000, description="At most this many records are read, newest first.")
    include_judge_passed: bool = Field(
        False, description="Also records the LLM judge passed that no human reviewed (their output is taught)."
    )
    llmaj_score_min: float | None = Field(None, ge=0, le=1, description="Of those: at least this judge score.")


class UnfitOut(BaseModel):
    inference_id: str
    reason: str


class FromInferencesOut(BaseModel):
    name: str
    task_type: str
    base_version: int | None = Field(..., description="The version the new one extends (null: a new dataset).")
    version: VersionOut | None = Field(..., description="The new version; null when nothing was added.")
    records: int = Field(..., description="Reviewed records that matched the filter.")
    added: int
    skipped_duplicates: int = Field(..., description="Examples whose input is already in the dataset.")
    unfit: list[UnfitOut] = Field(..., description="Feedback that could not become an example, with why.")
    unfit_count: int
