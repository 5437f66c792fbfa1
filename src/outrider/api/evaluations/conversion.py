"""Evaluation jobs -> wire types."""

from __future__ import annotations

from outrider.services.evaluations import EvaluationRequest
from outrider.storage.records import Job

from .schemas import EvaluatedDataset, EvaluationIn, EvaluationOut, ModelEvaluationOut


def to_request(body: EvaluationIn) -> EvaluationRequest:
    return EvaluationRequest(
        model_ids=body.models,
        dataset=body.dataset,
        version=body.version,
        threshold=body.threshold,
        max_examples=body.max_examples,
        labels=body.labels,
        max_tokens=body.max_tokens,
        json_schema=body.json_schema,
    )


def evaluation_out(job: Job) -> EvaluationOut:
    payload, result = job.payload, job.result or {}
    return EvaluationOut(
        id=job.id,
        status=job.status,  # type: ignore[arg-type]
        dataset=EvaluatedDataset(**payload["dataset"]),
        threshold=payload["threshold"],
        labels=payload.get("labels") or [],
        max_tokens=payload.get("max_tokens"),
        json_schema=payload.get("json_schema"),
        models=payload["models"],
        progress=job.progress or {},
        results=[ModelEvaluationOut(**r) for r in result.get("models") or []],
        comparisons=result.get("comparisons") or [],
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
