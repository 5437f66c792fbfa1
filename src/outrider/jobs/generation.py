"""The ``generation`` job: prompt the teacher through ``outrider.synthesis`` and write every batch of
validated examples into a new dataset version as it arrives, so a failure or a stop keeps them.

The version is opened ``building`` with the first accepted examples (the job's result names it from then
on) and closed ``ready`` when the job completes, ``partial`` when it fails or is stopped; a worker that
dies mid-job leaves it ``building`` until the next worker fails the job and ``recover`` closes it as
``partial``.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import asdict, dataclass
from functools import partial

from outrider.core.errors import BackendError, NotFound
from outrider.jobs.registry import JobContext, JobHandlers
from outrider.services.accounts import AccountService, Principal
from outrider.services.data_generation import GENERATION_JOB_KIND
from outrider.services.datasets import DatasetService, VersionWriter
from outrider.services.generation import GenerationService
from outrider.services.recording import CallContext
from outrider.storage.records import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationJobDeps:
    """What a generation job uses, built by ``build_services``."""

    accounts: AccountService  # the key that queued the job
    datasets: DatasetService  # the version the examples are written to
    generation: GenerationService  # the teacher's calls, metered and charged like any other


def _principal(deps: GenerationJobDeps, account_id: str, key_id: str | None, user_id: str | None) -> Principal:
    """The caller who queued the job (a key, or a signed-in user): teacher calls are scoped (model pool) and
    metered as theirs."""
    principal = deps.accounts.principal_of(account_id, key_id, user_id) if key_id or user_id else None
    if principal is None:
        raise NotFound("the account, API key or user that queued this job no longer exists")
    return principal


class _Output:
    """The dataset version a job writes, opened when its first examples are accepted (a job that fails
    before producing any, e.g. for lack of credit, leaves no empty version behind)."""

    def __init__(self, ctx: JobContext, datasets: DatasetService, wanted: int) -> None:
        self.ctx = ctx
        self.datasets = datasets
        self.wanted = wanted
        self.writer: VersionWriter | None = None

    @property
    def count(self) -> int:
        return self.writer.count if self.writer else 0

    async def write(self, examples: list[dict]) -> None:
        ctx, payload = self.ctx, self.ctx.payload
        if self.writer is None:
            self.writer = await self.datasets.open_append(
                ctx.job.account_id,
                payload["dataset_name"],
                payload["task_type"],
                source="generation",
                job_id=ctx.job.id,
                labels=payload["labels"] or None,
            )
            version = self.writer.version
            await ctx.set_result(dataset_version=version.version, dataset_version_id=version.id)
        room = self.wanted - self.writer.count
        if room > 0:
            await self.writer.append(examples[:room])
        await ctx.progress(generated=self.writer.count, rejected=self.writer.rejected)

    async def close(self, status: str) -> None:
        if self.writer is not None:
            await self.writer.close(status)


async def run_generation(deps: GenerationJobDeps, ctx: JobContext) -> dict:
    from outrider.synthesis import SynthesisRequest, synthesize
    from outrider.synthesis.teacher import Teacher

    job, payload = ctx.job, ctx.payload
    wanted = int(payload["num_examples"])
    principal = await asyncio.to_thread(
        _principal, deps, job.account_id, payload.get("api_key_id"), payload.get("user_id")
    )
    await ctx.progress(generated=0, requested=wanted)
    output = _Output(ctx, deps.datasets, wanted)
    status = "partial"
    try:
        # Teacher calls go through GenerationService under the job owner's key: scoped to its model pool,
        # recorded as usage and charged to the account as "generation" (the billing seam for jobs).
        # store=False keeps hundreds of teacher prompts out of the inference history; job_id is each
        # charge's reference_id (GET /credits/transactions).
        call = CallContext(principal, "generation-job", payload["teacher_model"], store=False, job_id=job.id)
        teacher = Teacher(deps.generation, call)
        request = SynthesisRequest(
            task_type=payload["task_type"],
            num_examples=wanted,
            labels=payload["labels"],
            domain_description=payload.get("domain_description"),
            classified_examples=payload.get("classified_examples") or [],
            prompt=payload.get("prompt"),
            seed=zlib.crc32(job.id.encode()),  # two jobs with the same request still get different examples
        )
        summary = await synthesize(teacher, request, output.write, lambda: ctx.should_stop() or output.count >= wanted)
        if output.count == 0 and not ctx.should_stop():
            raise BackendError(
                f"the teacher produced no valid example in {summary.attempts} attempts "
                f"(refused: {summary.rejected}); try a stronger teacher_model"
            )
        if not ctx.should_stop():
            status = "ready"
    finally:
        # Shielded: a cancelled job (worker shutdown) still closes its version as a readable one.
        await asyncio.shield(output.close(status))
    return {"generated": output.count, "summary": asdict(summary)}


def recover_generation(deps: GenerationJobDeps, job: Job) -> None:
    """A dead worker's job: close the version it was writing as ``partial`` (its committed examples stay)."""
    version_id = (job.result or {}).get("dataset_version_id")
    if version_id:
        deps.datasets.finalize(version_id, "partial")


def register(handlers: JobHandlers, deps: GenerationJobDeps) -> None:
    handlers.register(GENERATION_JOB_KIND, partial(run_generation, deps), recover=partial(recover_generation, deps))
