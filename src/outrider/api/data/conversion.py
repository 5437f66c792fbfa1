"""Records -> wire types of the data surface."""

from __future__ import annotations

from outrider.services.data_generation import GenerationStatus
from outrider.storage.records import Dataset, DatasetVersion, Job

from .schemas import DatasetOut, GenerationJobOut, VersionOut


def version_out(name: str, version: DatasetVersion) -> VersionOut:
    return VersionOut(
        name=name,
        version=version.version,
        task_type=version.task_type,
        status=version.status,
        source=version.source,
        example_count=version.example_count,
        byte_size=version.byte_size,
        sha256=version.sha256,
        label_stats=version.label_stats,
        job_id=version.job_id,
        created_at=version.created_at,
        finished_at=version.finished_at,
    )


def dataset_out(dataset: Dataset) -> DatasetOut:
    latest = dataset.versions[-1]
    return DatasetOut(
        name=dataset.name,
        task_type=latest.task_type,
        latest_version=latest.version,
        example_count=latest.example_count,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
        versions=[version_out(dataset.name, v) for v in dataset.versions],
    )


def generation_job_out(status: GenerationStatus) -> GenerationJobOut:
    job: Job = status.job
    payload, result = job.payload, job.result or {}
    return GenerationJobOut(
        job_id=job.id,
        status=job.status,
        task_type=payload["task_type"],
        dataset_name=payload["dataset_name"],
        dataset_version=result.get("dataset_version"),
        num_examples=status.generated,
        num_requested=payload["num_examples"],
        teacher_model=payload["teacher_model"],
        error=job.error,
        progress=job.progress,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
