"""The job backend a process runs (``OUTRIDER_JOB_BACKEND``): the local worker, or the Ray dispatcher."""

from __future__ import annotations

from outrider.jobs.worker import Worker, WorkerServices


def make_worker(services: WorkerServices) -> Worker:
    """The worker ``OUTRIDER_JOB_BACKEND`` asks for: this process runs the jobs (``local``), or Ray does."""
    if services.settings.job_backend == "ray":
        from outrider.jobs.ray_backend import RayWorker  # Ray is imported only when it is the backend

        return RayWorker(services)
    return Worker(services)


async def start_embedded_worker(services: WorkerServices) -> Worker | None:
    """The server's worker, unless ``OUTRIDER_EMBEDDED_WORKER`` is off."""
    if not services.settings.embedded_worker:
        return None
    worker = make_worker(services)
    await worker.start()
    return worker
