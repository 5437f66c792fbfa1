"""The shared training loop's early stopping and choice of the best checkpoint, with a scripted task."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from outrider.training.loop import Hooks, LoopSettings, RunState, train_loop


class ScriptedTask:
    """One weight, a loss that is the weight squared, and validation F1s read off a script, one per validation."""

    def __init__(self, scores: list[float | None]) -> None:
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.scores = list(scores)
        self.validations = 0

    def loss(self, batch: list[int], step: int) -> torch.Tensor:
        return (self.weight**2).sum()

    def validate(self) -> dict:
        score = self.scores[self.validations]
        self.validations += 1
        return {} if score is None else {"f1": score}

    def save(self, folder: Path, run: RunState, metrics: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "outrider.json").write_text(json.dumps({"epoch": run.epoch, "metrics": metrics}))


def run(task: ScriptedTask, tmp_path: Path, epochs: int, patience: int | None) -> RunState:
    optimizer = torch.optim.SGD([task.weight], lr=0.1)
    settings = LoopSettings(
        out_dir=tmp_path,
        examples=4,
        batch_size=2,
        epochs=epochs,
        total_steps=2 * epochs,
        checkpoint_every=None,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        parameters=[task.weight],
        max_grad_norm=1.0,
        order_rng=random.Random(0),
        patience=patience,
    )
    return train_loop(task, settings, Hooks())


def test_patience_ends_the_run_and_the_best_checkpoint_is_kept(tmp_path):
    task = ScriptedTask([0.30, 0.50, 0.40, 0.50, 0.90, 0.95])
    state = run(task, tmp_path, epochs=6, patience=2)

    # epoch 2 is the best; epochs 3 and 4 do not beat it (an equal F1 is no improvement): the run ends there
    assert state.early_stopped and task.validations == 4 and state.epoch == 4 and state.step == 8
    assert state.best is not None and (state.best.epoch, state.best.step, state.best.score) == (2, 4, 0.5)
    assert state.best.checkpoint == tmp_path / "checkpoints" / "step-000004"
    assert json.loads((state.best.checkpoint / "outrider.json").read_text())["metrics"]["f1"] == 0.5
    assert len(state.checkpoints) == 4  # every epoch's checkpoint stays, listed


def test_without_patience_every_epoch_runs_and_the_best_is_still_known(tmp_path):
    task = ScriptedTask([0.30, 0.50, 0.40, 0.45])
    state = run(task, tmp_path, epochs=4, patience=None)
    assert not state.early_stopped and state.epoch == 4 and task.validations == 4
    assert state.best is not None and state.best.epoch == 2


def test_no_validation_figures_never_stop_a_run(tmp_path):
    """With no validation split there is nothing to compare: the run goes on and the last checkpoint is final."""
    task = ScriptedTask([None, None, None])
    state = run(task, tmp_path, epochs=3, patience=1)
    assert not state.early_stopped and state.epoch == 3 and state.best is None
