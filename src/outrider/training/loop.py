"""The training loop both trainers run: step, progress, stop, validate, checkpoint.

``train_loop`` reads top to bottom, once per epoch:

1. draw the epoch's batch order from the run's seeded generator;
2. for each batch: one optimizer step (loss, backward, clip, step, schedule), timed on its own;
3. report progress, then poll the stop request, then the step budget (``max_steps``);
4. every ``checkpoint_every`` steps: validate and save a checkpoint;
5. at the end of the epoch: validate and save, unless step 4 just did;
6. on a stop: save what was learned at once, without validating, and return;
7. early stopping: after ``patience`` validations in a row without a better validation F1 than the best so
   far, end the run (the best checkpoint, which the trainer keeps as its final model, is already saved).

Every validated checkpoint is compared with the best so far on its ``f1`` (the headline figure of every
task: span F1 for extraction, macro F1 for classification, token F1 for decoder answers); only a strictly
higher one becomes the best, so on a plateau the earlier, shorter-trained checkpoint stays.

What differs between an encoder and a decoder (how a batch becomes a loss, how a checkpoint is validated,
what a checkpoint folder holds) is a ``TrainingTask`` that the trainer passes in; the loop owns the order of
things, which is what the job's progress events, stop handling and checkpoints depend on. The loop's state
is a ``RunState`` that the task reads when it writes a checkpoint's metadata.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from outrider.backends.adapters import METADATA_FILE
from outrider.backends.devices import autocast

ProgressCallback = Callable[[int, int, float], None]  # step, epoch, loss
CheckpointCallback = Callable[[Path, int, dict[str, Any]], None]  # folder, step, metrics
StopCallback = Callable[[], bool]


@dataclass
class RunState:
    """Where the run stands; the loop updates it, the task reads it for a checkpoint's metadata."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # the epoch in progress (1-based)
    loss: float | None = None  # the last step's training loss
    stopped: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)  # the last validation's (a stop's checkpoint keeps them)
    saved_at: int = -1  # the step of the last validated checkpoint
    train_seconds: float = 0.0  # optimizer steps only: validation and saving are timed apart
    checkpoints: list[Path] = field(default_factory=list)
    best: Best | None = None  # the validated checkpoint with the highest F1 so far
    since_best: int = 0  # validations since the best one (early stopping counts these)
    early_stopped: bool = False


@dataclass(frozen=True)
class Best:
    checkpoint: Path
    step: int
    epoch: int
    score: float
    metrics: dict[str, Any]


class TrainingTask(Protocol):
    """The model-specific parts of a run."""

    def loss(self, batch: list[int], step: int) -> Any:
        """The loss tensor of one batch (indices into the training examples), ready for ``backward``."""
        ...

    def validate(self) -> dict[str, Any] | None:
        """Figures on the held-out records; None when a stop request cut validation short."""
        ...

    def save(self, folder: Path, run: RunState, metrics: dict[str, Any]) -> None:
        """Write a loadable checkpoint of the model as it stands, with its metadata, to ``folder``."""
        ...


@dataclass(frozen=True)
class LoopSettings:
    out_dir: Path  # checkpoints go to ``out_dir/checkpoints/step-<N>``
    examples: int  # how many training examples there are to batch
    batch_size: int
    epochs: int
    total_steps: int
    checkpoint_every: int | None  # validate and save every this many steps, besides every epoch's end
    optimizer: Any
    scheduler: Any
    parameters: list[Any]  # what gradient clipping covers
    max_grad_norm: float
    order_rng: random.Random  # the batch orders (a task may draw from it too: the order of draws is fixed)
    patience: int | None = None  # early stopping: validations without a better F1 before the run ends


@dataclass(frozen=True)
class Hooks:
    """The job's side: progress per step, a stop request polled per step, a note per checkpoint."""

    on_progress: ProgressCallback | None = None
    should_stop: StopCallback | None = None
    on_checkpoint: CheckpointCallback | None = None

    def stop_requested(self) -> bool:
        return self.should_stop is not None and self.should_stop()


def train_loop(task: TrainingTask, settings: LoopSettings, hooks: Hooks) -> RunState:
    import torch

    run = RunState()
    for epoch in range(1, settings.epochs + 1):
        run.epoch = epoch
        # 1. The whole epoch's order is drawn before its first step (the task's draws come after it).
        for batch in epoch_batches(settings.examples, settings.batch_size, settings.order_rng):
            # 2. One optimizer step; only this is timed, so seconds per step mean training alone.
            tick = time.perf_counter()
            with autocast():  # bfloat16 forward on a GPU (mixed precision); nothing on the CPU
                loss = task.loss(batch, run.step)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(settings.parameters, settings.max_grad_norm)
            settings.optimizer.step()
            settings.scheduler.step()
            settings.optimizer.zero_grad(set_to_none=True)
            run.train_seconds += time.perf_counter() - tick
            run.step += 1
            run.loss = float(loss.detach())

            # 3. Progress every step; the stop request is polled right after, so a stop lands within a step.
            if hooks.on_progress:
                hooks.on_progress(run.step, epoch, run.loss)
            if hooks.stop_requested():
                run.stopped = True
                break
            if run.step >= settings.total_steps:  # the step budget (``max_steps``) ends the run mid-epoch
                break

            # 4. A checkpoint every N steps; a stop during its validation ends the run like a stop above.
            every = settings.checkpoint_every
            if every and run.step % every == 0:
                if not validate_and_save(task, settings, run, hooks):
                    run.stopped = True
                    break
                if _out_of_patience(settings, run):
                    break

        # 5. Every epoch ends validated and saved, unless its last step was just saved by step 4.
        if not run.stopped and run.saved_at != run.step and not validate_and_save(task, settings, run, hooks):
            run.stopped = True

        # 6. Return promptly on a stop: keep what was learned, skip (or abandon) validation.
        if run.stopped:
            save(task, settings, run, {"train_loss": run.loss}, hooks)
            break
        # 7. Early stopping: the best checkpoint is saved already; more epochs have stopped improving on it.
        if run.step >= settings.total_steps or _out_of_patience(settings, run):
            break
    return run


def _out_of_patience(settings: LoopSettings, run: RunState) -> bool:
    if settings.patience is not None and run.since_best >= settings.patience:
        run.early_stopped = True
    return run.early_stopped


def validate_and_save(task: TrainingTask, settings: LoopSettings, run: RunState, hooks: Hooks) -> bool:
    """Validate and save; False (nothing saved) when a stop request cut validation short."""
    figures = task.validate()
    if figures is None:
        return False
    run.metrics = {"train_loss": run.loss, **figures}
    save(task, settings, run, run.metrics, hooks)
    run.saved_at = run.step
    score = figures.get("f1")
    if not isinstance(score, int | float):  # nothing to validate on (no validation split): no best to keep
        return True
    if run.best is None or score > run.best.score:
        run.best = Best(run.checkpoints[-1], run.step, run.epoch, float(score), run.metrics)
        run.since_best = 0
    else:
        run.since_best += 1
    return True


def save(task: TrainingTask, settings: LoopSettings, run: RunState, metrics: dict[str, Any], hooks: Hooks) -> None:
    folder = settings.out_dir / "checkpoints" / f"step-{run.step:06d}"
    task.save(folder, run, metrics)
    run.checkpoints.append(folder)
    if hooks.on_checkpoint:
        hooks.on_checkpoint(folder, run.step, metrics)


# --- What both trainers set up the same way ----------------------------------------------------------------


def begin_run(train_records: list[Any], epochs: int, num_threads: int | None, seed: int) -> random.Random:
    """Check the inputs, seed torch (adapters and fresh heads start from its generator) and return the
    generator of batch orders."""
    import torch

    if not train_records:
        raise ValueError("no training records")
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    return random.Random(seed)


def count_steps(examples: int, batch_size: int, epochs: int, max_steps: int | None) -> int:
    total = math.ceil(examples / batch_size) * epochs
    return total if max_steps is None else min(total, max_steps)


def epoch_batches(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """A fresh seeded order every epoch, cut into batches (the last one may be short)."""
    order = list(range(count))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


def warmup_then_decay(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """The learning-rate factor per step: linear warmup to the full rates, then linear decay to zero."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def write_checkpoint(folder: Path, write: Callable[[Path], None], metadata: dict[str, Any]) -> None:
    """Let ``write`` fill a folder next to ``folder``, add ``outrider.json`` and rename it in, so a crash
    never leaves half a checkpoint."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write(partial)
    metadata = {**metadata, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (partial / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
