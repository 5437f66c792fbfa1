"""``outrider worker``: a job worker without the HTTP server, against the same database."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import typer


def worker(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Data directory (default: OUTRIDER_DATA_DIR)."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Most jobs run at once (default 2)."),
) -> None:
    """Run queued jobs (generation, training, ...) until stopped with Ctrl-C or SIGTERM."""
    from outrider.app_state import build_services
    from outrider.config import build_settings
    from outrider.jobs.worker import Worker

    settings = build_settings(data_dir=data_dir, worker_concurrency=concurrency)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    services = build_services(settings)

    async def run() -> None:
        job_worker = Worker(services)
        task = asyncio.create_task(job_worker.run_forever())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        typer.secho(f"worker {job_worker.worker_id} on {settings.resolved_database_url}", err=True)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await job_worker.stop()  # running jobs are failed as interrupted, their handlers clean up
            await services.aclose()

    asyncio.run(run())
