"""Training records -> wire types."""

from __future__ import annotations

from datetime import UTC, datetime

from outrider.services.training import DatasetRef, TrainingRequest, public_status
from outrider.storage.records import Job, TrainingCheckpoint

from .schemas import (
    CheckpointOut,
    DatasetRefOut,
    TrainingJobIn,
    TrainingJobOut,
    TrainingProgress,
    TrainingTimings,
)


def to_request(body: TrainingJobIn) -> TrainingRequest:
    return TrainingRequest(
        model_name=body.model_name,
        base_model=body.base_model,
        datasets=[DatasetRef(d.name, d.version) for d in body.datasets],
        training_type=body.training_type,
        nr_epochs=body.nr_epochs,
        learning_rate=body.learning_rate,
        batch_size=body.batch_size,
        seed=body.seed,
        validation_fraction=body.validation_fraction,
        early_stopping_patience=body.early_stopping_patience,
        head_learning_rate=body.head_learning_rate,
        entity_label_renaming=body.entity_label_renaming,
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return round(((end or datetime.now(UTC)) - start).total_seconds(), 2)


def job_out(job: Job) -> TrainingJobOut:
    payload, result, progress = job.payload, job.result or {}, job.progress
    hyper = dict(payload.get("hyperparameters") or {})
    return TrainingJobOut(
        id=job.id,
        model_name=payload.get("model_name", ""),
        status=public_status(job.status),
        base_model=payload.get("base_model") or "",
        training_type=payload.get("training_type", "lora"),
        task_type=payload.get("task_type", ""),
        task_family=payload.get("family", "encoder"),
        datasets=[
            DatasetRefOut(name=d["name"], version=d["version"], examples=d["examples"])
            for d in payload.get("datasets", [])
        ],
        hyperparameters=hyper,
        progress=TrainingProgress(
            step=progress.get("step") or 0,
            total_steps=progress.get("total_steps"),
            epoch=progress.get("epoch") or 0,
            nr_epochs=hyper.get("nr_epochs"),
            loss=progress.get("loss"),
            checkpoints=progress.get("checkpoints") or 0,
        ),
        metrics=result.get("metrics") or None,
        model_id=result.get("model_id") if job.status == "complete" else None,
        best_epoch=result.get("best_epoch"),
        best_step=result.get("best_step"),
        early_stopped=bool(result.get("early_stopped")),
        train_examples=result.get("train_examples"),
        val_examples=result.get("val_examples"),
        stop_requested=job.stop_requested,
        stop_reason=result.get("stop_reason") or ("stopped on request" if job.status == "stopped" else None),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        timings=TrainingTimings(
            queued_seconds=_seconds(job.created_at, job.started_at or job.finished_at),
            total_seconds=_seconds(job.started_at, job.finished_at),
            train_seconds=result.get("train_seconds"),
        ),
    )


def checkpoint_out(checkpoint: TrainingCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        id=checkpoint.id,
        job_id=checkpoint.job_id,
        step=checkpoint.step,
        epoch=checkpoint.epoch,
        metrics=checkpoint.metrics,
        created=checkpoint.created_at,
    )
