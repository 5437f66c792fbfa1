"""``POST /generate`` as a use case: validate the request, check the teacher, queue a ``generation`` job;
read a job's status with the number of examples committed so far. The job itself: ``jobs/generation.py``."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from outrider.config import Settings
from outrider.core.errors import InvalidRequest
from outrider.services.accounts import Principal
from outrider.services.catalog import ModelCatalog
from outrider.services.datasets import DatasetService, check_name
from outrider.services.jobs import JobService
from outrider.storage.queries import datasets as datasets_q
from outrider.storage.records import DatasetVersion, Job

GENERATION_JOB_KIND = "generation"
GENERATION_TASKS = ("ner", "classification", "decoder")


@dataclass(frozen=True)
class GenerateRequest:
    task_type: Literal["ner", "classification", "decoder"]
    dataset_name: str
    num_examples: int
    labels: list[str] = field(default_factory=list)
    domain_description: str | None = None
    classified_examples: list[dict[str, Any]] = field(default_factory=list)
    prompt: str | None = None
    teacher_model: str | None = None


@dataclass(frozen=True)
class GenerationStatus:
    job: Job
    version: DatasetVersion | None

    @property
    def generated(self) -> int:
        """Examples committed so far: the dataset version is the truth (progress may lag one batch)."""
        if self.version is not None:
            return self.version.example_count
        return int(self.job.progress.get("generated", 0))


class DataGenerationService:
    def __init__(self, settings: Settings, catalog: ModelCatalog, jobs: JobService, datasets: DatasetService):
        self.settings = settings
        self.catalog = catalog
        self.jobs = jobs
        self.datasets = datasets

    def _check(self, request: GenerateRequest) -> list[str]:
        if request.task_type not in GENERATION_TASKS:
            raise InvalidRequest(f"task_type must be one of {', '.join(GENERATION_TASKS)}", param="task_type")
        check_name(request.dataset_name)
        if not 1 <= request.num_examples <= self.settings.max_generate_examples:
            raise InvalidRequest(
                f"num_examples must be between 1 and {self.settings.max_generate_examples}", param="num_examples"
            )
        labels = list(dict.fromkeys(label.strip() for label in request.labels))
        if any(not label for label in labels):
            raise InvalidRequest("labels must be non-empty strings", param="labels")
        if request.task_type == "ner" and not labels:
            raise InvalidRequest("labels (the entity types) are required for ner", param="labels")
        if request.task_type == "classification" and len(labels) < 2:
            raise InvalidRequest("labels (at least two classes) are required for classification", param="labels")
        for index, example in enumerate(request.classified_examples):
            if not isinstance(example, dict) or not isinstance(example.get("text"), str):
                raise InvalidRequest(f"classified_examples[{index}] needs a 'text' string", param="classified_examples")
        if request.task_type == "decoder" and not (request.prompt or request.domain_description):
            raise InvalidRequest("decoder generation needs a prompt or a domain_description", param="prompt")
        return labels

    async def submit(self, principal: Principal, request: GenerateRequest) -> Job:
        labels = self._check(request)
        teacher = request.teacher_model or self.settings.default_teacher_model
        # Resolved now so that an unknown teacher or one outside the key's pool is refused up front.
        await self.catalog.for_call(principal, teacher, "decoder", param="teacher_model")
        payload = {**asdict(request), "labels": labels, "teacher_model": teacher, "api_key_id": principal.key_id}
        payload["user_id"] = principal.user_id  # who queued it when signed in (no key)
        return await self.jobs.submit(principal.account.id, GENERATION_JOB_KIND, payload, prefix="gen")

    async def status(self, account_id: str, job_id: str) -> GenerationStatus:
        job = await self.jobs.get(account_id, job_id, kind=GENERATION_JOB_KIND)
        version_id = (job.result or {}).get("dataset_version_id")
        version = None
        if version_id:

            def read() -> DatasetVersion | None:
                with self.datasets.db.session() as s:
                    return datasets_q.get_version(s, version_id)

            version = await asyncio.to_thread(read)
        return GenerationStatus(job, version)

    async def list(self, account_id: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
        return await self.jobs.list(account_id, kind=GENERATION_JOB_KIND, limit=limit, offset=offset)

    async def list_statuses(self, account_id: str, *, limit: int, offset: int) -> tuple[list[GenerationStatus], int]:
        """A page of the account's generation jobs with their dataset versions, read in one query."""
        jobs, total = await self.list(account_id, limit=limit, offset=offset)
        version_ids = [v for v in ((j.result or {}).get("dataset_version_id") for j in jobs) if v]

        def read() -> dict[str, DatasetVersion]:
            with self.datasets.db.session() as s:
                return datasets_q.get_versions(s, version_ids)

        versions = await asyncio.to_thread(read) if version_ids else {}
        statuses = [GenerationStatus(j, versions.get((j.result or {}).get("dataset_version_id") or "")) for j in jobs]
        return statuses, total

    async def stop(self, account_id: str, job_id: str) -> GenerationStatus:
        await self.jobs.stop(account_id, job_id, kind=GENERATION_JOB_KIND)
        return await self.status(account_id, job_id)
