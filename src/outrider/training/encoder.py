"""Fine-tune a GLiNER2 extractor (LoRA or full) on ``{"input", "output"}`` records: a loop of our own.

``run_encoder_training`` is what the job runner calls. It reads top to bottom:

1. load the model to train: a GLiNER2 folder or hub id, or an Outrider checkpoint (a full folder, or a LoRA
   adapter that either keeps training or is merged for a full run); LoRA wraps the encoder in adapters
   and keeps every task head trainable (``encoder_lora``);
2. plan classification: each task goes to GLiNER2's own head, trained with a label-order curriculum, or
   to Outrider's label-embedding head when its labels are too many (``encoder_classification``);
3. a seeded loop over batches with per-group learning rates (encoder or adapters / task heads / the
   classification MLP / the label head), linear warmup and decay, gradient clipping, and the boundary
   head's gold-injection schedule as ``gliner2``'s own trainer sets it;
4. after every epoch (and every ``checkpoint_every_steps``) it calibrates decoding on the validation
   records (abstention cut-off and decision threshold, ``encoder_calibration``), predicts and scores them
   (``metrics.encoder_metrics``) and saves a loadable checkpoint folder with ``outrider.json``; a stop
   request saves what it has at once and returns without validating.

The loop is ours rather than ``gliner2``'s ``ExtractorTrainer`` because the job needs progress per step,
a stop within seconds, checkpoints with metrics, and learning rates per head, none of which that trainer
exposes. A full checkpoint loads with ``gliner2.AutoExtractor.from_pretrained(folder)`` alone; a LoRA one
with ``gliner2`` + ``peft`` (see ``encoder_lora``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from outrider.training import encoder_classification as cls
from outrider.training.encoder_calibration import Calibration, set_abstention, shifted
from outrider.training.encoder_eval import (
    StopDuringValidation,
    calibrate_decoding,
    gliner_schema,
    validation_metrics,
)
from outrider.training.encoder_lora import METADATA_FILE, add_lora, is_encoder_adapter, load_adapter, read_metadata

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, float], None]  # step, epoch, loss
CheckpointCallback = Callable[[Path, int, dict[str, Any]], None]  # folder, step, metrics


@dataclass(frozen=True)
class EncoderTrainingConfig:
    training_type: Literal["lora", "full"] = "full"
    lora: bool = False  # the older switch: True means training_type "lora"
    epochs: int = 5
    batch_size: int = 8
    # Rates by parameter group; None picks the default for the run (``resolved_rates``). A fresh MiniLM
    # boundary model needs rates far above the library's defaults (tuned for pretrained GLiNER2 models):
    # its heads start from random initialisation.
    learning_rate: float | None = None  # the encoder (full) or the adapters (LoRA)
    head_learning_rate: float | None = None  # the extraction heads (boundary, relation, record)
    classifier_learning_rate: float | None = None  # GLiNER2's classification MLP
    label_head_learning_rate: float | None = None  # Outrider's label-embedding head
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    classification_method: cls.ClassificationMethod = "auto"
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps (tests, smoke runs)
    checkpoint_every_steps: int | None = None  # besides the end of every epoch
    eval_threshold: float = 0.5
    eval_batch_size: int = 16
    base_model_id: str | None = None  # the Outrider id of ``base_dir``, recorded in the metadata
    num_threads: int | None = None  # torch CPU threads; None keeps the process default
    task_type: str | None = None  # recorded in the metadata
    labels: list[str] | None = None  # recorded in the metadata

    @property
    def uses_lora(self) -> bool:
        return self.lora or self.training_type == "lora"


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


# --- 1. The model to train ----------------------------------------------------------------------------


@dataclass
class Trainable:
    core: Any  # the GLiNER2 model (inside ``wrapped`` for LoRA)
    wrapped: Any | None  # the peft model for LoRA runs
    base_id: str  # what the weights start from (for an adapter: the model its adapter applies to)
    base_path: str
    label_head: cls.LabelHead | None

    @property
    def forward_model(self) -> Any:
        return self.wrapped if self.wrapped is not None else self.core


def load_trainable(base_dir: Path | str, config: EncoderTrainingConfig) -> Trainable:
    from gliner2 import AutoExtractor

    base_dir = str(base_dir)
    base_id = config.base_model_id or base_dir
    label_head = cls.LabelHead.load(base_dir) if os.path.isdir(base_dir) else None
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


@dataclass
class Plan:
    tasks: dict[str, cls.TaskLabels]
    methods: dict[str, str]
    examples: list[tuple[dict[str, Any] | None, cls.HeadExample | None]]

    @property
    def curriculum(self) -> bool:
        return "gliner" in self.methods.values()

    @property
    def head_tasks(self) -> dict[str, cls.TaskLabels]:
        return {name: spec for name, spec in self.tasks.items() if self.methods[name] == "label_head"}


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


# --- 4. Saving ---------------------------------------------------------------------------------------------


def save_checkpoint(trainable: Trainable, folder: Path, metadata: dict[str, Any]) -> None:
    """Write the folder next to its final place and rename it in, so a crash never leaves half a checkpoint:
    the GLiNER2 model (full) or the adapter with its heads (LoRA), the label head if any, ``outrider.json``."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if trainable.wrapped is not None:
        trainable.wrapped.save_pretrained(str(partial))
    else:
        trainable.core.save_pretrained(str(partial))
    if trainable.label_head is not None:
        trainable.label_head.save(partial)
    metadata = {**metadata, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (partial / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


# --- 5. The loop -------------------------------------------------------------------------------------------


def _batches(plan: Plan, batch_size: int, rng: random.Random) -> list[list[int]]:
    """A fresh seeded order every epoch. Not grouped by length as ``gliner2``'s trainer does: on templated
    or short-text data length tracks the label, and label-homogeneous batches kept the classification
    curriculum on its plateau (accuracy 0.15 to 0.45 on 4 labels over 120 steps)."""
    order = list(range(len(plan.examples)))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


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


def run_encoder_training(
    base_dir: Path | str,
    train_records: list[dict[str, Any]],
    val_records: list[dict[str, Any]],
    out_dir: Path | str,
    config: EncoderTrainingConfig,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> EncoderTrainingResult:
    """Train on GLiNER2 records; checkpoints go to ``out_dir/checkpoints/step-<N>``."""
    import torch

    out_dir = Path(out_dir)
    if not train_records:
        raise ValueError("no training records")
    if config.epochs < 1:
        raise ValueError("epochs must be at least 1")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)  # LoRA and the label head start from torch's generator
    random.seed(config.seed)  # gliner2's processor samples negatives and orders with the global generator
    order_rng = random.Random(config.seed)

    trainable = load_trainable(base_dir, config)
    core = trainable.core
    tokenizer = core.processor.tokenizer
    plan = plan_records(train_records, train_records + val_records, config.classification_method, tokenizer)
    if plan.head_tasks:
        known = trainable.label_head.tasks if trainable.label_head is not None else {}
        if {n: s.labels for n, s in known.items()} != {n: s.labels for n, s in plan.head_tasks.items()}:
            # a new label set (or none yet): a fresh head, its label vectors seeded from the label names
            trainable.label_head = cls.LabelHead(plan.head_tasks, core.encoder.config.hidden_size)
            trainable.label_head.initialise(core.encoder, tokenizer)
    rates = resolved_rates(config, classifies=bool(plan.tasks))
    schema = gliner_schema(train_records + val_records, plan)
    collate = _collator(core)

    steps_per_epoch = math.ceil(len(plan.examples) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizer = torch.optim.AdamW(parameter_groups(trainable, rates, config.weight_decay))
    # GLiNER2's classification curriculum wants constant rates: with a warmup its fixed-order phase ended at
    # accuracy 0.55 instead of 0.85, and with a decay it never recovered from the switch to shuffled orders.
    constant = plan.curriculum
    warmup = 0 if constant else int(total_steps * config.warmup_ratio)

    def lr_factor(step: int) -> float:  # linear warmup to the full rates, then linear decay to zero
        if constant:
            return 1.0
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    trainable_parameters = [p for group in optimizer.param_groups for p in group["params"]]
    log.info(
        "encoder training: %d examples, %d steps (%s, rates %s, classification %s)",
        len(plan.examples),
        total_steps,
        "lora" if config.uses_lora else "full",
        rates,
        plan.methods or "none",
    )

    checkpoints: list[Path] = []
    step, loss_value, stopped, metrics, saved_at, epoch = 0, None, False, {}, -1, 0
    train_seconds = 0.0  # optimizer steps only: validation and saving are timed apart

    def save(epoch: int, metrics: dict[str, Any], calibration: Calibration | None) -> None:
        folder = out_dir / "checkpoints" / f"step-{step:06d}"
        with shifted(core, calibration):  # the saved weights carry it
            save_checkpoint(
                trainable,
                folder,
                {
                    "kind": "encoder",
                    "training_type": "lora" if config.uses_lora else "full",
                    "base_model": trainable.base_id,
                    "base_path": str(Path(trainable.base_path).resolve())
                    if os.path.isdir(trainable.base_path)
                    else trainable.base_path,
                    "started_from": str(base_dir),
                    "hyperparameters": {**asdict(config), "rates": asdict(rates)},
                    "classification": plan.methods,
                    "abstention_threshold": getattr(
                        getattr(core, "boundary_settings", None), "abstention_threshold", None
                    ),
                    "calibration": asdict(calibration) if calibration else None,
                    "step": step,
                    "epoch": epoch,
                    "metrics": metrics,
                    "train_examples": len(plan.examples),
                    "val_examples": len(val_records),
                    "train_seconds": round(train_seconds, 2),
                },
            )
        checkpoints.append(folder)
        if on_checkpoint:
            on_checkpoint(folder, step, metrics)

    calibrated: list[Calibration | None] = [None]  # the last calibration (a stop's checkpoint keeps it)
    library_abstention = getattr(getattr(core, "boundary_settings", None), "abstention_threshold", 0.5)

    def validate_and_save(epoch: int) -> bool:
        """Calibrate decoding, validate and save; False (nothing saved) when a stop request cut it short."""
        nonlocal metrics, saved_at
        try:
            calibration = calibrate_decoding(trainable, val_records, schema, config, should_stop)
            figures = validation_metrics(trainable, val_records, schema, config, should_stop, calibration)
        except StopDuringValidation:
            last = calibrated[0]
            set_abstention(core, last.abstention_threshold if last else library_abstention)
            return False
        calibrated[0] = calibration
        metrics = {"train_loss": loss_value, **figures}
        save(epoch, metrics, calibration)
        saved_at = step
        return True

    trainable.forward_model.train()
    core.processor.change_mode(is_training=True)
    for epoch in range(1, config.epochs + 1):
        for batch_indices in _batches(plan, config.batch_size, order_rng):
            tick = time.perf_counter()
            if plan.curriculum:
                core.processor.sampling_config = cls.sampling_config(cls.curriculum_phase(step, total_steps, order_rng))
            loss = _step_loss(trainable, plan, batch_indices, collate, step, total_steps)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable_parameters, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            train_seconds += time.perf_counter() - tick
            step += 1
            loss_value = float(loss.detach())
            if on_progress:
                on_progress(step, epoch, loss_value)
            if should_stop and should_stop():
                stopped = True
                break
            if step >= total_steps:
                break
            every = config.checkpoint_every_steps
            if every and step % every == 0 and not validate_and_save(epoch):
                stopped = True
                break
        if not stopped and saved_at != step and not validate_and_save(epoch):
            stopped = True
        if stopped:
            # Return promptly: keep what was learned, skip (or abandon) validation.
            save(epoch, {"train_loss": loss_value}, calibrated[0])
            break
        if step >= total_steps:
            break
    return EncoderTrainingResult(
        model_dir=checkpoints[-1] if checkpoints else None,
        steps=step,
        epochs_completed=epoch if not stopped else epoch - 1,
        stopped=stopped,
        final_loss=loss_value,
        metrics=metrics,
        train_seconds=round(train_seconds, 2),
        seconds_per_step=train_seconds / step if step else None,
        checkpoints=checkpoints,
    )


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
