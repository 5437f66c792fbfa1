"""Training routes: parse, call ``TrainingService``, render. Creating, stopping and deleting count against
the ``training`` rate-limit group; reading (polling, logs, downloads) does not."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse

from outrider.api.deps import CurrentPrincipal, ServicesDep, TrainingCaller
from outrider.api.paging import offset_query

from .conversion import checkpoint_out, job_out, to_request
from .schemas import (
    CheckpointList,
    DownloadFormat,
    TrainingJobDeleted,
    TrainingJobIn,
    TrainingJobList,
    TrainingJobOut,
)

router = APIRouter(prefix="/felix/training-jobs", tags=["training"])


@router.post("", response_model=TrainingJobOut, status_code=201)
async def create_training_job(body: TrainingJobIn, who: TrainingCaller, svc: ServicesDep) -> TrainingJobOut:
    """Queue a fine-tuning job; it starts ``requested`` and is picked up by a worker."""
    return job_out(await svc.training.create(who, to_request(body)))


@router.get("", response_model=TrainingJobList)
async def list_training_jobs(
    who: CurrentPrincipal,
    svc: ServicesDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = offset_query(),
) -> TrainingJobList:
    jobs, total = await svc.training.list(who.account.id, limit=limit, offset=offset)
    return TrainingJobList(jobs=[job_out(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=TrainingJobOut)
async def get_training_job(job_id: str, who: CurrentPrincipal, svc: ServicesDep) -> TrainingJobOut:
    return job_out(await svc.training.get(who.account.id, job_id))


@router.get("/{job_id}/logs", response_class=StreamingResponse)
async def training_job_logs(
    job_id: str,
    who: CurrentPrincipal,
    svc: ServicesDep,
    follow: bool = Query(True, description="Keep the response open and send new lines until the job ends."),
) -> StreamingResponse:
    """Plain text (``text/plain``), one line per event, streamed as the trainer writes them."""
    lines = await svc.training.log_stream(who.account.id, job_id, follow=follow)
    return StreamingResponse(lines, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/{job_id}/checkpoints", response_model=CheckpointList)
async def list_checkpoints(job_id: str, who: CurrentPrincipal, svc: ServicesDep) -> CheckpointList:
    return CheckpointList(
        checkpoints=[checkpoint_out(c) for c in await svc.training.checkpoints(who.account.id, job_id)]
    )


@router.get("/{job_id}/download", response_class=FileResponse)
async def download_weights(
    job_id: str,
    who: CurrentPrincipal,
    svc: ServicesDep,
    checkpoint_id: str | None = Query(None, description="Download this checkpoint instead of the final model."),
    format: DownloadFormat = Query(
        "model", description="`onnx`: a GLiNER2 model with its int8 ONNX encoder, the form it is served in."
    ),
) -> FileResponse:
    """A zip of the final weights (or a checkpoint's) with a README on loading them without Outrider."""
    found = await svc.training.download(who.account.id, job_id, checkpoint_id, format)
    return FileResponse(found.path, media_type="application/zip", filename=found.filename)


@router.post("/{job_id}/stop", response_model=TrainingJobOut)
async def stop_training_job(job_id: str, who: TrainingCaller, svc: ServicesDep) -> TrainingJobOut:
    """Ask the trainer to save a checkpoint and exit: the job becomes ``stopped`` within seconds."""
    return job_out(await svc.training.stop(who.account.id, job_id))


@router.delete("/{job_id}", response_model=TrainingJobDeleted)
async def delete_training_job(job_id: str, who: TrainingCaller, svc: ServicesDep) -> TrainingJobDeleted:
    """Stop the job if it runs, then remove its record, checkpoints and files."""
    job = await svc.training.delete(who.account.id, job_id)
    return TrainingJobDeleted(id=job.id)
