"""Following a training job from the command line (``outrider train`` and ``outrider eval`` both do)."""

from __future__ import annotations

import time
from typing import Any

JOBS = "/felix/training-jobs"
FINISHED = ("complete", "failed", "stopped")


def follow_job(client: Any, job_id: str, console: Any, *, poll_s: float = 1.0) -> dict[str, Any]:
    """Poll the job with a live progress bar until it finishes; returns the final job."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed:.0f}/{task.fields[total_text]}"),
        TextColumn("epoch {task.fields[epoch]}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("requested", total=None, total_text="?", epoch="-", loss="-")
        while True:
            response = client.get(f"{JOBS}/{job_id}")
            response.raise_for_status()
            job = response.json()
            progress = job["progress"]
            total = progress.get("total_steps")
            loss = progress.get("loss")
            bar.update(
                task,
                description=job["status"],
                completed=progress.get("step") or 0,
                total=total,
                total_text=total if total is not None else "?",
                epoch=f"{progress.get('epoch') or 0}/{progress.get('nr_epochs') or '?'}",
                loss=f"{loss:.4f}" if isinstance(loss, int | float) else "-",
            )
            if job["status"] in FINISHED:
                return job
            time.sleep(poll_s)
