"""Fine-tune a GLiNER2 extractor (LoRA or full) on ``{"input", "output"}`` records: a loop of our own.

``run_encoder_training`` is what the job runner calls. It reads top to bottom:

1. load the model to train: a GLiNER2 folder or hub id, or an Outrider checkpoint (a full folder, or a LoRA
   adapter that either keeps training or is merged for a full run); LoRA wraps the encoder in adapters
   and keeps every task head trainable (``encoder_lora``);
2. plan classification: each task goes to GLiNER2's own head, trained with a label-order curriculum, or
   to Outrider's label-embedding head when its labels are too many (``encoder_classification``);
3. the shared seeded loop (``loop.train_loop``) over batches with per-group learning rates (encoder or
   adapters / task heads / the classification MLP / the label head), linear warmup and decay, gradient
   clipping, and the boundary head's gold-injection schedule as ``gliner2``'s own trainer sets it
   (``EncoderTask`` is the encoder's side of that loop: loss, validation, saving);
4. after every epoch (and every ``checkpoint_every_steps``) it calibrates decoding on the validation
   records (abstention cut-off, a global and a per-entity-type decision threshold, ``encoder_calibration``),
   predicts and scores them (``metrics.encoder_metrics``) and saves a loadable checkpoint folder with
   ``outrider.json``; a stop request saves what it has at once and returns without validating;
5. the final model is the validated checkpoint with the best validation F1 (not the last one: on sparse
   data the F1 after each epoch jumps up and down), and ``early_stopping_patience`` ends the run once that
   many validations in a row have not beaten it.

The loop is ours rather than ``gliner2``'s ``ExtractorTrainer`` because the job needs progress per step,
a stop within seconds, checkpoints with metrics, and learning rates per head, none of which that trainer
exposes. A full checkpoint loads with ``gliner2.AutoExtractor.from_pretrained(folder)`` alone; a LoRA one
with ``gliner2`` + ``peft`` (see ``encoder_lora``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from outrider.backends.adapters import METADATA_FILE, read_metadata
from outrider.backends.encoder_adapters import is_encoder_adapter, load_adapter
from outrider.backends.label_head import LabelHead
from outrider.training import encoder_classification as cls
from outrider.training.encoder_calibration import Calibration, set_abstention, shifted
from outrider.training.encoder_eval import (
    StopDuringValidation,
    calibrate_decoding,
    gliner_schema,
    validation_metrics,
)
from outrider.training.encoder_long import fit_to_encoder
from outrider.training.encoder_lora import add_lora
from outrider.training.encoder_setup import EncoderTrainingConfig, Plan, Trainable
from outrider.training.loop import (
    CheckpointCallback,
    Hooks,
    LoopSettings,
    ProgressCallback,
    RunState,
    StopCallback,
    begin_run,
    count_steps,
    train_loop,
    warmup_then_decay,
    write_checkpoint,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rates:
    encoder: float
    heads: float
    classifier: float
    label_head: float


def resolved_rates(config: EncoderTrainingConfig, classifies: bool) -> Rates:
    """Measured on the MiniLM base: full extraction needs an encoder rate of 3e-4 (entity F1 0.95 on the
    demo data); classification through GLiNER2's head stalls there and learns at 1e-4 (see
    ``encoder_classification``). LoRA's fresh low-rank matrices take 1e-3."""
    encoder = 1e-3 if config.uses_lora else 1e-4 if classifies else 3e-4
    return Rates(
        encoder=config.learning_rate or encoder,
        heads=config.head_learning_rate or 1e-2,
        classifier=config.classifier_learning_rate or 1e-3,
        label_head=config.label_head_learning_rate or 1e-2,
    )


@dataclass(frozen=True)
class EncoderTrainingResult:
    model_dir: Path | None  # the last checkpoint saved (the final model unless stopped before any step)
    steps: int
    epochs_completed: int
    stopped: bool
    final_loss: float | None
    metrics: dict[str, Any]
    train_seconds: float
    seconds_per_step: float | None
    checkpoints: list[Path] = field(default_factory=list)
    best_step: int | None = None  # the step and epoch of ``model_dir`` when it is the best validated checkpoint
    best_epoch: int | None = None
    early_stopped: bool = False


# --- 1. The model to train ----------------------------------------------------------------------------


def load_trainable(base_dir: Path | str, config: EncoderTrainingConfig) -> Trainable:
    from gliner2 import AutoExtractor

    base_dir = str(base_dir)
    base_id = config.base_model_id or base_dir
    label_head = LabelHead.load(base_dir) if os.path.isdir(base_dir) else None
    if is_encoder_adapter(base_dir):
        metadata = read_metadata(base_dir)
        wrapped, core = load_adapter(base_dir, trainable=config.uses_lora)
        if config.uses_lora:  # keep training the same adapter, on the same base
            return Trainable(core, wrapped, metadata.get("base_model", base_id), metadata["base_path"], label_head)
        core = wrapped.merge_and_unload()  # a full run from an adapter starts from the merged weights
        for parameter in core.parameters():  # loaded frozen (trainable=False): a full run trains them all
            parameter.requires_grad_(True)
        return Trainable(core, None, base_id, base_dir, label_head)
    core = AutoExtractor.from_pretrained(base_dir)
    if config.uses_lora:
        wrapped = add_lora(core, config.lora_r, config.lora_alpha, config.lora_dropout)
        return Trainable(wrapped.get_base_model(), wrapped, base_id, base_dir, label_head)
    return Trainable(core, None, base_id, base_dir, label_head)


def parameter_groups(trainable: Trainable, rates: Rates, weight_decay: float) -> list[dict[str, Any]]:
    """Encoder (or adapters) / extraction heads / classification MLP / label head, each at its own rate."""
    groups: dict[str, list[Any]] = {"encoder": [], "heads": [], "classifier": []}
    for name, parameter in trainable.forward_model.named_parameters():
        if not parameter.requires_grad:
            continue
        if "lora_" in name or ".encoder." in f".{name}":
            groups["encoder"].append(parameter)
        elif ".classifier." in f".{name}":
            groups["classifier"].append(parameter)
        else:
            groups["heads"].append(parameter)
    out = [
        {"params": groups["encoder"], "lr": rates.encoder, "weight_decay": weight_decay},
        {"params": groups["heads"], "lr": rates.heads, "weight_decay": weight_decay},
        {"params": groups["classifier"], "lr": rates.classifier, "weight_decay": weight_decay},
    ]
    if trainable.label_head is not None:
        out.append({"params": trainable.label_head.parameters(), "lr": rates.label_head, "weight_decay": 0.0})
    return [group for group in out if group["params"]]


# --- 2. Records ------------------------------------------------------------------------------------------


def plan_records(
    records: list[dict[str, Any]], all_records: list[dict[str, Any]], method: cls.ClassificationMethod, tokenizer: Any
) -> Plan:
    tasks = cls.collect_tasks(all_records)
    methods = cls.plan_methods(tasks, method, tokenizer)
    examples = [cls.route_record(r, tasks, methods) for r in records]
    valid = _valid_gliner_indices([g for g, _ in examples])
    examples = [(g if i in valid else None, h) for i, (g, h) in enumerate(examples)]
    examples = [(g, h) for g, h in examples if g is not None or h is not None]
    if not examples:
        raise ValueError("no usable training records (every record failed gliner2's validation)")
    return Plan(tasks, methods, examples)


def _valid_gliner_indices(parts: list[dict[str, Any] | None]) -> set[int]:
    """Records whose spans are all in their text (gliner2's own check); the others are dropped, logged."""
    from gliner2.training.data import DataLoader_Factory

    indexed = [(i, part) for i, part in enumerate(parts) if part is not None]
    if not indexed:
        return set()
    valid, invalid = DataLoader_Factory._validate_records([part for _, part in indexed])
    for position, _record, errors in invalid[:5]:
        log.warning("dropping training record %d: %s", indexed[position][0], errors[0] if errors else "invalid")
    if invalid:
        log.warning("dropped %d of %d records that gliner2 cannot train on", len(invalid), len(indexed))
    return {indexed[position][0] for position in valid}


# --- 3. Saving ---------------------------------------------------------------------------------------------


def save_checkpoint(trainable: Trainable, folder: Path, metadata: dict[str, Any]) -> None:
    """The GLiNER2 model (full) or the adapter with its heads (LoRA), the label head if any, ``outrider.json``;
    written aside and renamed in (``loop.write_checkpoint``)."""

    def write(partial: Path) -> None:
        if trainable.wrapped is not None:
            trainable.wrapped.save_pretrained(str(partial))
        else:
            trainable.core.save_pretrained(str(partial))
        if trainable.label_head is not None:
            trainable.label_head.save(partial)

    write_checkpoint(folder, write, metadata)


# --- 4. The training loop's encoder side -------------------------------------------------------------------


def _set_schedules(core: Any, step: int, total: int) -> None:
    """The boundary head's training-time schedules, as ``gliner2``'s ExtractorTrainer drives them."""
    from gliner2.training.trainer import ExtractorTrainer

    head = getattr(core, "boundary_head", None)
    if head is None:
        return
    head.set_gold_injection_prob(ExtractorTrainer._gold_injection_probability(step / max(total, 1), 1.0, 0.25, 0.15))
    settings = getattr(head, "settings", None)
    warmup = getattr(settings, "consistency_warmup_steps", 0)
    head.set_consistency_scale(1.0 if warmup <= 0 else min(step / warmup, 1.0))
    anneal_steps = getattr(settings, "soft_iou_anneal_steps", 0)
    head.set_soft_iou_scale(ExtractorTrainer._soft_iou_anneal_scale(step, anneal_steps))


def _collator(core: Any) -> Any:
    from gliner2.training.trainer import ExtractorCollator

    return ExtractorCollator(
        core.processor,
        is_training=True,
        max_len=getattr(core.config, "max_len", None),
        architecture=getattr(core, "architecture", "span"),
        max_gold_per_query=(getattr(core.config, "boundary_head", None) or {}).get("max_gold_per_query", 32),
        on_capacity_exceeded="truncate_with_warning",  # a crowded sentence must not fail the whole job
    )


class EncoderTask:
    """What ``loop.train_loop`` asks of an encoder: GLiNER2's loss plus the label head's, validation after a
    fresh calibration of decoding, and checkpoint folders whose weights carry that calibration.

    Batch orders come from the loop (``loop.epoch_batches``): a fresh seeded order every epoch, not grouped by
    length as ``gliner2``'s trainer does. On templated or short-text data length tracks the label, and
    label-homogeneous batches kept the classification curriculum on its plateau (accuracy 0.15 to 0.45 on
    4 labels over 120 steps)."""

    def __init__(
        self,
        trainable: Trainable,
        plan: Plan,
        config: EncoderTrainingConfig,
        rates: Rates,
        base_dir: Path | str,
        all_records: list[dict[str, Any]],
        val_records: list[dict[str, Any]],
        total_steps: int,
        order_rng: random.Random,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.trainable, self.plan, self.config, self.rates = trainable, plan, config, rates
        self.base_dir, self.val_records, self.should_stop = base_dir, val_records, should_stop
        self.total_steps, self.order_rng = total_steps, order_rng
        self.schema = gliner_schema(all_records, plan)
        self.collate = _collator(trainable.core)
        # The last calibration: a stop's checkpoint keeps it, and a calibration a stop abandons is undone to it.
        self.calibration: Calibration | None = None
        core = trainable.core
        self.library_abstention = getattr(getattr(core, "boundary_settings", None), "abstention_threshold", 0.5)

    def loss(self, batch: list[int], step: int) -> Any:
        if self.plan.curriculum:  # the label-order phase draws from the run's generator, after the epoch's order
            phase = cls.curriculum_phase(step, self.total_steps, self.order_rng)
            self.trainable.core.processor.sampling_config = _entity_sampling(cls.sampling_config(phase), self.config)
        return _step_loss(self.trainable, self.plan, batch, self.collate, step, self.total_steps)

    def validate(self) -> dict[str, Any] | None:
        trainable, records, schema, config = self.trainable, self.val_records, self.schema, self.config
        try:
            calibration = calibrate_decoding(trainable, records, schema, config, self.should_stop)
            figures = validation_metrics(trainable, records, schema, config, self.should_stop, calibration)
        except StopDuringValidation:
            last = self.calibration
            set_abstention(trainable.core, last.abstention_threshold if last else self.library_abstention)
            return None
        self.calibration = calibration
        return figures

    def save(self, folder: Path, run: RunState, metrics: dict[str, Any]) -> None:
        with shifted(self.trainable.core, self.calibration):  # the saved weights carry it (and so the metadata)
            save_checkpoint(self.trainable, folder, self._metadata(run, metrics))

    def _metadata(self, run: RunState, metrics: dict[str, Any]) -> dict[str, Any]:
        trainable, config, calibration = self.trainable, self.config, self.calibration
        return {
            "kind": "encoder",
            "training_type": "lora" if config.uses_lora else "full",
            "base_model": trainable.base_id,
            "base_path": str(Path(trainable.base_path).resolve())
            if os.path.isdir(trainable.base_path)
            else trainable.base_path,
            "started_from": str(self.base_dir),
            "hyperparameters": {**asdict(config), "rates": asdict(self.rates)},
            "classification": self.plan.methods,
            "abstention_threshold": getattr(
                getattr(trainable.core, "boundary_settings", None), "abstention_threshold", None
            ),
            "calibration": asdict(calibration) if calibration else None,
            "step": run.step,
            "epoch": run.epoch,
            "metrics": metrics,
            "train_examples": len(self.plan.examples),
            "val_examples": len(self.val_records),
            "train_seconds": round(run.train_seconds, 2),
        }


# --- 5. The run --------------------------------------------------------------------------------------------


def fit_label_head(trainable: Trainable, plan: Plan) -> None:
    """A fresh label head for a new label set (or when there is none yet), its label vectors seeded from the
    label names; a loaded head for the same labels keeps training."""
    if not plan.head_tasks:
        return
    core = trainable.core
    known = trainable.label_head.tasks if trainable.label_head is not None else {}
    if {n: s.labels for n, s in known.items()} != {n: s.labels for n, s in plan.head_tasks.items()}:
        trainable.label_head = LabelHead(plan.head_tasks, core.encoder.config.hidden_size)
        trainable.label_head.initialise(core.encoder, core.processor.tokenizer)


def run_encoder_training(
    base_dir: Path | str,
    train_records: list[dict[str, Any]],
    val_records: list[dict[str, Any]],
    out_dir: Path | str,
    config: EncoderTrainingConfig,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> EncoderTrainingResult:
    """Train on GLiNER2 records; checkpoints go to ``out_dir/checkpoints/step-<N>``."""
    import torch

    out_dir = Path(out_dir)
    order_rng = begin_run(train_records, config.epochs, config.num_threads, config.seed)  # seeds torch too
    random.seed(config.seed)  # gliner2's processor samples negatives and orders with the global generator

    trainable = load_trainable(base_dir, config)
    # records longer than the encoder's input become windows (logged), before anything counts or plans them
    train_records, val_records = fit_to_encoder(trainable, train_records, val_records, config.classification_method)
    all_records = train_records + val_records
    plan = plan_records(train_records, all_records, config.classification_method, trainable.core.processor.tokenizer)
    fit_label_head(trainable, plan)
    rates = resolved_rates(config, classifies=bool(plan.tasks))
    total_steps = count_steps(len(plan.examples), config.batch_size, config.epochs, config.max_steps)
    task = EncoderTask(
        trainable, plan, config, rates, base_dir, all_records, val_records, total_steps, order_rng, should_stop
    )

    optimizer = torch.optim.AdamW(parameter_groups(trainable, rates, config.weight_decay))
    # GLiNER2's classification curriculum wants constant rates: with a warmup its fixed-order phase ended at
    # accuracy 0.55 instead of 0.85, and with a decay it never recovered from the switch to shuffled orders.
    schedule = _constant_rate if plan.curriculum else warmup_then_decay(total_steps, config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    log.info(
        "encoder training: %d examples, %d steps (%s, rates %s, classification %s)",
        len(plan.examples),
        total_steps,
        "lora" if config.uses_lora else "full",
        rates,
        plan.methods or "none",
    )

    trainable.forward_model.train()
    trainable.core.processor.change_mode(is_training=True)
    processor = trainable.core.processor
    processor.sampling_config = _entity_sampling(processor.sampling_config, config)
    settings = LoopSettings(
        out_dir=out_dir,
        examples=len(plan.examples),
        batch_size=config.batch_size,
        epochs=config.epochs,
        total_steps=total_steps,
        checkpoint_every=config.checkpoint_every_steps,
        optimizer=optimizer,
        scheduler=scheduler,
        parameters=[p for group in optimizer.param_groups for p in group["params"]],
        max_grad_norm=config.max_grad_norm,
        order_rng=order_rng,
        patience=config.early_stopping_patience,
    )
    run = train_loop(task, settings, Hooks(on_progress, should_stop, on_checkpoint))
    return _result(run)


def _result(run: RunState) -> EncoderTrainingResult:
    """The run's outcome: its final model is the validated checkpoint with the best F1 (the last checkpoint
    when nothing was validated), with that checkpoint's figures."""
    best = run.best
    if best is not None:
        log.info(
            "final model: the checkpoint of step %d (epoch %d), validation F1 %.4f", best.step, best.epoch, best.score
        )
    return EncoderTrainingResult(
        model_dir=best.checkpoint if best else run.checkpoints[-1] if run.checkpoints else None,
        steps=run.step,
        epochs_completed=run.epoch if not run.stopped else run.epoch - 1,
        stopped=run.stopped,
        final_loss=run.loss,
        metrics=best.metrics if best else run.metrics,
        train_seconds=round(run.train_seconds, 2),
        seconds_per_step=run.train_seconds / run.step if run.step else None,
        checkpoints=run.checkpoints,
        best_step=best.step if best else None,
        best_epoch=best.epoch if best else None,
        early_stopped=run.early_stopped,
    )


def _entity_sampling(sampling: Any, config: EncoderTrainingConfig) -> Any:
    """gliner2's training-time sampling with the run's entity-label renaming: the processor replaces a
    record's type names by "entity 1", "entity 2", ... with this probability, which teaches a general model
    to read descriptions; a fine-tune on a fixed label set is served by its names."""
    from dataclasses import replace

    if config.entity_label_renaming is None:
        return sampling
    return replace(sampling, synthetic_entity_label_prob=config.entity_label_renaming)


def _constant_rate(step: int) -> float:
    return 1.0


def _step_loss(trainable: Trainable, plan: Plan, indices: list[int], collate: Any, step: int, total: int) -> Any:
    """GLiNER2's own loss on the batch's GLiNER2 parts plus the label head's on its parts."""
    gliner_parts = [plan.examples[i][0] for i in indices if plan.examples[i][0] is not None]
    head_parts = [plan.examples[i][1] for i in indices if plan.examples[i][1] is not None]
    core = trainable.core
    loss = None
    if gliner_parts:
        _set_schedules(core, step, total)
        outputs = trainable.forward_model(collate([(r["input"], r["output"]) for r in gliner_parts]))
        loss = outputs.get("total_loss")
        if loss is None or not loss.requires_grad:  # nothing supervised in this batch
            loss = core._zero_loss(next(core.parameters()).device)
    if head_parts:
        head_loss = trainable.label_head.loss(core.encoder, core.processor.tokenizer, head_parts)
        loss = head_loss if loss is None else loss + head_loss
    return loss


# --- The older entry point -----------------------------------------------------------------------------


def train_encoder(
    base_dir: Path | str,
    records: list[dict[str, Any]],
    out_dir: Path,
    config: EncoderTrainingConfig,
    on_log: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Train on ``records`` without a validation split and save the final model to ``out_dir`` itself."""
    work = out_dir.with_name(out_dir.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    started = time.perf_counter()
    result = run_encoder_training(base_dir, records, [], work, config)
    seconds = time.perf_counter() - started
    assert result.model_dir is not None  # no stop callback: the loop always saves its last step
    metadata = {
        **read_metadata(result.model_dir),
        "examples": len(records),
        "train_seconds": round(seconds, 2),
        "total_steps": result.steps,
    }
    (result.model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(result.model_dir, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    log.info("trained %s in %.1f s (%d examples)", out_dir, seconds, len(records))
    if on_log:
        on_log(metadata)
    return metadata
