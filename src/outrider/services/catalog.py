"""The model catalog: which model an id names, for which caller, and whether it can serve now.

Every service and route that takes a model id asks here; the registry (``backends/registry.py``) only
declares and loads models. An id is looked up, in order, among:

- the models declared at start-up (built-in bases, hub ids, plugins, upstream providers' models) and the
  saved folders found so far: the registry's, in memory;
- trained models: a complete training job's id (``ft_...``) names its final model, a checkpoint id
  (``ckpt_...``) that checkpoint. Each belongs to the account that trained it: to any other account it
  does not exist (the same 404 as an unknown id). Found once, a trained model is kept in memory until its
  job is deleted (``forget``);
- saved model folders under the model directories, also those saved after start-up.

- deployment names: ``@name`` is the account's deployment ``name`` (``core/deployments.py``), served by the
  model it points at now. The target is read from the database on every call (one indexed read, in a
  thread), so a switch made by any process takes effect on the next request. Another account's name is
  the same 404 as an unknown id; ``@`` ids are never looked up among models, so names and ids never mix.

A new kind of id (embedding models) is one more source (``add_source``). What is in memory answers at once;
a source that reads the database or the disk runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from outrider.backends.base import Availability, Health, ModelKind, ModelSpec
from outrider.backends.builtin import encoder_options, local_price, spec_for_folder
from outrider.backends.encoder_adapters import is_encoder_adapter
from outrider.backends.encoder_gliner import merged_adapter_spec
from outrider.backends.registry import LoadedModel, ModelRegistry
from outrider.config import Settings
from outrider.core.deployments import deployment_model_id, deployment_name, is_deployment_id
from outrider.core.errors import InvalidRequest, ModelNotFound, OutriderError, PermissionDenied
from outrider.services.accounts import Principal
from outrider.storage.db import Database
from outrider.storage.queries import deployments as deployments_q
from outrider.storage.queries import jobs as jobs_q
from outrider.storage.queries import training as training_q
from outrider.storage.records import Job

Source = Callable[[str], ModelSpec | None]  # blocking: may read the database or the disk
MODELS_LISTING = "GET /models"
KIND_HINTS: dict[ModelKind, str] = {  # what a model of each kind is called with, for a call of another kind
    "encoder": "send a 'schema' to extract with it",
    "decoder": "use it for generation",
    "embedding": "call POST /v1/embeddings with it",
}


class ModelCatalog:
    """``job_kind`` and ``job_prefix`` are the training service's: the kind of its jobs and the prefix of
    their ids, whose complete jobs are models."""

    def __init__(
        self, settings: Settings, db: Database, registry: ModelRegistry, *, job_kind: str, job_prefix: str
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.job_kind = job_kind
        self.job_prefix = job_prefix
        self.training_root = settings.data_dir / "training"  # where training jobs keep their files
        self._trained: dict[str, ModelSpec] = {}  # served job and checkpoint ids: immutable until deleted
        self._sources: list[Source] = [self._trained_spec, registry.saved]

    def add_source(self, source: Source) -> None:
        """Another kind of model id, looked up after the others (blocking; run in a thread)."""
        self._sources.append(source)

    # -- resolving ----------------------------------------------------------------------------------------
    def in_memory(self, model_id: str) -> ModelSpec | None:
        return self.registry.declared(model_id) or self._trained.get(model_id)

    def find_blocking(self, model_id: str) -> ModelSpec | None:
        """The model ``model_id`` names, or None (blocking: for code outside the event loop). A deployment
        name names no model by itself: it is resolved for an account (``visible``)."""
        if is_deployment_id(model_id):
            return None
        spec = self.in_memory(model_id)
        for source in self._sources:
            if spec is not None:
                break
            spec = source(model_id)
        return spec

    def resolve_blocking(self, model_id: str) -> ModelSpec:
        """The model ``model_id`` names, for any caller (404 when none; blocking)."""
        spec = self.find_blocking(model_id)
        if spec is None:
            raise not_found(model_id)
        return spec

    async def find(self, model_id: str) -> ModelSpec | None:
        """The model ``model_id`` names, for any caller, or None. Every resolution of an id goes through here."""
        spec = self.in_memory(model_id)
        if spec is not None:
            return spec
        return await asyncio.to_thread(self.find_blocking, model_id)

    async def resolve(self, model_id: str) -> ModelSpec:
        """The model ``model_id`` names, for any caller (404 when none)."""
        spec = await self.find(model_id)
        if spec is None:
            raise not_found(model_id)
        return spec

    async def visible(self, model_id: str, account_id: str) -> ModelSpec | None:
        """The model as this account sees it: None when unknown or another account's trained model. A
        deployment name (``@name``) is the model the account's deployment points at now."""
        if is_deployment_id(model_id):
            target = await self.deployment_target(account_id, model_id)
            if target is None:
                return None
            model_id = target
        spec = await self.find(model_id)
        return spec if spec is not None and visible_to(spec, account_id) else None

    async def model_for(
        self, model_id: str, account_id: str, listing: str = MODELS_LISTING, param: str | None = None
    ) -> ModelSpec:
        """One model as this account sees it: another account's trained model is the same 404 as an unknown
        id (``listing`` is the endpoint the message points to)."""
        spec = await self.visible(model_id, account_id)
        if spec is None:
            if is_deployment_id(model_id):
                target = await self.deployment_target(account_id, model_id)
                if target is not None:  # the target was deleted since the deployment was pointed at it
                    raise ModelNotFound(
                        f"deployment '{model_id}' points at model '{target}', which no longer exists; "
                        f"PUT /deployments/{deployment_name(model_id)} points it at another model",
                        param=param,
                    )
            raise not_found(model_id, listing, param)
        return spec

    async def deployment_target(self, account_id: str, model_id: str) -> str | None:
        """The model id the account's deployment ``@name`` points at now (read from the database: a switch by
        any process counts from the next call)."""

        def read() -> str | None:
            with self.db.session() as s:
                return deployments_q.current_target(s, account_id, deployment_name(model_id))

        return await asyncio.to_thread(read)

    async def for_call(self, principal: Principal, model_id: str, kind: ModelKind, param: str) -> ModelSpec:
        """The model of a call: one this account sees, inside its key's model pool (if the key has one), and
        of the right family, with a hint at what the other family needs."""
        spec = await self.model_for(model_id, principal.account.id, param=param)
        check_pool(principal, model_id, spec, param)
        if spec.kind != kind:
            hint = KIND_HINTS[spec.kind]
            article = "an" if spec.kind[0] in "aeiou" else "a"
            raise InvalidRequest(f"model '{model_id}' is {article} {spec.kind} model: {hint}", param=param)
        return spec

    # -- listing --------------------------------------------------------------------------------------------
    def declared(self) -> list[ModelSpec]:
        """The models declared at start-up and the saved folders found so far (no trained models)."""
        return self.registry.specs()

    async def models_for(self, account_id: str) -> list[ModelSpec]:
        """Every model this account may call, for model listings: the declared ones (after a look for folders
        saved since start-up) and the account's complete fine-tunes."""
        await asyncio.to_thread(self.registry.scan_model_dirs)  # disk I/O: off the event loop
        trained = await asyncio.to_thread(self._trained_specs, account_id)
        return [*self.registry.specs(), *trained, *await self._deployment_specs(account_id)]

    async def _deployment_specs(self, account_id: str) -> list[ModelSpec]:
        """The account's deployments, listed as models named ``@name`` (described by what they serve now)."""

        def read() -> list[tuple[str, str]]:
            with self.db.session() as s:
                return deployments_q.deployment_targets(s, account_id)

        specs = []
        for name, target in await asyncio.to_thread(read):
            spec = await self.visible(target, account_id)
            if spec is not None:
                model_id = deployment_model_id(name)
                specs.append(
                    replace(spec, id=model_id, source="deployment", description=f"deployment '{model_id}': {target}")
                )
        return specs

    async def base_models(self) -> list[tuple[ModelSpec, Availability]]:
        """The declared models a training job can start from, each with whether it can load here now (the
        checks may touch the disk or a hub: run in threads, concurrently)."""
        specs = [spec for spec in self.declared() if spec.fine_tunable]
        checks = await asyncio.gather(*(asyncio.to_thread(spec.check) for spec in specs))
        return list(zip(specs, checks, strict=True))

    # -- availability and loading ---------------------------------------------------------------------------
    async def serving(self, specs: Iterable[ModelSpec]) -> list[ModelSpec]:
        """Those of ``specs`` that can serve now (``can_serve``), in order; local checks run in a thread."""
        specs = list(specs)
        if all(spec.monitor is not None for spec in specs):
            return [spec for spec in specs if can_serve(spec)]
        return await asyncio.to_thread(lambda: [spec for spec in specs if can_serve(spec)])

    async def health(self, model_id: str, account_id: str) -> tuple[Health, str | None]:
        """The model's health as this account sees it (another account's trained model is a 404 and is never
        loaded for it); polling a local model's health starts loading it."""
        return await self.registry.health(await self.model_for(model_id, account_id))

    def runtime(self, model_id: str) -> str | None:
        return self.registry.runtime(model_id)

    async def load(self, spec: ModelSpec) -> LoadedModel:
        return await self.registry.get(spec)

    def forget(self, model_ids: Iterable[str]) -> None:
        """Trained models that were deleted: resolved again (and not found) from now on."""
        for model_id in model_ids:
            self._trained.pop(model_id, None)

    # -- trained models -------------------------------------------------------------------------------------
    def _trained_spec(self, model_id: str) -> ModelSpec | None:
        """A complete training job's id -> its final model; a checkpoint id -> that checkpoint."""
        cached = self._trained.get(model_id)
        if cached is not None:
            return cached
        is_job = model_id.startswith(self.job_prefix + "_")
        if not (is_job or model_id.startswith(training_q.CHECKPOINT_PREFIX + "_")):
            return None
        with self.db.session() as s:
            if is_job:
                job = jobs_q.get_job(s, model_id)
                path = (job.result or {}).get("model_path") if job and job.status == "complete" else None
            else:
                checkpoint = training_q.get_checkpoint(s, model_id)
                job = jobs_q.get_job(s, checkpoint.job_id) if checkpoint else None
                path = checkpoint.path if checkpoint else None
        if job is None or job.kind != self.job_kind or path is None:
            return None
        spec = trained_model_spec(model_id, self.training_root / path, job, self.settings)
        if spec is not None:
            self._trained[model_id] = spec
        return spec

    def _trained_specs(self, account_id: str) -> list[ModelSpec]:
        """The account's complete jobs as models, newest first."""
        with self.db.session() as s:
            jobs = training_q.finished_jobs(s, account_id, self.job_kind)
        specs = []
        for job in jobs:
            with contextlib.suppress(OutriderError):
                spec = self._trained_spec(job.id)
                if spec is not None:
                    specs.append(spec)
        return specs


def not_found(model_id: str, listing: str = MODELS_LISTING, param: str | None = None) -> ModelNotFound:
    return ModelNotFound(f"model '{model_id}' not found; {listing} lists the available ids", param=param)


def visible_to(spec: ModelSpec, account_id: str) -> bool:
    """A trained model is its account's alone; every other model is visible to all."""
    return spec.training_job_id is None or spec.owned_by == account_id


def check_pool(principal: Principal, model_id: str, spec: ModelSpec, param: str) -> None:
    """A key with a model pool calls only the models in it (named by the id called or the model's own)."""
    pool = principal.model_pool
    if pool is not None and model_id not in pool and spec.id not in pool:
        raise PermissionDenied(f"model '{model_id}' is not in this API key's model pool", param=param)


def can_serve(spec: ModelSpec) -> bool:
    """Whether a call to this model should be tried now: an upstream model not while its circuit breaker is
    open; a local one when its files are there (a hub model: cached, or the hub reachable). Blocking: a
    local model's check may read the disk."""
    if spec.monitor is not None:
        return spec.monitor.is_available()
    return spec.check().available


def trained_model_spec(model_id: str, folder: Path, job: Job, settings: Settings) -> ModelSpec | None:
    """A training job's model folder (its final model, or one checkpoint) served as ``model_id``: owned by
    the job's account. A GLiNER2 adapter whose metadata names no base model id is served merged."""
    spec = spec_for_folder(model_id, folder, settings)  # GLiNER2, transformers or a LoRA adapter
    if spec is None and is_encoder_adapter(folder):
        spec = merged_adapter_spec(model_id, folder, local_price(settings, model_id), **encoder_options(settings))
    if spec is None:
        return None
    payload = job.payload
    what = "checkpoint of" if model_id != job.id else "trained by"
    return replace(
        spec,
        source="trained",
        owned_by=job.account_id,
        training_job_id=job.id,
        fine_tunable=True,
        description=(
            f"'{payload.get('model_name')}': {what} job {job.id} ({payload.get('training_type')} fine-tune of "
            f"{payload.get('base', {}).get('id')} on {payload.get('task_type')} data)"
        ),
    )
