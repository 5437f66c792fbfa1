"""What an encoder run is made of, shared by the loop (``encoder.py``) and its scoring (``encoder_eval.py``):
its configuration, the model it trains and the plan of its records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from outrider.backends.label_head import LabelHead
from outrider.training import encoder_classification as cls


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
    # the probability that gliner2's processor renames a training record's entity types "entity 1", ...;
    # None keeps the library's (0.2)
    entity_label_renaming: float | None = None
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    classification_method: cls.ClassificationMethod = "auto"
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps (tests, smoke runs)
    # end the run after this many validations in a row without a better validation F1 (None: never); the
    # best validated checkpoint is the final model either way
    early_stopping_patience: int | None = None
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


@dataclass
class Trainable:
    core: Any  # the GLiNER2 model (inside ``wrapped`` for LoRA)
    wrapped: Any | None  # the peft model for LoRA runs
    base_id: str  # what the weights start from (for an adapter: the model its adapter applies to)
    base_path: str
    label_head: LabelHead | None

    @property
    def forward_model(self) -> Any:
        return self.wrapped if self.wrapped is not None else self.core


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
