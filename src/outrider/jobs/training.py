"""The ``training`` job: run a trainer in a child process and turn its events into the job's record.

The child is ``python -m outrider.training.runner JOB_DIR`` (see that module for the event protocol). The
parent here, running inside the worker:

- updates the job's progress (step, total_steps, epoch, loss; written at most once a second), registers
  each checkpoint as it is saved, and appends the child's events and standard error to the job's log;
- stops it when the job's stop flag rises or the account's credit runs out: the stop file and SIGTERM
  first (the trainer saves a checkpoint and exits), SIGKILL after ``training_stop_grace_s``;
- charges ``training_price_per_hour_usd`` for the time the trainer runs, every few seconds;
- fails the job with the reason when the child crashes or is killed; the server is never affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from outrider.backends.devices import current_device
from outrider.config import Settings
from outrider.core.errors import BackendError
from outrider.jobs.registry import JobContext, JobHandlers, StopRequested
from outrider.services.billing import BillingService
from outrider.services.training import TRAINING_JOB_KIND, TrainingService
from outrider.storage.records import Job
from outrider.training.runner import DEVICE_ENV, LOG_FILE, STOP_FILE

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 1.0
CHARGE_INTERVAL_S = 5.0
WATCH_INTERVAL_S = 0.2
STDERR_TAIL_LINES = 20
EVENT_LINE_LIMIT = 8 * 1024 * 1024  # a metrics event with many labels is one long line


@dataclass(frozen=True)
class TrainingJobDeps:
    """What a training job uses, built by ``build_services``."""

    settings: Settings  # the stop grace period and the price of an hour of training
    training: TrainingService  # the job's folder, its prepared data, its checkpoints
    billing: BillingService  # charges for the trainer's time


class JobLog:
    """The job's log file: one timestamped line per write, readable while it grows."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by close()

    def write(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with contextlib.suppress(OSError, ValueError):  # a deleted job's folder: nothing left to log to
            self.handle.write("".join(f"{stamp} {line}\n" for line in message.splitlines() or [""]))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the trainer process was killed by signal {-returncode} ({name})"
    return f"the trainer process exited with code {returncode}"


class TrainerRun:
    """One trainer process and everything the parent does while it runs."""

    def __init__(self, ctx: JobContext, deps: TrainingJobDeps, job_dir: Path, joblog: JobLog, threads: int) -> None:
        self.ctx = ctx
        self.training = deps.training
        self.billing = deps.billing
        self.settings = deps.settings
        self.job = ctx.job
        self.job_dir = job_dir
        self.log = joblog
        self.threads = threads
        self.progress: dict[str, Any] = {}
        self.progress_written_at = 0.0
        self.done: dict[str, Any] | None = None
        self.error: str | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.stop_reason: str | None = None
        self.stop_sent_at: float | None = None
        self.killed = False
        self.started_at = time.monotonic()
        self.charged_until = self.started_at
        self.charge_remainder = 0.0
        self.proc: asyncio.subprocess.Process | None = None

    async def execute(self) -> dict[str, Any]:
        env = {
            **os.environ,
            "OUTRIDER_TRAINER_PARENT": str(os.getpid()),
            DEVICE_ENV: current_device(),  # where this process serves is where its trainers train
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
        # A session of its own: a Ctrl-C in the server's terminal reaches the server, which stops the
        # trainer itself (cleanly) instead of the trainer dying mid-write.
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "outrider.training.runner",
            str(self.job_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            limit=EVENT_LINE_LIMIT,
        )
        self.log.write(f"trainer process {self.proc.pid} started ({self.threads} torch thread(s))")
        readers = [asyncio.create_task(self._read_events()), asyncio.create_task(self._read_stderr())]
        watcher = asyncio.create_task(self._watch())
        try:
            returncode = await self.proc.wait()
            await asyncio.gather(*readers)
        except asyncio.CancelledError:
            # The worker is shutting down: stop the trainer (briefly: shutdown should not hang), then go.
            await asyncio.shield(self._terminate(grace_s=5.0))
            raise
        finally:
            watcher.cancel()
            for reader in readers:
                reader.cancel()
        await self._charge()
        await self._write_progress(force=True)
        return await self._outcome(returncode)

    # -- reading the child --------------------------------------------------------------------------------
    async def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                self.log.write(raw.decode("utf-8", "replace").rstrip())
                continue
            try:
                await self._handle(event)
            except Exception:
                log.exception("training job %s: handling event %s failed", self.job.id, event.get("event"))

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            # Progress bars redraw with carriage returns: keep only what the line finally shows.
            line = raw.decode("utf-8", "replace").rstrip("\r\n").split("\r")[-1].rstrip()
            if line:
                self.stderr_tail.append(line)
                self.log.write(line)

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            self.progress.update(total_steps=event.get("total_steps"), step=0, epoch=0)
            self.log.write(
                f"training on {event.get('train_examples')} examples, validating on {event.get('val_examples')}, "
                f"{event.get('total_steps')} steps"
            )
            await self._write_progress(force=True)
        elif kind == "progress":
            self.progress.update(
                step=event.get("step"),
                total_steps=event.get("total_steps"),
                epoch=event.get("epoch"),
                loss=event.get("loss"),
            )
            loss = event.get("loss")
            loss_text = f"{loss:.4f}" if isinstance(loss, int | float) else "-"
            total = event.get("total_steps") or "?"
            self.log.write(f"step {event.get('step')}/{total} epoch {event.get('epoch')} loss {loss_text}")
            await self._write_progress()
        elif kind == "checkpoint":
            checkpoint = await asyncio.to_thread(
                self.training.add_checkpoint,
                self.job,
                self.job_dir / event["path"],
                int(event.get("step") or 0),
                event.get("epoch"),
                event.get("metrics") or {},
            )
            self.progress["checkpoints"] = int(self.progress.get("checkpoints", 0)) + 1
            self.log.write(f"checkpoint {checkpoint.id} saved at step {checkpoint.step}{_metrics_text(event)}")
            await self._write_progress(force=True)
        elif kind == "done":
            self.done = event
            if not event.get("stopped") and event.get("steps"):
                self.progress["total_steps"] = event["steps"]  # the estimate made at the start was only that
            self.log.write(f"trainer finished{' (stopped)' if event.get('stopped') else ''}{_metrics_text(event)}")
        elif kind == "error":
            self.error = str(event.get("message") or "unknown error")
            self.log.write(f"trainer error: {self.error}")
        elif kind == "log":
            self.log.write(str(event.get("message", "")))

    async def _write_progress(self, force: bool = False) -> None:
        if not self.progress:
            return
        moment = time.monotonic()
        if not force and moment - self.progress_written_at < PROGRESS_WRITE_INTERVAL_S:
            return
        self.progress_written_at = moment
        await self.ctx.progress(**self.progress)

    # -- stopping and charging ----------------------------------------------------------------------------
    async def _watch(self) -> None:
        last_charge = time.monotonic()
        while self.proc is not None and self.proc.returncode is None:
            await asyncio.sleep(WATCH_INTERVAL_S)
            moment = time.monotonic()
            if self.stop_sent_at is None and self.ctx.should_stop():
                self.request_stop("stopped on request")
            if moment - last_charge >= CHARGE_INTERVAL_S:
                last_charge = moment
                await self._charge()
            grace = self.settings.training_stop_grace_s
            if self.stop_sent_at is not None and not self.killed and moment - self.stop_sent_at >= grace:
                self._signal(signal.SIGKILL)
                self.killed = True
                self.log.write(f"the trainer did not exit within {grace:g} s: killed it")

    def request_stop(self, reason: str) -> None:
        if self.stop_sent_at is not None:
            return
        self.stop_reason = reason
        self.stop_sent_at = time.monotonic()
        self.log.write(f"{reason}: asking the trainer to save a checkpoint and exit")
        with contextlib.suppress(OSError):
            (self.job_dir / STOP_FILE).touch()
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def _terminate(self, grace_s: float) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.request_stop("the worker is shutting down")
        try:
            await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            with contextlib.suppress(Exception):
                await self.proc.wait()

    async def _charge(self) -> None:
        """Charge the time since the last charge; out of credit -> stop cleanly."""
        price = self.settings.training_price_per_hour_usd
        moment = time.monotonic()
        seconds, self.charged_until = moment - self.charged_until, moment
        if price <= 0 or seconds <= 0:
            return
        exact = seconds * price * 1_000_000 / 3600 + self.charge_remainder
        amount = int(exact)
        self.charge_remainder = exact - amount
        if amount <= 0:
            return
        ok = await asyncio.to_thread(
            self.billing.charge_job,
            self.job.account_id,
            self.job.id,
            amount,
            kind="training",
            description=f"training '{self.job.payload.get('model_name')}': {seconds:.1f} s",
        )
        if not ok and self.stop_sent_at is None:
            self.request_stop("insufficient credits")

    # -- the outcome ----------------------------------------------------------------------------------------
    async def _outcome(self, returncode: int) -> dict[str, Any]:
        elapsed = round(time.monotonic() - self.started_at, 2)
        result: dict[str, Any] = {"trainer_seconds": elapsed}
        if self.done is not None:
            result.update(
                metrics=self.done.get("metrics") or {},
                train_seconds=self.done.get("train_seconds"),
                steps=self.done.get("steps"),
                best_step=self.done.get("best_step"),
                best_epoch=self.done.get("best_epoch"),
                early_stopped=bool(self.done.get("early_stopped")),
            )
            if self.done.get("model_path"):
                result["model_path"] = self.training.relative_path(self.job_dir / self.done["model_path"])
        stopped = self.stop_sent_at is not None or bool(self.done and self.done.get("stopped"))
        if stopped and (returncode == 0 or self.stop_sent_at is not None):
            result["stop_reason"] = self.stop_reason or "stopped on request"
            self.log.write(f"job stopped: {result['stop_reason']}")
            await self.ctx.set_result(**result)
            raise StopRequested(result["stop_reason"])
        if returncode == 0 and self.done is not None:
            if "model_path" not in result:
                raise BackendError("training failed: the trainer finished without saving a model")
            result["model_id"] = self.job.id
            self.log.write(f"job complete: model id {self.job.id}")
            return result
        reason = self.error or describe_exit(returncode)
        if self.error is None and self.stderr_tail:
            reason += f"; last output: {self.stderr_tail[-1]}"
        self.log.write(f"job failed: {reason}")
        await self.ctx.set_result(**result)
        raise BackendError(f"training failed: {reason}")


def _metrics_text(event: dict[str, Any]) -> str:
    metrics = event.get("metrics") or {}
    shown = [f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float) and k != "per_label"]
    return f" ({', '.join(shown[:6])})" if shown else ""


async def run_training(deps: TrainingJobDeps, ctx: JobContext) -> dict[str, Any]:
    training = deps.training
    job_dir = training.job_dir(ctx.job.id)
    joblog = JobLog(job_dir / LOG_FILE)
    try:
        joblog.write(f"job {ctx.job.id} started: {ctx.job.payload.get('model_name')!r}")
        # The stop flag is looked at while preparing too: a job over many or large datasets can take a
        # while here, and a stop must not wait for it.
        try:
            prepared = await asyncio.to_thread(training.prepare_run, ctx.job, ctx.should_stop)
        except StopRequested as stopped:
            joblog.write(f"job stopped: {stopped}")
            raise
        joblog.write(
            f"{prepared['train_examples']} training and {prepared['val_examples']} validation examples "
            f"({prepared['task_type']}, labels: {', '.join(prepared['labels'][:20]) or '-'})"
        )
        await ctx.set_result(train_examples=prepared["train_examples"], val_examples=prepared["val_examples"])
        await ctx.progress(step=0, total_steps=None, epoch=0, loss=None, checkpoints=0)
        if ctx.should_stop():
            raise StopRequested("stopped before training started")
        return await TrainerRun(ctx, deps, job_dir, joblog, training.trainer_threads()).execute()
    except (StopRequested, asyncio.CancelledError):
        raise
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        joblog.write(f"job failed: {message}")
        raise
    finally:
        joblog.close()


def recover_training(deps: TrainingJobDeps, job: Job) -> None:
    """A dead worker's job: its trainer died with it (``PR_SET_PDEATHSIG``); note the reason in the log."""
    joblog = JobLog(deps.training.job_dir(job.id) / LOG_FILE)
    joblog.write(f"job failed: {job.error}")
    joblog.close()


def register(handlers: JobHandlers, deps: TrainingJobDeps) -> None:
    handlers.register(TRAINING_JOB_KIND, partial(run_training, deps), recover=partial(recover_training, deps))
