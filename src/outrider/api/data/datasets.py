"""Dataset routes: upload, import, list, get, page, download, delete."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from outrider.api.deps import CurrentPrincipal, ServicesDep
from outrider.api.paging import offset_query
from outrider.core.errors import InvalidRequest
from outrider.services.feedback_data import BuildRequest, FeedbackFilter

from .conversion import dataset_out, version_out
from .schemas import (
    DatasetList,
    DatasetOut,
    DeletedOut,
    ExamplePageOut,
    FromInferencesIn,
    FromInferencesOut,
    UnfitOut,
    VersionOut,
)
from .upload import read_upload

router = APIRouter(tags=["datasets"])

_BODY = {
    "requestBody": {
        "description": "The file as the raw body (name and options in the query string), or multipart/form-data "
        "with a 'file' part and the options as form fields.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


def _required(fields: dict[str, str], name: str, query_value: str | None) -> str:
    value = fields.get(name) or query_value
    if not value:
        raise InvalidRequest(f"{name} is required (a query parameter or a form field)", param=name)
    return value


@router.post("/datasets", response_model=VersionOut, status_code=201, openapi_extra=_BODY)
async def upload_dataset(
    request: Request,
    who: CurrentPrincipal,
    svc: ServicesDep,
    name: str | None = Query(None, description="Dataset name (or a form field)."),
    task_type: str | None = Query(None, description="ner, classification, structures, relations, decoder."),
) -> VersionOut:
    """Upload JSONL: validated line by line, stored byte for byte as the next version of ``name``."""
    data, fields = await read_upload(request)
    name, task_type = _required(fields, "name", name), _required(fields, "task_type", task_type)
    dataset, version = await svc.datasets.upload(who.account.id, name, task_type, data)
    return version_out(dataset.name, version)


@router.post("/datasets/import", response_model=VersionOut, status_code=201, openapi_extra=_BODY)
async def import_dataset(
    request: Request,
    who: CurrentPrincipal,
    svc: ServicesDep,
    name: str | None = Query(None, description="Dataset name (or a form field)."),
    fmt: str | None = Query(None, alias="format", description="conll or csv (or a form field)."),
) -> VersionOut:
    """Import CoNLL BIO (``format=conll`` -> ner) or CSV ``text,label`` (``format=csv`` -> classification)."""
    data, fields = await read_upload(request)
    name, fmt = _required(fields, "name", name), _required(fields, "format", fmt)
    dataset, version = await svc.datasets.import_file(who.account.id, name, fmt, data)
    return version_out(dataset.name, version)


@router.get("/datasets", response_model=DatasetList)
async def list_datasets(who: CurrentPrincipal, svc: ServicesDep) -> DatasetList:
    return DatasetList(datasets=[dataset_out(d) for d in await svc.datasets.list(who.account.id)])


@router.get("/datasets/{name}", response_model=DatasetOut)
async def get_dataset(name: str, who: CurrentPrincipal, svc: ServicesDep) -> DatasetOut:
    return dataset_out(await svc.datasets.get(who.account.id, name))


@router.get("/datasets/{name}/versions/{version}", response_model=VersionOut)
async def get_version(name: str, version: str, who: CurrentPrincipal, svc: ServicesDep) -> VersionOut:
    dataset, found = await svc.datasets.version(who.account.id, name, version)
    return version_out(dataset.name, found)


@router.get("/datasets/{name}/versions/{version}/examples", response_model=ExamplePageOut)
async def list_examples(
    name: str,
    version: str,
    who: CurrentPrincipal,
    svc: ServicesDep,
    offset: int = offset_query(),
    limit: int = Query(50, ge=1, le=1000),
) -> ExamplePageOut:
    page = await svc.datasets.examples(who.account.id, name, version, offset=offset, limit=limit)
    return ExamplePageOut(
        name=page.dataset.name,
        version=page.version.version,
        task_type=page.version.task_type,
        status=page.version.status,
        total=page.version.example_count,
        offset=offset,
        limit=limit,
        examples=page.examples,
    )


@router.get("/datasets/{name}/versions/{version}/download", response_class=StreamingResponse)
async def download_version(name: str, version: str, who: CurrentPrincipal, svc: ServicesDep) -> StreamingResponse:
    """The version's JSONL, byte for byte as uploaded (for a version still being written: what is committed)."""
    found = await svc.datasets.download(who.account.id, name, version)
    number = found.version.version
    headers = {
        "Content-Disposition": f'attachment; filename="{found.dataset.name}-v{number}.jsonl"',
        "Content-Length": str(found.version.byte_size),
        "X-Dataset-Version": str(number),
    }
    if found.version.sha256:
        headers["ETag"] = f'"{found.version.sha256}"'
    return StreamingResponse(found.chunks, media_type="application/x-ndjson", headers=headers)


@router.delete("/datasets/{name}", response_model=DeletedOut)
async def delete_dataset(name: str, who: CurrentPrincipal, svc: ServicesDep) -> DeletedOut:
    removed = await svc.datasets.delete(who.account.id, name)
    return DeletedOut(name=name, deleted_versions=[v.version for v in removed])


@router.delete("/datasets/{name}/versions/{version}", response_model=DeletedOut)
async def delete_version(name: str, version: str, who: CurrentPrincipal, svc: ServicesDep) -> DeletedOut:
    removed = await svc.datasets.delete(who.account.id, name, version)
    return DeletedOut(name=name, deleted_versions=[v.version for v in removed])


@router.post("/datasets/{name}/from-inferences", response_model=FromInferencesOut)
async def dataset_from_inferences(
    name: str, body: FromInferencesIn, response: Response, who: CurrentPrincipal, svc: ServicesDep
) -> FromInferencesOut:
    """Append a version built from reviewed inference records: corrections and confirmed outputs, converted to
    the dataset's format, without duplicates (201 when a version was made, 200 when there was nothing new)."""
    request = BuildRequest(
        filter=FeedbackFilter(
            model_id=body.model_id,
            project_id=body.project_id,
            human_verdict=body.human_verdict,
            since=body.since,
            until=body.until,
            max_records=body.max_records,
            include_judge_passed=body.include_judge_passed,
            llmaj_score_min=body.llmaj_score_min,
        ),
        task_type=body.task_type,
        classification_task=body.classification_task,
    )
    outcome = await svc.feedback_data.build(who, name, request)
    response.status_code = 201 if outcome.version is not None else 200
    return FromInferencesOut(
        name=outcome.name,
        task_type=outcome.task_type,
        base_version=outcome.base_version,
        version=version_out(outcome.name, outcome.version) if outcome.version is not None else None,
        records=outcome.records,
        added=outcome.added,
        skipped_duplicates=outcome.skipped_duplicates,
        unfit=[UnfitOut(inference_id=i, reason=r) for i, r in outcome.unfit],
        unfit_count=outcome.unfit_count,
    )
