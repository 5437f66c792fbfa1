"""Scoring a GLiNER2 model under training: the schema its records ask for, predictions on the validation
records (stopping midway when asked), their figures, and the decoding calibration chosen on them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from outrider.training.encoder_calibration import Calibration, calibrate, shifted, with_label_thresholds
from outrider.training.metrics import encoder_metrics

if TYPE_CHECKING:
    from outrider.training.encoder_setup import EncoderTrainingConfig, Plan, Trainable


def gliner_schema(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """The schema that asks for everything the records teach (``gliner2.Schema.from_dict`` input)."""
    entities: dict[str, str | None] = {}
    structures: dict[str, dict[str, dict[str, Any]]] = {}
    relations: list[str] = []
    for record in records:
        output = record["output"]
        described = output.get("entity_descriptions") or {}
        for label in output.get("entities") or {}:
            entities.setdefault(label, described.get(label))
        descriptions = output.get("json_descriptions") or {}
        for structure in output.get("json_structures") or []:
            for name, fields in structure.items():
                known = structures.setdefault(name, {})
                for field_name, value in (fields or {}).items():
                    spec = known.setdefault(field_name, {"name": field_name, "dtype": "str"})
                    if isinstance(value, list):
                        spec["dtype"] = "list"
                    if isinstance(value, dict) and value.get("choices"):
                        spec["choices"] = list(value["choices"])
                    description = (descriptions.get(name) or {}).get(field_name)
                    if description:
                        spec["description"] = description
        for relation in output.get("relations") or []:
            relations += [name for name in relation if name not in relations]
    schema: dict[str, Any] = {}
    if entities:
        schema["entities"] = {k: v or k for k, v in entities.items()} if any(entities.values()) else list(entities)
    if structures:
        schema["structures"] = {name: {"fields": list(fields.values())} for name, fields in structures.items()}
    if relations:
        schema["relations"] = relations
    stock = [spec for name, spec in plan.tasks.items() if plan.methods[name] == "gliner"]
    if stock:
        schema["classifications"] = [{"task": s.task, "labels": s.labels, "multi_label": s.multi_label} for s in stock]
    return schema


class StopDuringValidation(Exception):
    """A stop request arrived while the validation records were being predicted."""


EVAL_CHUNK = 64  # records predicted between two looks at the stop flag


def predict(
    trainable: Trainable,
    records: list[dict[str, Any]],
    schema: dict[str, Any],
    config: EncoderTrainingConfig,
    should_stop: Callable[[], bool] | None = None,
    label_head: bool = True,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """gliner2-shaped predictions for ``records``: GLiNER2's own tasks through ``batch_extract`` (with
    confidences when ``threshold`` is given), the label head's tasks through the head. Raises
    ``StopDuringValidation`` when ``should_stop`` rises."""
    import torch
    from gliner2 import Schema

    core = trainable.core
    head = trainable.label_head if label_head else None
    built = Schema.from_dict(schema) if schema else None
    predictions: list[dict[str, Any]] = []
    core.eval()
    core.processor.change_mode(is_training=False)
    try:
        with torch.no_grad():
            for start in range(0, len(records), EVAL_CHUNK):
                if should_stop and should_stop():
                    raise StopDuringValidation
                texts = [r["input"] for r in records[start : start + EVAL_CHUNK]]
                if built is not None:
                    chunk = core.batch_extract(
                        texts,
                        [built] * len(texts),
                        batch_size=config.eval_batch_size,
                        threshold=config.eval_threshold if threshold is None else threshold,
                        include_confidence=threshold is not None,
                    )
                else:
                    chunk = [{} for _ in texts]
                for task in head.tasks if head is not None else ():
                    answers = head.predict(core.encoder, core.processor.tokenizer, texts, task)
                    for prediction, answer in zip(chunk, answers, strict=True):
                        prediction[task] = answer
                predictions += chunk
    finally:
        core.train()
        core.processor.change_mode(is_training=True)
    return predictions


def validation_metrics(
    trainable: Trainable,
    val_records: list[dict[str, Any]],
    schema: dict[str, Any],
    config: EncoderTrainingConfig,
    should_stop: Callable[[], bool] | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    if not val_records:
        return {}
    started = time.perf_counter()
    # scored as served: the global threshold shifted to 0.5, each entity type at its own threshold
    schema = with_label_thresholds(schema, calibration.label_thresholds) if calibration else schema
    with shifted(trainable.core, calibration):
        metrics = encoder_metrics(val_records, predict(trainable, val_records, schema, config, should_stop))
    metrics["eval_seconds"] = round(time.perf_counter() - started, 2)
    return metrics


def calibrate_decoding(
    trainable: Trainable,
    val_records: list[dict[str, Any]],
    schema: dict[str, Any],
    config: EncoderTrainingConfig,
    should_stop: Callable[[], bool] | None = None,
) -> Calibration | None:
    """The abstention cut-off and decision threshold that do best on the validation split (set: the cut-off;
    the threshold is applied as a logit shift while validating and saving, see ``encoder_calibration``)."""

    def predict_at(records: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
        return predict(trainable, records, schema, config, should_stop, label_head=False, threshold=threshold)

    if not schema:
        return None
    return calibrate(trainable.core, val_records, predict_at)
