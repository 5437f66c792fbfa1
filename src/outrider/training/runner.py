"""The trainer process: ``python -m outrider.training.runner JOB_DIR``.

The job worker (``jobs/training.py``) prepares ``JOB_DIR`` (``spec.json``, ``train.jsonl``, ``val.jsonl``)
and starts this module in a process of its own, so that a crash, a kill or a memory blow-up of a trainer
never takes the server down. This process:

- writes JSON-lines events to its standard output, one object per line with an ``event`` key:
  ``started`` (``total_steps``, example counts), ``progress`` (``step``, ``total_steps``, ``epoch``,
  ``loss``), ``checkpoint`` (``path`` relative to JOB_DIR, ``step``, ``epoch``, ``metrics``), ``done``
  (``model_path``, ``metrics``, ``stopped``, ``steps``, ``train_seconds``) or ``error`` (``message``);
  anything a library prints goes to standard error instead (file descriptor 1 is re-pointed there before
  any library loads), which the parent appends to the job's log;
- stops cleanly, saving a checkpoint, when ``JOB_DIR/STOP`` appears or on SIGTERM (the parent SIGKILLs it
  after a grace period), and dies with its parent (``PR_SET_PDEATHSIG``);
- exits 0 after ``done``, 1 after ``error``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from outrider.backends.adapters import read_metadata
from outrider.backends.devices import configure_device

SPEC_FILE = "spec.json"
TRAIN_FILE = "train.jsonl"
VAL_FILE = "val.jsonl"
STOP_FILE = "STOP"
OUTPUT_DIR = "output"
LOG_FILE = "train.log"
DEVICE_ENV = "OUTRIDER_TRAINER_DEVICE"  # the resolved device (cpu, cuda:N) the job gives its trainer

log = logging.getLogger("outrider.training.runner")


class Events:
    """JSON lines on a private copy of the original standard output."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self.stream.flush()


class StopSignal:
    """True once the parent asked for a stop: a stop file (cheap to poll every step) or SIGTERM."""

    def __init__(self, job_dir: Path) -> None:
        self.path = job_dir / STOP_FILE
        self.raised = False
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        self.raised = True

    def __call__(self) -> bool:
        if not self.raised and self.path.exists():
            self.raised = True
        return self.raised


def take_stdout() -> Events:
    """Keep the real stdout for events only; whatever anything else prints to fd 1 lands on stderr."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    return Events(os.fdopen(events_fd, "w", buffering=1))


def die_with_parent() -> None:
    """Linux only: SIGTERM this process when its parent dies (an orphaned trainer would run on unseen)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    expected = os.environ.get("OUTRIDER_TRAINER_PARENT")
    if expected and expected.isdigit() and os.getppid() != int(expected):
        sys.exit(1)  # the parent died before prctl took effect


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_config(cls: type, values: dict[str, Any]) -> Any:
    """A trainer's config dataclass from the values it declares (None means: keep the trainer's default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})


def ensure_base(base: dict[str, Any]) -> Path | str:
    """The base to start from: a built-in base is built on first use (serialised across processes)."""
    from outrider.backends.decoder_hf import SMOLLM2_ID, ensure_smollm2_base
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, ensure_minilm_base

    path = base["path"]
    if base.get("build") == MINILM_BASE_ID:
        return ensure_minilm_base(Path(path))
    if base.get("build") == SMOLLM2_ID:
        return ensure_smollm2_base(Path(path))
    return Path(path) if os.path.isdir(path) else path  # a hub id that the library resolves from its cache


def estimate_total_steps(examples: int, batch_size: int | None, epochs: int | None) -> int | None:
    if not batch_size or not epochs:
        return None
    return math.ceil(examples / batch_size) * epochs


def train(spec: dict[str, Any], job_dir: Path, events: Events, should_stop: StopSignal) -> dict[str, Any]:
    hyper = spec["hyperparameters"]
    train_records = read_jsonl(job_dir / TRAIN_FILE)
    val_records = read_jsonl(job_dir / VAL_FILE)
    out_dir = job_dir / OUTPUT_DIR
    base_dir = ensure_base(spec["base"])
    values = {
        "training_type": spec["training_type"],
        "lora": spec["training_type"] == "lora",
        "epochs": hyper.get("nr_epochs"),
        "learning_rate": hyper.get("learning_rate"),
        "batch_size": hyper.get("batch_size"),
        "early_stopping_patience": hyper.get("early_stopping_patience"),
        "head_learning_rate": hyper.get("head_learning_rate"),
        "entity_label_renaming": hyper.get("entity_label_renaming"),
        "seed": hyper.get("seed"),
        "base_model_id": spec["base"].get("id"),
        "num_threads": spec.get("threads"),
        "task_type": spec.get("task_type"),
        "labels": spec.get("labels"),
    }
    if spec["family"] == "decoder":
        from outrider.training.decoder import DecoderTrainingConfig as Config
        from outrider.training.decoder import run_decoder_training as run
    else:
        from outrider.training.encoder import EncoderTrainingConfig as Config
        from outrider.training.encoder import run_encoder_training as run
    config = build_config(Config, values)
    total = estimate_total_steps(
        len(train_records), getattr(config, "batch_size", None), getattr(config, "epochs", None)
    )
    events.emit("started", total_steps=total, train_examples=len(train_records), val_examples=len(val_records))
    state = {"epoch": 0, "total": total}

    def on_progress(step: int, epoch: int, loss: float) -> None:
        state["epoch"] = epoch
        if state["total"] is not None and step > state["total"]:
            state["total"] = step  # the estimate was short (a trainer that drops or adds a batch)
        events.emit("progress", step=step, total_steps=state["total"], epoch=epoch, loss=loss)

    def on_checkpoint(folder: Path, step: int, metrics: dict[str, Any]) -> None:
        epoch = read_metadata(folder).get("epoch", state["epoch"])
        events.emit("checkpoint", path=_relative(Path(folder), job_dir), step=step, epoch=epoch, metrics=metrics)

    started = time.perf_counter()
    result = run(
        base_dir,
        train_records,
        val_records,
        out_dir,
        config,
        on_progress=on_progress,
        should_stop=should_stop,
        on_checkpoint=on_checkpoint,
    )
    model_dir = _final_dir(result, out_dir)
    return {
        "model_path": _relative(model_dir, job_dir) if model_dir is not None else None,
        "metrics": _get(result, "metrics", {}) or {},
        "stopped": bool(_get(result, "stopped", False)) or should_stop(),
        "steps": _get(result, "steps", None),
        # the final model's step and epoch when it is the best validated checkpoint rather than the last
        "best_step": _get(result, "best_step", None),
        "best_epoch": _get(result, "best_epoch", None),
        "early_stopped": bool(_get(result, "early_stopped", False)),
        "train_seconds": _get(result, "train_seconds", None) or round(time.perf_counter() - started, 2),
    }


def _get(result: Any, name: str, default: Any) -> Any:
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def _final_dir(result: Any, out_dir: Path) -> Path | None:
    """The folder the trainer says it saved last, else a loadable ``out_dir``."""
    found = _get(result, "model_dir", None)
    if found is not None and Path(found).is_dir():
        return Path(found)
    for candidate in (out_dir / "final", out_dir):
        if (candidate / "config.json").exists() or (candidate / "adapter_config.json").exists():
            return candidate
    return None


def _relative(path: Path, job_dir: Path) -> str:
    return os.path.relpath(Path(path).resolve(), job_dir.resolve())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m outrider.training.runner JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    events = take_stdout()
    die_with_parent()
    # The device the job's worker resolved from OUTRIDER_DEVICE (the trainer builds no settings of its own).
    configure_device(os.environ.get(DEVICE_ENV, "cpu"))
    should_stop = StopSignal(job_dir)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        spec = json.loads((job_dir / SPEC_FILE).read_text())
        threads = spec.get("threads")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        outcome = train(spec, job_dir, events, should_stop)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        events.emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    events.emit("done", **outcome)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is saved and reported: skip the interpreter's teardown (seconds with torch loaded).
    os._exit(code)
