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
    from sqlalchemy import make_url

    from outrider.app_state import build_services
    from outrider.config import build_settings
    from outrider.jobs.backends import make_worker
    from outrider.observability.logs import configure_logging

    settings = build_settings(data_dir=data_dir, worker_concurrency=concurrency)
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings)

    async def run() -> None:
        job_worker = make_worker(services)  # OUTRIDER_JOB_BACKEND: here, or Ray tasks
        task = asyncio.create_task(job_worker.run_forever())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        logging.getLogger("outrider").info("worker %s on %s", job_worker.worker_id, database)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await job_worker.stop()  # running jobs are failed as interrupted, their handlers clean up
            await services.aclose()

    asyncio.run(run())
