"""Jobs as Ray tasks (``OUTRIDER_JOB_BACKEND=ray``): the same job records, the same handlers, other machines.

A :class:`RayWorker` takes the embedded worker's place (in ``outrider serve`` or ``outrider worker``). It
claims queued jobs from the database exactly as :class:`~outrider.jobs.worker.Worker` does, but instead of
running a job's handler in this process it submits :func:`run_job_on_ray_node` as a Ray task with the
kind's resource request (``OUTRIDER_RAY_JOB_RESOURCES``). The task builds the application's services on
the Ray node from the same settings and runs the claimed job through :func:`~outrider.jobs.worker.run_claimed_job`,
the code path of the embedded worker: progress, logs, checkpoints, heartbeats and the stop flag all go
through the shared database and data directory, so stop and delete behave as they do locally.

What Ray adds is the one failure the job cannot report itself: its process or node dying. The task is
submitted with no retries, and when Ray reports it lost (``WorkerCrashedError``, ``NodeDiedError``, ...)
the dispatcher fails the job with that reason and runs its kind's recovery hook.

Ray nodes need the ``ray`` extra, Outrider at the same version, the database URL reachable, and the data
directory mounted at the same path (``docs/deployment.md``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from outrider.config import Settings
from outrider.core.errors import OutriderError
from outrider.core.job_resources import GPU_KINDS
from outrider.jobs.worker import Worker, WorkerServices, run_claimed_job
from outrider.storage.queries import jobs as q
from outrider.storage.records import Job

log = logging.getLogger(__name__)


class RayUnavailable(OutriderError):
    """The ``ray`` job backend was chosen but Ray is not installed or its cluster cannot be joined."""


def task_options(settings: Settings, kind: str) -> dict[str, Any]:
    """Ray ``.options()`` for a job of ``kind``: its CPUs, GPUs and memory, never retried (a retry would rerun
    a job the database already saw fail), named after the kind for Ray's dashboard and ``ray list tasks``."""
    wanted = settings.ray_job_resources.get(kind, {})
    wants_gpu = settings.device.startswith("cuda") and kind in GPU_KINDS
    options: dict[str, Any] = {
        "num_cpus": wanted.get("num_cpus", 1),
        "num_gpus": wanted.get("num_gpus", 1 if wants_gpu else 0),
        "max_retries": 0,
        "retry_exceptions": False,
        "name": f"outrider-{kind}",
    }
    if wanted.get("memory_mb"):
        options["memory"] = int(wanted["memory_mb"] * 1024 * 1024)
    return options


def settings_for_node(settings: Settings, kind_options: dict[str, Any]) -> dict[str, Any]:
    """The settings a Ray node rebuilds: absolute paths (its working directory is Ray's, not ours), no
    embedded worker, the local backend (the node runs the job itself), and the GPU Ray granted it."""
    data = settings.model_dump(mode="json")
    for name in ("data_dir", "base_models_dir", "optimized_models_dir", "providers_file"):
        if data.get(name):
            data[name] = str(getattr(settings, name).resolve())
    data["model_dirs"] = [str(path.resolve()) for path in settings.model_dirs]
    data["database_url"] = settings.resolved_database_url
    data["embedded_worker"] = False
    data["job_backend"] = "local"
    if kind_options["num_gpus"] > 0 and settings.device != "cpu":
        # Ray set CUDA_VISIBLE_DEVICES to the GPU it granted: there it is cuda:0, whatever index the API host uses
        data["device"] = "cuda"
    elif kind_options["num_gpus"] == 0 and settings.device.startswith("cuda"):
        data["device"] = "cpu"  # this kind asked for no GPU: it must not take one Ray gave another task
    return data


def run_job_on_ray_node(settings_data: dict[str, Any], job_id: str, worker_id: str) -> dict[str, Any]:
    """The Ray task: run one claimed job on this node with the embedded worker's code path."""
    from outrider.app_state import build_services

    settings = Settings(**settings_data)
    services = build_services(settings)
    try:
        with services.db.session() as s:
            job = q.get_job(s, job_id)
        if job is None or job.status != "running" or job.worker_id != worker_id:
            return {"status": "skipped", "reason": "the job is no longer claimed by this dispatcher"}
        status = asyncio.run(run_claimed_job(services, job, worker_id, where=ray_location()))
        return {"status": status}
    finally:
        services.close()


def ray_location() -> dict[str, Any]:
    """Where a Ray task runs, recorded in its job's progress (``ray``): node, process, task id."""
    import ray

    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    node = next((n for n in ray.nodes() if n.get("NodeID") == node_id), {})
    return {
        "node_id": node_id,
        "node_ip": node.get("NodeManagerAddress"),  # the address the node joined with, not a guess from routes
        "pid": os.getpid(),
        "task_id": context.get_task_id(),
    }


def describe_ray_failure(exc: BaseException) -> str:
    """The reason a job fails with when Ray lost it."""
    from ray import exceptions as rex

    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, rex.NodeDiedError):
        return f"the Ray node running this job died: {detail}"
    if isinstance(exc, rex.WorkerCrashedError | rex.LocalRayletDiedError):
        return f"the Ray worker running this job died: {detail}"
    if isinstance(exc, rex.OutOfMemoryError):
        return f"Ray killed the worker running this job for lack of memory: {detail}"
    if isinstance(exc, rex.TaskCancelledError):
        return "the Ray task running this job was cancelled"
    if isinstance(exc, rex.RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        return f"the job's Ray task failed: {type(cause).__name__}: {cause}"
    return f"Ray could not run this job: {type(exc).__name__}: {detail}"


def require_ray() -> None:
    """Ray is installed, or a clear error naming the extra."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise RayUnavailable(
            "OUTRIDER_JOB_BACKEND=ray needs the ray extra: pip install 'outrider[ray]' (uv sync --extra ray)"
        ) from exc


def connect(settings: Settings) -> None:
    """Join the Ray cluster (``ray_address``; a local Ray when unset) unless joined; a clear error otherwise."""
    require_ray()
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(
            address=settings.ray_address,
            namespace="outrider",
            log_to_driver=False,
            include_dashboard=False if settings.ray_address is None else None,
            configure_logging=False,
        )
    except Exception as exc:
        raise RayUnavailable(f"cannot join the Ray cluster at {settings.ray_address or '(local)'}: {exc}") from exc


class RayWorker(Worker):
    """Claims jobs like :class:`Worker` and runs each as a Ray task (see the module's docstring)."""

    def __init__(self, services: WorkerServices, *, worker_id: str | None = None) -> None:
        super().__init__(services, worker_id=worker_id)
        self.settings = services.settings

    async def start(self) -> None:
        require_ray()  # a missing extra is a start-up error; an unreachable cluster is not (see _claim)
        await super().start()

    def _claim(self) -> Job | None:
        # Joined lazily, from the claim loop's thread: the server starts while the Ray head is still coming
        # up (or down), jobs stay queued meanwhile, and each turn of the loop tries again (logged).
        connect(self.settings)
        return super()._claim()

    async def _run(self, ctx: Any) -> None:
        import ray

        job: Job = ctx.job
        options = task_options(self.settings, job.kind)
        remote = ray.remote(run_job_on_ray_node).options(**options)
        error: str | None = None
        ref = None
        try:
            if self.handlers.get(job.kind) is None:
                raise RuntimeError(f"no handler for job kind '{job.kind}'")
            ref = remote.remote(settings_for_node(self.settings, options), job.id, self.worker_id)
            log.info("worker %s runs %s job %s as Ray task %s", self.worker_id, job.kind, job.id, ref.task_id().hex())
            outcome = await ref
            log.info("Ray task of job %s ended: %s", job.id, outcome)
        except asyncio.CancelledError:
            # This process shuts down: the task is interrupted (its handler cleans up and fails the job).
            if ref is not None:
                ray.cancel(ref)
            error = "interrupted: the worker shut down while the job was running"
        except ray.exceptions.RayError as exc:
            error = describe_ray_failure(exc)
        except Exception as exc:
            log.exception("submitting job %s to Ray failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._running.pop(job.id, None)
            self._wake.set()
        if error is not None:
            await asyncio.shield(asyncio.to_thread(self._fail_lost, job, error))

    def _fail_lost(self, job: Job, reason: str) -> None:
        """Fail a job its Ray task could not finish (still ours and running), then run its recovery hook."""
        with self.db.session() as s:
            failed = q.finish_job(s, job.id, status="failed", worker_id=self.worker_id, error=reason)
        if failed is None:
            return  # the task finished it after all
        log.warning("job %s failed: %s", job.id, reason)
        self.run_recovery(failed)
