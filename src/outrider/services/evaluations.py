"""Evaluations as a use case: queue one (models checked, the dataset version pinned), read them, list them.

An evaluation scores one to five models on one dataset version: encoders on extraction data, decoders on
``decoder`` (chat) data (``evaluation/decoder_scoring.py``: exact-match, JSON-valid and, with a JSON schema,
schema-valid rates). Encoders are evaluated as a job on the worker
(``jobs/evaluation.py``): each model answers every example the way it is served (the catalog's loaded
model and its micro-batcher, one example per call, so the latency is a served call's), and the figures
come from ``evaluation/`` (shared with the trainers' metrics). With several models, each one after the
first is compared with the first (``evaluation/compare.py``).

Model ids are resolved when the evaluation is queued: a deployment name (``@name``) is evaluated as the
model it points at then (both are recorded), so a switch while the job waits does not change what it
measures. Evaluating costs CPU time only: the calls are not charged, and ``cost_usd`` says what they
would cost at the model's price.
"""

from __future__ import annotations

from dataclasses import dataclass

from outrider.core.errors import Conflict, InvalidRequest, NotFound
from outrider.evaluation.decoder_scoring import check_schema
from outrider.evaluation.scoring import EVALUATED_TASK_TYPES
from outrider.services.accounts import Principal
from outrider.services.catalog import ModelCatalog, check_pool
from outrider.services.datasets import DatasetService
from outrider.services.jobs import JobService
from outrider.storage.records import Job

EVALUATION_JOB_KIND = "evaluation"
JOB_PREFIX = "eval"
MAX_MODELS = 5
MAX_EXAMPLES = 5000
DECODER_TASK_TYPE = "decoder"
DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class EvaluationRequest:
    model_ids: list[str]
    dataset: str
    version: int | str | None = None  # a number, "latest" or None (the latest)
    threshold: float = 0.5
    max_examples: int | None = None  # the first N examples of the version (default: all, up to MAX_EXAMPLES)
    labels: list[str] | None = None  # the schema's label order (default sorted, as Outrider's trainer orders them)
    max_tokens: int = DEFAULT_MAX_TOKENS  # decoders: the longest answer
    json_schema: dict | None = None  # decoders: the schema answers are checked against (schema_valid)


class EvaluationService:
    def __init__(self, catalog: ModelCatalog, datasets: DatasetService, jobs: JobService) -> None:
        self.catalog = catalog
        self.datasets = datasets
        self.jobs = jobs

    async def create(self, principal: Principal, request: EvaluationRequest) -> Job:
        ids = request.model_ids
        if not 1 <= len(ids) <= MAX_MODELS:
            raise InvalidRequest(f"models: give 1 to {MAX_MODELS} model ids", param="models")
        if len(set(ids)) != len(ids):
            raise InvalidRequest("models: each model id once", param="models")
        if not 0.0 <= request.threshold <= 1.0:
            raise InvalidRequest("threshold must be between 0 and 1", param="threshold")
        if request.max_examples is not None and not 1 <= request.max_examples <= MAX_EXAMPLES:
            raise InvalidRequest(f"max_examples must be between 1 and {MAX_EXAMPLES}", param="max_examples")
        account_id = principal.account.id
        dataset, version = await self.datasets.version(account_id, request.dataset, request.version)
        decoder = version.task_type == DECODER_TASK_TYPE
        if not decoder and version.task_type not in EVALUATED_TASK_TYPES:
            raise InvalidRequest(
                f"dataset '{dataset.name}' holds {version.task_type} examples; evaluations score extraction models "
                f"on {', '.join(EVALUATED_TASK_TYPES)} data and decoders on {DECODER_TASK_TYPE} data",
                param="dataset",
            )
        _check_decoder_options(request, decoder)
        if version.status == "building":
            raise Conflict(f"version {version.version} of '{dataset.name}' is still being written by a job")
        if version.example_count == 0:
            raise InvalidRequest(f"version {version.version} of '{dataset.name}' has no examples", param="dataset")
        if version.task_type == "classification" and len(version.label_stats) < 2:
            raise InvalidRequest("a classification dataset needs at least two labels to evaluate", param="dataset")
        labels = [] if decoder else _labels(request.labels, version.task_type, sorted(version.label_stats))
        models = []
        for model_id in ids:  # a model this caller may call: its account's, inside its key's pool, of the family
            spec = await self.catalog.model_for(model_id, account_id, param="models")
            check_pool(principal, model_id, spec, "models")
            wanted = "decoder" if decoder else "encoder"
            if spec.kind != wanted:
                raise InvalidRequest(
                    f"model '{model_id}' is {'an' if spec.kind == 'encoder' else 'a'} {spec.kind} model; "
                    f"{version.task_type} data evaluates {wanted} models",
                    param="models",
                )
            models.append({"model_id": model_id, "model_used": spec.id})
        payload = {
            "models": models,
            "dataset": {
                "name": dataset.name,
                "version": version.version,
                "task_type": version.task_type,
                "examples": min(version.example_count, request.max_examples or MAX_EXAMPLES),
            },
            "threshold": request.threshold,
            "labels": labels,
        }
        if decoder:
            payload.update(max_tokens=request.max_tokens, json_schema=request.json_schema)
        return await self.jobs.submit(account_id, EVALUATION_JOB_KIND, payload, prefix=JOB_PREFIX)

    async def get(self, account_id: str, evaluation_id: str) -> Job:
        try:
            return await self.jobs.get(account_id, evaluation_id, kind=EVALUATION_JOB_KIND)
        except NotFound:
            raise NotFound(f"evaluation '{evaluation_id}' not found") from None

    async def list(self, account_id: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
        return await self.jobs.list(account_id, kind=EVALUATION_JOB_KIND, limit=limit, offset=offset)


def _check_decoder_options(request: EvaluationRequest, decoder: bool) -> None:
    if not decoder:
        if request.json_schema is not None:
            raise InvalidRequest("json_schema applies to decoder datasets only", param="json_schema")
        return
    if request.labels is not None:
        raise InvalidRequest("labels apply to extraction datasets, not to decoder ones", param="labels")
    if request.json_schema is not None:
        try:
            check_schema(request.json_schema)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="json_schema") from None


def _labels(asked: list[str] | None, task_type: str, held: list[str]) -> list[str]:
    """The labels the schema asks for, in order: a model answers best with the order it was trained with
    (GLiNER2 reads the labels as one prompt). Every label the version holds must be among them."""
    if asked is None:
        return held
    if task_type == "structures":
        raise InvalidRequest("labels: structures are asked for by their fields, not by a label list", param="labels")
    if len(set(asked)) != len(asked) or any(not label.strip() or len(label) > 200 for label in asked):
        raise InvalidRequest("labels: each label once, 1 to 200 characters", param="labels")
    missing = sorted(set(held) - set(asked))
    if missing:
        raise InvalidRequest(f"labels: the dataset also holds {missing[:20]}", param="labels")
    return asked
