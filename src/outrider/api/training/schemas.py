"""Wire types of the training surface (``/felix/training-jobs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody
from outrider.services.training import MAX_SEED, MAX_TRAINING_DATASETS

TrainingStatus = Literal["requested", "running", "complete", "failed", "stopped"]
DownloadFormat = Literal["model", "onnx"]  # the zip of ``GET /felix/training-jobs/{id}/download``


class DatasetRefIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="A dataset of this account.")
    version: int | Literal["latest"] | None = Field(None, description="A version number; default the latest.")


class TrainingJobIn(CheckedBody):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str = Field(..., min_length=1, max_length=200, description="A name for the trained model.")
    # Optional here so that a missing base_model is answered with the ids that are accepted.
    base_model: str | None = Field(
        None, description="An id from GET /base-models, a checkpoint id (ckpt_...) or a complete job's id."
    )
    datasets: list[DatasetRefIn] = Field(
        ...,
        max_length=MAX_TRAINING_DATASETS,
        description=f'[{{"name": ..., "version": ...}}], one task type, at most {MAX_TRAINING_DATASETS} distinct '
        "versions (naming one version twice is refused).",
    )
    training_type: Literal["lora", "full"] = "lora"
    nr_epochs: int | None = Field(None, ge=1, le=100, description="Default: the trainer's default for the base.")
    learning_rate: float | None = Field(None, gt=0, le=1, description="Default: the trainer's default for the base.")
    batch_size: int | None = Field(None, ge=1, le=512)
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the split, the order and the initialisation.")
    validation_fraction: float = Field(0.1, ge=0, le=0.5, description="Share of the examples held out for metrics.")
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        le=100,
        description="End training after this many epochs in a row without a better validation F1 (encoders; "
        "default: train every epoch). The best validated checkpoint is the final model either way.",
    )
    head_learning_rate: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Encoders: the extraction heads' learning rate (default 1e-2; real noisy NER data: 1e-3).",
    )
    entity_label_renaming: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Encoders: the chance that a training example's entity types are renamed 'entity 1', ... "
        "(default: GLiNER2's 0.2; 0 keeps the real names).",
    )


class DatasetRefOut(BaseModel):
    name: str
    version: int
    examples: int


class TrainingProgress(BaseModel):
    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    nr_epochs: int | None = None
    loss: float | None = None
    checkpoints: int = 0


class TrainingTimings(BaseModel):
    queued_seconds: float | None = None  # created -> started
    total_seconds: float | None = None  # started -> finished (or now)
    train_seconds: float | None = None  # optimizer steps only, as the trainer measured them


class TrainingJobOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    object: Literal["training_job"] = "training_job"
    model_name: str
    status: TrainingStatus
    base_model: str
    training_type: Literal["lora", "full"]
    task_type: str
    task_family: Literal["encoder", "decoder"]
    datasets: list[DatasetRefOut]
    hyperparameters: dict[str, Any]
    progress: TrainingProgress
    metrics: dict[str, Any] | None = Field(
        None, description="f1, precision, recall (+ accuracy, exact_match, ...) and per_label, on the held-out split."
    )
    model_id: str | None = Field(None, description="The model id to call once complete (the job id).")
    best_epoch: int | None = Field(
        None, description="The epoch of the final model: the checkpoint with the best validation F1 (encoders)."
    )
    best_step: int | None = None
    early_stopped: bool = Field(False, description="Training ended early: the validation F1 stopped improving.")
    train_examples: int | None = None
    val_examples: int | None = None
    stop_requested: bool = False
    stop_reason: str | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timings: TrainingTimings


class TrainingJobList(BaseModel):
    object: Literal["list"] = "list"
    jobs: list[TrainingJobOut]
    total: int
    limit: int
    offset: int


class CheckpointOut(BaseModel):
    id: str = Field(..., description="A model id: serve it, download it, or continue training from it.")
    object: Literal["checkpoint"] = "checkpoint"
    job_id: str
    step: int
    epoch: int | None
    metrics: dict[str, Any]
    created: datetime


class CheckpointList(BaseModel):
    object: Literal["list"] = "list"
    checkpoints: list[CheckpointOut]


class TrainingJobDeleted(BaseModel):
    id: str
    object: Literal["training_job"] = "training_job"
    deleted: bool = True
