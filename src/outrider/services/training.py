"""Fine-tuning as a use case: validate and queue training jobs, read them, stream their logs, list their
checkpoints, package their weights, stop and delete them.

A training job is a ``training`` job of the generic worker (``jobs/training.py`` runs it in a child
process). Its files live in ``DATA_DIR/training/<job id>/``: the prepared data and spec, the log, and the
trainer's output (checkpoints; the final model is the last one). Every method takes the owning account:
another account's job is simply not found (404). Job ids (``ft_...``) of complete jobs and checkpoint ids
(``ckpt_...``) are model ids: the model catalog (``services/catalog.py``) serves them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from outrider.backends.builtin import base_model_dir
from outrider.backends.decoder_hf import SMOLLM2_ID
from outrider.backends.encoder_gliner import MINILM_BASE_ID
from outrider.backends.registry import ModelRegistry
from outrider.config import Settings
from outrider.core.deployments import deployment_name, is_deployment_id
from outrider.core.errors import InvalidRequest, NotFound
from outrider.core.text import loads_repaired
from outrider.datasets.formats import count_labels, to_chat, to_gliner2
from outrider.jobs.registry import StopRequested
from outrider.services.accounts import Principal
from outrider.services.datasets import DatasetService
from outrider.services.jobs import JobService
from outrider.storage.db import Database
from outrider.storage.queries import datasets as datasets_q
from outrider.storage.queries import deployments as deployments_q
from outrider.storage.queries import jobs as jobs_q
from outrider.storage.queries import training as q
from outrider.storage.records import Job, TrainingCheckpoint
from outrider.training.runner import LOG_FILE, SPEC_FILE, TRAIN_FILE, VAL_FILE
from outrider.training.splits import split_records
from outrider.training.zipped import DownloadFormat, build_download

TRAINING_JOB_KIND = "training"  # run by jobs/training.py
JOB_PREFIX = "ft"
ENCODER_TASKS = ("ner", "classification", "structures", "relations")
FINISHED = ("complete", "failed", "stopped")
LOG_POLL_S = 0.5
DELETE_WAIT_EXTRA_S = 15.0
# One job trains on at most this many dataset versions: the list is expanded into one training file, so
# an unbounded list turns a small request into an arbitrarily large job (issue #15).
MAX_TRAINING_DATASETS = 20
MAX_SEED = 2**32 - 1  # what every trainer's RNG accepts (numpy's seeds are 32-bit)
PREPARE_READ_CHUNK = 2000  # examples read (and converted) between two looks at the job's stop flag


@dataclass(frozen=True)
class DatasetRef:
    name: str
    version: int | str | None = None


@dataclass(frozen=True)
class TrainingRequest:
    model_name: str
    base_model: str | None
    datasets: list[DatasetRef]
    training_type: Literal["lora", "full"] = "lora"
    nr_epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int = 0
    validation_fraction: float = 0.1
    early_stopping_patience: int | None = None  # encoders: validations without a better F1 before stopping
    head_learning_rate: float | None = None  # encoders: the extraction heads' rate
    entity_label_renaming: float | None = None  # encoders: gliner2's chance of renaming entity types


@dataclass(frozen=True)
class Download:
    path: Path
    filename: str


@dataclass
class _Base:
    id: str  # the base model's registry id (for a checkpoint: the base its job started from)
    family: str  # encoder | decoder
    path: str  # folder (or hub id) the trainer starts from
    build: str | None = None  # a built-in base the trainer builds on first use
    checkpoint_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def task_family(task_type: str) -> str:
    return "encoder" if task_type in ENCODER_TASKS else "decoder"


class TrainingService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        jobs: JobService,
        datasets: DatasetService,
        registry: ModelRegistry,
        *,
        on_deleted: Callable[[list[str]], None] = lambda model_ids: None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.jobs = jobs
        self.datasets = datasets
        self.registry = registry
        self.root = settings.data_dir / "training"
        # Told the model ids (job and checkpoints) of a deleted job: the model catalog forgets them.
        self.on_deleted = on_deleted

    # -- files ------------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def relative_path(self, path: Path) -> str:
        return os.path.relpath(Path(path).resolve(), self.root.resolve())

    def trainer_threads(self) -> int:
        """torch threads of a trainer: the setting, else every core but one when the server serves too."""
        if self.settings.training_threads:
            return self.settings.training_threads
        cores = os.cpu_count() or 1
        return max(1, cores - 1) if self.settings.embedded_worker else cores

    # -- creating ---------------------------------------------------------------------------------------
    def accepted_base_models(self) -> list[str]:
        return [s.id for s in self.registry.specs() if s.fine_tunable]

    def _bad_base(self, message: str) -> InvalidRequest:
        accepted = ", ".join(self.accepted_base_models())
        return InvalidRequest(
            f"{message}; base_model must be one of the ids from GET /base-models ({accepted}) or a checkpoint id "
            "(ckpt_...) from GET /felix/training-jobs/{id}/checkpoints",
            param="base_model",
        )

    def _resolve_base(self, account_id: str, base_model: str | None) -> _Base:
        if not base_model:
            raise self._bad_base("base_model is required")
        if is_deployment_id(base_model):  # continue from the model the deployment serves now
            with self.db.session() as s:
                target = deployments_q.current_target(s, account_id, deployment_name(base_model))
            if target is None:
                raise self._bad_base(f"unknown deployment '{base_model}'")
            base = self._resolve_base(account_id, target)
            return replace(base, extra={**base.extra, "deployment": base_model, "deployment_target": target})
        if base_model.startswith(q.CHECKPOINT_PREFIX + "_") or base_model.startswith(JOB_PREFIX + "_"):
            return self._checkpoint_base(account_id, base_model)
        spec = next((s for s in self.registry.specs() if s.id == base_model and s.fine_tunable), None)
        if spec is None:
            raise self._bad_base(f"unknown base_model '{base_model}'")
        availability = spec.check()
        if not availability.available:
            raise InvalidRequest(f"base_model '{base_model}' is not available here: {availability.reason}")
        if spec.id in (MINILM_BASE_ID, SMOLLM2_ID):
            return _Base(spec.id, spec.kind, str(base_model_dir(self.settings, spec.id)), build=spec.id)
        if spec.source == "hub":
            return _Base(spec.id, spec.kind, spec.id)  # the library loads it from its cache
        raise self._bad_base(f"base_model '{base_model}' cannot be fine-tuned by this server")

    def _checkpoint_base(self, account_id: str, model_id: str) -> _Base:
        with self.db.session() as s:
            if model_id.startswith(JOB_PREFIX + "_"):
                job = jobs_q.get_job(s, model_id, account_id=account_id)
                checkpoint = None
                path = (job.result or {}).get("model_path") if job and job.status == "complete" else None
            else:
                checkpoint = q.get_checkpoint(s, model_id, account_id=account_id)
                job = jobs_q.get_job(s, checkpoint.job_id) if checkpoint else None
                path = checkpoint.path if checkpoint else None
        if job is None or job.kind != TRAINING_JOB_KIND or path is None:
            raise self._bad_base(f"unknown base_model '{model_id}'")
        payload = job.payload
        return _Base(
            id=payload["base"]["id"],
            family=payload["family"],
            path=str(self.root / path),
            checkpoint_id=checkpoint.id if checkpoint else None,
            extra={"job_id": job.id, "relative_path": path},
        )

    async def _check_datasets(self, account_id: str, refs: list[DatasetRef]) -> tuple[str, list[dict[str, Any]]]:
        if not refs:
            raise InvalidRequest('datasets must name at least one dataset: [{"name": ...}]', param="datasets")
        if len(refs) > MAX_TRAINING_DATASETS:
            raise InvalidRequest(
                f"datasets: at most {MAX_TRAINING_DATASETS} dataset versions per job, got {len(refs)}",
                param="datasets",
            )
        task_types, chosen, seen = set(), [], set()
        for ref in refs:
            try:
                dataset, version = await self.datasets.version(account_id, ref.name, ref.version)
            except (NotFound, InvalidRequest) as exc:
                raise InvalidRequest(f"datasets: {exc.message}", param="datasets") from exc
            if version.example_count == 0:
                raise InvalidRequest(
                    f"datasets: version {version.version} of dataset '{ref.name}' has no examples", param="datasets"
                )
            # Compared once "latest" / no version is resolved: the same examples twice would only weigh
            # them double, which is never what a client means (and it multiplies the job's size).
            if version.id in seen:
                raise InvalidRequest(
                    f"datasets: version {version.version} of dataset '{dataset.name}' is named more than once",
                    param="datasets",
                )
            seen.add(version.id)
            task_types.add(version.task_type)
            chosen.append(
                {
                    "name": dataset.name,
                    "version": version.version,
                    "version_id": version.id,
                    "task_type": version.task_type,
                    "examples": version.example_count,
                }
            )
        if len(task_types) > 1:
            raise InvalidRequest(
                f"datasets: every dataset of one job must have the same task type, got {sorted(task_types)}",
                param="datasets",
            )
        return task_types.pop(), chosen

    async def _validate(self, principal: Principal, request: TrainingRequest) -> dict[str, Any]:
        account_id = principal.account.id
        if not request.model_name or not request.model_name.strip() or len(request.model_name) > 200:
            raise InvalidRequest("model_name must be 1-200 characters", param="model_name")
        if not 0 <= request.seed <= MAX_SEED:
            raise InvalidRequest(f"seed must be between 0 and {MAX_SEED}", param="seed")
        base = await asyncio.to_thread(self._resolve_base, account_id, request.base_model)
        task_type, chosen = await self._check_datasets(account_id, request.datasets)
        family = task_family(task_type)
        if family != base.family:
            needs = (
                "an encoder (GLiNER2) base such as " + MINILM_BASE_ID
                if family == "encoder"
                else ("a decoder base such as " + SMOLLM2_ID)
            )
            raise InvalidRequest(
                f"task mismatch: {task_type} datasets train {needs}, and base_model '{request.base_model}' is "
                f"a {base.family} model",
                param="base_model",
            )
        if family != "encoder":
            for name in ("head_learning_rate", "entity_label_renaming", "early_stopping_patience"):
                if getattr(request, name) is not None:
                    raise InvalidRequest(f"{name} applies to encoder (GLiNER2) training only", param=name)
        return {
            "model_name": request.model_name.strip(),
            "base_model": request.base_model,
            "base": {
                "id": base.id,
                "path": base.path,
                "build": base.build,
                "checkpoint_id": base.checkpoint_id,
                **base.extra,
            },
            "family": family,
            "task_type": task_type,
            "datasets": chosen,
            "training_type": request.training_type,
            "hyperparameters": {
                "nr_epochs": request.nr_epochs,
                "learning_rate": request.learning_rate,
                "batch_size": request.batch_size,
                "seed": request.seed,
                "validation_fraction": request.validation_fraction,
                "early_stopping_patience": request.early_stopping_patience,
                "head_learning_rate": request.head_learning_rate,
                "entity_label_renaming": request.entity_label_renaming,
            },
            "api_key_id": principal.key_id,
            "user_id": principal.user_id,
        }

    async def create(self, principal: Principal, request: TrainingRequest) -> Job:
        payload = await self._validate(principal, request)
        return await self.jobs.submit(principal.account.id, TRAINING_JOB_KIND, payload, prefix=JOB_PREFIX)

    # -- preparing a run (called by the job handler, in a thread) -------------------------------------------
    def prepare_run(self, job: Job, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        """Read the datasets, split off the validation examples, write the trainer's records and spec.

        Runs in a worker thread; ``should_stop`` (the job's stop flag) is looked at between datasets and
        every ``PREPARE_READ_CHUNK`` examples, so a stop during a long preparation ends it within about a
        second (``StopRequested``: the job ends ``stopped``)."""

        def check_stop() -> None:
            if should_stop():
                raise StopRequested("stopped while preparing the training data")

        payload = job.payload
        examples: list[dict] = []
        for ref in payload["datasets"]:
            check_stop()
            with self.db.session() as s:
                version = datasets_q.get_version(s, ref["version_id"])
            if version is None:
                raise NotFound(f"version {ref['version']} of dataset '{ref['name']}' was deleted before training")
            files, count = self.datasets.files, version.example_count
            for start in range(0, count, PREPARE_READ_CHUNK):
                check_stop()
                lines = files.read_examples(version.path, start, PREPARE_READ_CHUNK, count)
                examples += [loads_repaired(line) for line in lines]  # as DatasetService.read_all reads them
        check_stop()
        if not examples:
            raise InvalidRequest("the datasets have no examples")
        task_type, family = payload["task_type"], payload["family"]
        labels = sorted(count_labels(task_type, examples))
        hyper = payload["hyperparameters"]
        train, val = split_records(examples, float(hyper.get("validation_fraction") or 0.0), hyper.get("seed") or 0)
        if family == "encoder":
            convert = lambda e: to_gliner2(task_type, e, labels)  # noqa: E731
        else:
            convert = lambda e: {"messages": to_chat(task_type, e, labels)}  # noqa: E731
        base = dict(payload["base"])
        if base.get("relative_path"):
            base["path"] = str(self.root / base["relative_path"])
            if not os.path.exists(base["path"]):
                raise NotFound(f"the checkpoint to continue from ({payload['base_model']}) was deleted")
        job_dir = self.job_dir(job.id)
        job_dir.mkdir(parents=True, exist_ok=True)
        for name, part in ((TRAIN_FILE, train), (VAL_FILE, val)):
            with open(job_dir / name, "w", encoding="utf-8") as handle:
                for index, example in enumerate(part):
                    if index % PREPARE_READ_CHUNK == 0:
                        check_stop()
                    handle.write(json.dumps(convert(example), ensure_ascii=False) + "\n")
        check_stop()
        spec = {
            "job_id": job.id,
            "family": family,
            "task_type": task_type,
            "labels": labels,
            "base": base,
            "training_type": payload["training_type"],
            "hyperparameters": hyper,
            "threads": self.trainer_threads(),
        }
        (job_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        return {"train_examples": len(train), "val_examples": len(val), "labels": labels, "task_type": task_type}

    def add_checkpoint(
        self, job: Job, folder: Path, step: int, epoch: int | None, metrics: dict[str, Any]
    ) -> TrainingCheckpoint:
        with self.db.session() as s:
            return q.insert_checkpoint(
                s,
                job_id=job.id,
                account_id=job.account_id,
                step=step,
                epoch=epoch,
                metrics=metrics,
                path=self.relative_path(folder),
            )

    # -- reading ------------------------------------------------------------------------------------------
    async def get(self, account_id: str, job_id: str) -> Job:
        return await self.jobs.get(account_id, job_id, kind=TRAINING_JOB_KIND)

    async def list(self, account_id: str, *, limit: int, offset: int) -> tuple[list[Job], int]:
        return await self.jobs.list(account_id, kind=TRAINING_JOB_KIND, limit=limit, offset=offset)

    async def checkpoints(self, account_id: str, job_id: str) -> list[TrainingCheckpoint]:
        await self.get(account_id, job_id)

        def read() -> list[TrainingCheckpoint]:
            with self.db.session() as s:
                return q.list_checkpoints(s, job_id)

        return await asyncio.to_thread(read)

    async def log_stream(self, account_id: str, job_id: str, *, follow: bool = True) -> AsyncIterator[bytes]:
        """The log so far, then (``follow``) new lines as they are written until the job finishes."""
        job = await self.get(account_id, job_id)
        path = self.job_dir(job_id) / LOG_FILE

        async def lines() -> AsyncIterator[bytes]:
            position, current = 0, job
            while True:
                chunk = await asyncio.to_thread(_read_from, path, position)
                # Only whole lines: a line being written is sent once it is complete.
                complete = chunk[: chunk.rfind(b"\n") + 1]
                if complete:
                    position += len(complete)
                    yield complete
                    continue
                if not follow or current.status in FINISHED:
                    if chunk:  # a last line without its newline
                        yield chunk + b"\n"
                    return
                await asyncio.sleep(LOG_POLL_S)
                try:
                    current = await self.get(account_id, job_id)
                except NotFound:
                    return  # deleted while streaming

        return lines()

    async def download(
        self, account_id: str, job_id: str, checkpoint_id: str | None = None, form: DownloadFormat = "model"
    ) -> Download:
        """A zip of the final model (or of one checkpoint) with a README on loading it without Outrider;
        ``form="onnx"`` adds a GLiNER2 model's int8 ONNX encoder (the form it is served in)."""
        job = await self.get(account_id, job_id)
        if form == "onnx" and job.payload.get("family") != "encoder":
            raise InvalidRequest(
                f"format=onnx is offered for GLiNER2 extraction models; job '{job_id}' trained a "
                f"{job.payload.get('family')} model (download it with format=model)",
                param="format",
            )
        if checkpoint_id is not None:
            found = [c for c in await self.checkpoints(account_id, job_id) if c.id == checkpoint_id]
            if not found:
                raise NotFound(f"checkpoint '{checkpoint_id}' of job '{job_id}' not found")
            relative, target_id, metrics = found[0].path, checkpoint_id, found[0].metrics
        else:
            relative = (job.result or {}).get("model_path")
            if job.status != "complete" or not relative:
                raise InvalidRequest(
                    f"job '{job_id}' is {public_status(job.status)}: only a complete job has final weights "
                    "(download a checkpoint with ?checkpoint_id=...)",
                    param="job_id",
                )
            target_id, metrics = job_id, (job.result or {}).get("metrics") or {}
        folder = self.root / relative
        suffix = "-onnx" if form == "onnx" else ""
        zip_path = self.job_dir(job_id) / "downloads" / f"{target_id}{suffix}.zip"
        optimized = self.settings.resolved_optimized_models_dir if form == "onnx" else None
        await asyncio.to_thread(build_download, folder, zip_path, job.payload, job_id, target_id, metrics, optimized)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in job.payload.get("model_name", job_id))
        return Download(zip_path, f"{safe}-{target_id}{suffix}.zip")

    # -- stopping and deleting --------------------------------------------------------------------------
    async def stop(self, account_id: str, job_id: str) -> Job:
        return await self.jobs.stop(account_id, job_id, kind=TRAINING_JOB_KIND)

    async def delete(self, account_id: str, job_id: str) -> Job:
        """Stop it if it runs (waiting for the trainer to exit), then remove its record, checkpoints and files."""
        job = await self.get(account_id, job_id)
        if job.status not in FINISHED:
            job = await self.stop(account_id, job_id)
            deadline = asyncio.get_running_loop().time() + self.settings.training_stop_grace_s + DELETE_WAIT_EXTRA_S
            while job.status not in FINISHED and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.25)
                job = await self.get(account_id, job_id)

        def remove() -> list[TrainingCheckpoint]:
            with self.db.session() as s:
                checkpoints = q.list_checkpoints(s, job_id)
                q.delete_job(s, job_id)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            return checkpoints

        checkpoints = await asyncio.to_thread(remove)
        self.on_deleted([job_id, *(c.id for c in checkpoints)])
        return job


def public_status(status: str) -> str:
    """The jobs table's ``queued`` is the training API's ``requested``."""
    return "requested" if status == "queued" else status


def _read_from(path: Path, position: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(position)
            return handle.read(1 << 20)
    except FileNotFoundError:
        return b""
