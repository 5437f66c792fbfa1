"""Fine-tune a GLiNER2 extractor: a plain function over records, saving a self-describing folder.

The folder it writes loads with ``gliner2.AutoExtractor.from_pretrained(folder)`` alone, and carries
``outrider.json``: the base model, the hyperparameters, the data size and the training summary.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

METADATA_FILE = "outrider.json"


@dataclass(frozen=True)
class EncoderTrainingConfig:
    # A fresh MiniLM boundary model needs far higher learning rates than the library's defaults
    # (tuned for pretrained GLiNER2 checkpoints): its heads start from random initialisation.
    epochs: int = 5
    batch_size: int = 8
    encoder_lr: float = 3e-4
    task_lr: float = 1e-2
    warmup_ratio: float = 0.1
    lora: bool = False
    lora_r: int = 16
    lora_alpha: float = 32.0
    seed: int = 0


def train_encoder(
    base_dir: Path | str,
    records: list[dict[str, Any]],
    out_dir: Path,
    config: EncoderTrainingConfig,
    on_log: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Train on ``records`` (GLiNER2 ``{"input", "output"}`` dicts) and save the model to ``out_dir``."""
    import torch
    from gliner2 import AutoExtractor
    from gliner2.training.trainer import ExtractorTrainer, TrainingConfig

    if not records:
        raise ValueError("no training records")
    torch.manual_seed(config.seed)
    model = AutoExtractor.from_pretrained(str(base_dir))
    work = out_dir.with_name(out_dir.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    trainer_config = TrainingConfig(
        output_dir=str(work),
        num_epochs=config.epochs,
        batch_size=config.batch_size,
        encoder_lr=config.encoder_lr,
        task_lr=config.task_lr,
        warmup_ratio=config.warmup_ratio,
        eval_strategy="no",
        save_best=False,
        seed=config.seed,
        use_lora=config.lora,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        # A LoRA run still saves the merged full model: it is what gets served and downloaded.
        save_adapter_only=False,
        num_workers=0,  # data loading in worker processes only competes for the two cores
        pin_memory=False,
        fp16=False,
    )
    started = time.perf_counter()
    summary = ExtractorTrainer(model, trainer_config).train(train_data=records)
    seconds = time.perf_counter() - started
    final = work / "final"
    metadata = {
        "base_model": str(base_dir),
        "config": asdict(config),
        "examples": len(records),
        "train_seconds": round(seconds, 2),
        "total_steps": summary.get("total_steps"),
    }
    (final / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(final, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    log.info("trained %s in %.1f s (%d examples)", out_dir, seconds, len(records))
    if on_log:
        on_log(metadata)
    return metadata
