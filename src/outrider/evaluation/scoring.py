"""What an evaluation asks a model and how its answers are scored.

A dataset version gives the schema (its labels: entity types, classes, relation types, structure fields)
and the gold records (``datasets/formats.to_gliner2``, as the trainers read them). The model's answers are
gliner2-shaped results, scored by ``training/metrics.py``: per-label precision / recall / F1 with micro and
macro averages for extraction; accuracy, macro-F1 and a confusion matrix for classification. Each example
also leaves a per-label tally (``ExampleScores``) for the paired comparisons of ``evaluation/compare.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from outrider.datasets.formats import CLASSIFICATION_TASK, to_gliner2
from outrider.training.metrics import (
    classification_pairs,
    confusion_matrix,
    encoder_metrics,
    example_tallies,
    macro_figures,
)

EVALUATED_TASK_TYPES = ("ner", "classification", "relations", "structures")


@dataclass(frozen=True)
class ExampleScores:
    """Per example and label: true positives, false positives, false negatives (``tallies[n, label, 3]``),
    and for classification whether the example's label set was exactly right (``correct[n]``)."""

    labels: list[str]
    tallies: np.ndarray
    correct: np.ndarray | None


def evaluation_schema(task_type: str, labels: list[str], examples: list[dict]) -> dict[str, Any]:
    """The extraction schema that asks for everything the version's examples hold."""
    if task_type == "ner":
        return {"entities": labels}
    if task_type == "relations":
        return {"relations": labels}
    if task_type == "classification":
        multi = any("labels" in e for e in examples)
        return {"classifications": [{"task": CLASSIFICATION_TASK, "labels": labels, "multi_label": multi}]}
    structures: dict[str, dict[str, str]] = {}
    for example in examples:
        for item in example["structures"]:
            for name, record in item.items():
                fields = structures.setdefault(name, {})
                for field, value in record.items():
                    fields[field] = "list" if isinstance(value, list) or fields.get(field) == "list" else "str"
    return {
        "structures": {
            name: {"fields": [{"name": f, "dtype": dtype} for f, dtype in fields.items()]}
            for name, fields in structures.items()
        }
    }


def gold_records(task_type: str, labels: list[str], examples: list[dict]) -> list[dict]:
    return [to_gliner2(task_type, example, labels) for example in examples]


def score(task_type: str, records: list[dict], predictions: list[dict]) -> tuple[dict[str, Any], ExampleScores]:
    """The figures of one model's predictions, and its per-example scores."""
    metrics = encoder_metrics(records, predictions)
    if task_type == "classification":
        gold, predicted = classification_pairs(records, predictions, CLASSIFICATION_TASK)
        figures = {
            "accuracy": metrics.get("accuracy", 0.0),
            "macro": macro_figures(metrics["per_label"]),
            "per_label": metrics["per_label"],
            "confusion_matrix": confusion_matrix(gold, predicted),
        }
        labels = sorted(metrics["per_label"])
        tallies = np.zeros((len(gold), len(labels), 3), dtype=np.int64)
        for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
            for j, label in enumerate(labels):
                tallies[i, j] = (
                    label in g and label in p,
                    label in p and label not in g,
                    label in g and label not in p,
                )
        correct = np.array([g == p for g, p in zip(gold, predicted, strict=True)], dtype=np.float64)
        return figures, ExampleScores(labels, tallies, correct)
    per_example = example_tallies(records, predictions)
    labels = sorted({label for tallies in per_example for label in tallies})
    tallies = np.zeros((len(per_example), len(labels), 3), dtype=np.int64)
    for i, example in enumerate(per_example):
        for j, label in enumerate(labels):
            if label in example:
                tallies[i, j] = (example[label].tp, example[label].fp, example[label].fn)
    figures = {
        "micro": {k: metrics[k] for k in ("precision", "recall", "f1")},
        "macro": macro_figures(metrics["per_label"]),
        "per_label": metrics["per_label"],
    }
    return figures, ExampleScores(labels, tallies, None)


def latency_figures(latencies_ms: list[float]) -> dict[str, float]:
    """Mean, median, 95th percentile and maximum of the per-example latencies."""
    if not latencies_ms:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(latencies_ms)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "mean": round(sum(ordered) / len(ordered), 3),
        "p50": round(quantile(0.5), 3),
        "p95": round(quantile(0.95), 3),
        "max": round(ordered[-1], 3),
    }
