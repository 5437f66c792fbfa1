"""Evaluation figures for trained models, computed from gold records and predictions.

- Extraction (entities, structure fields, relations): span-level exact match. Every gold mention is a unit
  ``(label, text)`` (a structure field's label is ``structure.field``, a relation's is its type and its
  text the ``(head, tail)`` pair); a predicted unit counts as a true positive when the same example holds
  an identical gold unit not matched yet (multisets, so a name mentioned twice must be found twice).
  Overall figures are micro-averaged over all units; per-label figures are kept too.
- Classification: per label one-vs-rest precision/recall/F1 over the examples, macro-averaged over the
  labels that occur in the gold answers or the predictions (scikit-learn's convention), and accuracy
  (the predicted label set equals the gold one).
- Decoder answers: exact match and token-level F1 after SQuAD's normalisation (lower case, no punctuation
  or articles), averaged over the examples.

Gold records are GLiNER2 training records (``{"input", "output"}``, see ``demo_data.py``); predictions are
what ``gliner2``'s ``batch_extract`` returns for them (with or without confidences and spans).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RELATIONS_KEY = "relation_extraction"  # where gliner2 puts predicted relations


@dataclass
class Tally:
    """True positives, false positives and false negatives for one label (or for everything)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Tally) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def figures(self) -> dict[str, float | int]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": self.tp + self.fn}


@dataclass
class TallyBook:
    per_label: dict[str, Tally] = field(default_factory=dict)

    def label(self, name: str) -> Tally:
        return self.per_label.setdefault(name, Tally())

    def total(self) -> Tally:
        total = Tally()
        for tally in self.per_label.values():
            total.add(tally)
        return total


# --- extraction ------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A mention's text from any shape gliner2 uses: a string, ``{"text": ...}`` or ``{"value": ...}``."""
    if isinstance(value, dict):
        value = value.get("text", value.get("value"))
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, list | tuple) else [value]
    return [t for t in (_text(v) for v in values) if t is not None]


def gold_units(output: dict[str, Any]) -> list[tuple[str, Any]]:
    """The ``(label, text)`` units of one gold record's ``output``."""
    units: list[tuple[str, Any]] = []
    entities = output.get("entities") or {}
    if isinstance(entities, dict):
        for label, mentions in entities.items():
            units += [(label, text) for text in _texts(mentions or [])]
    else:  # a list of {"text", "label"} objects
        units += [(e["label"], t) for e in entities if (t := _text(e.get("text"))) is not None]
    for structure in output.get("json_structures") or []:
        for name, fields in structure.items():
            for field_name, value in (fields or {}).items():
                units += [(f"{name}.{field_name}", text) for text in _texts(value)]
    for relation in output.get("relations") or []:
        for name, pair in relation.items():
            head, tail = _text(pair.get("head")), _text(pair.get("tail"))
            if head and tail:
                units.append((name, (head, tail)))
    return units


def predicted_units(prediction: dict[str, Any], structure_names: Iterable[str]) -> list[tuple[str, Any]]:
    """The ``(label, text)`` units of one gliner2 result; ``structure_names`` says which keys are structures."""
    units: list[tuple[str, Any]] = []
    for label, mentions in (prediction.get("entities") or {}).items():
        units += [(label, text) for text in _texts(mentions or [])]
    for name in structure_names:
        for instance in prediction.get(name) or []:
            if isinstance(instance, dict):
                for field_name, value in instance.items():
                    units += [(f"{name}.{field_name}", text) for text in _texts(value)]
    for name, pairs in (prediction.get(RELATIONS_KEY) or {}).items():
        for pair in pairs or []:
            head, tail = (pair.get("head"), pair.get("tail")) if isinstance(pair, dict) else pair
            head, tail = _text(head), _text(tail)
            if head and tail:
                units.append((name, (head, tail)))
    return units


def structure_names(records: Iterable[dict[str, Any]]) -> set[str]:
    return {name for r in records for s in r["output"].get("json_structures") or [] for name in s}


def example_tallies(records: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> list[dict[str, Tally]]:
    """Per example, the span-level exact-match tally of each label it involves (what a paired bootstrap
    resamples)."""
    _same_length(records, predictions)
    structures = structure_names(records)
    tallies = []
    for record, prediction in zip(records, predictions, strict=True):
        gold = Counter(gold_units(record["output"]))
        predicted = Counter(predicted_units(prediction, structures))
        book = TallyBook()
        for unit in gold | predicted:
            tally = book.label(unit[0])
            hit = min(gold[unit], predicted[unit])
            tally.tp += hit
            tally.fp += predicted[unit] - hit
            tally.fn += gold[unit] - hit
        tallies.append(book.per_label)
    return tallies


def extraction_tallies(records: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> TallyBook:
    """True and false positives and false negatives per label (entity type, structure field, relation)."""
    book = TallyBook()
    for per_label in example_tallies(records, predictions):
        for name, tally in per_label.items():
            book.label(name).add(tally)
    return book


def extraction_metrics(records: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """Micro-averaged span-level exact-match figures over entities, structure fields and relations."""
    book = extraction_tallies(records, predictions)
    return {
        **{k: v for k, v in book.total().figures().items() if k != "support"},
        "support": book.total().tp + book.total().fn,
        "per_label": {name: tally.figures() for name, tally in sorted(book.per_label.items())},
    }


# --- classification ----------------------------------------------------------------------------------------


def _label_set(value: Any) -> frozenset[str]:
    """A task's predicted or gold labels from any gliner2 shape: a name, ``{"label": ...}``, or a list."""
    if value is None:
        return frozenset()
    values = value if isinstance(value, list | tuple) else [value]
    names = []
    for item in values:
        name = item.get("label") if isinstance(item, dict) else item
        if name is not None:
            names.append(str(name))
    return frozenset(names)


def classification_metrics(gold: list[Iterable[str]], predicted: list[Iterable[str]]) -> dict[str, Any]:
    """Macro precision/recall/F1, accuracy and per-label figures over examples' label sets (one task)."""
    _same_length(gold, predicted)
    gold_sets = [frozenset(g) for g in gold]
    predicted_sets = [frozenset(p) for p in predicted]
    labels = sorted(set().union(*gold_sets, *predicted_sets)) if gold_sets else []
    book = TallyBook()
    for name in labels:
        tally = book.label(name)
        for g, p in zip(gold_sets, predicted_sets, strict=True):
            tally.tp += name in g and name in p
            tally.fp += name in p and name not in g
            tally.fn += name in g and name not in p
    per_label = {name: book.per_label[name].figures() for name in labels}
    return {
        "accuracy": sum(g == p for g, p in zip(gold_sets, predicted_sets, strict=True)) / (len(gold_sets) or 1),
        **macro_figures(per_label),
        "support": len(gold_sets),
        "per_label": per_label,
    }


def macro_figures(per_label: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Precision, recall and F1 averaged over the labels (each label counts the same)."""
    count = len(per_label) or 1
    return {key: sum(f[key] for f in per_label.values()) / count for key in ("precision", "recall", "f1")}


def confusion_matrix(gold: list[Iterable[str]], predicted: list[Iterable[str]], none: str = "(none)") -> dict[str, Any]:
    """Single-label confusion counts: ``matrix[i][j]`` examples of gold ``labels[i]`` predicted ``labels[j]``
    (``none`` when the model chose no label; with several labels, the first in sorted order)."""
    _same_length(gold, predicted)

    def one(labels: Iterable[str]) -> str:
        ordered = sorted(labels)
        return ordered[0] if ordered else none

    pairs = [(one(g), one(p)) for g, p in zip(gold, predicted, strict=True)]
    labels = sorted({label for pair in pairs for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in pairs:
        matrix[index[g]][index[p]] += 1
    return {"labels": labels, "matrix": matrix}


def classification_tasks(records: Iterable[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for record in records:
        for task in record["output"].get("classifications") or []:
            if task["task"] not in names:
                names.append(task["task"])
    return names


def classification_pairs(
    records: list[dict[str, Any]], predictions: list[dict[str, Any]], task: str
) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """The gold and predicted label sets of ``task``, for the records that ask for it."""
    _same_length(records, predictions)
    gold, predicted = [], []
    for record, prediction in zip(records, predictions, strict=True):
        entry = next((t for t in record["output"].get("classifications") or [] if t["task"] == task), None)
        if entry is not None:
            gold.append(_label_set(entry.get("true_label")))
            predicted.append(_label_set(prediction.get(task)))
    return gold, predicted


def records_classification_metrics(records: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """Classification figures per task from gold records and gliner2-shaped predictions; with one task its
    figures are the result, with several the macro figures are averaged over the tasks and per-label keys
    become ``task:label``."""
    _same_length(records, predictions)
    per_task = {}
    for task in classification_tasks(records):
        per_task[task] = classification_metrics(*classification_pairs(records, predictions, task))
    if len(per_task) == 1:
        return next(iter(per_task.values()))
    if not per_task:
        return {}
    keys = ("accuracy", "precision", "recall", "f1")
    merged: dict[str, Any] = {k: sum(m[k] for m in per_task.values()) / len(per_task) for k in keys}
    merged["support"] = sum(m["support"] for m in per_task.values())
    merged["per_label"] = {f"{t}:{label}": f for t, m in per_task.items() for label, f in m["per_label"].items()}
    return merged


# --- everything an encoder is trained on -------------------------------------------------------------


def encoder_metrics(records: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """The job's figures: ``f1``/``precision``/``recall`` and ``per_label`` at the top (extraction figures
    when the records hold spans, else classification figures, with ``accuracy``), and each family's own
    figures under ``extraction`` and ``classification`` when the records mix them."""
    _same_length(records, predictions)
    has_spans = any(gold_units(r["output"]) for r in records)
    has_classes = bool(classification_tasks(records))
    result: dict[str, Any] = {"examples": len(records)}
    extraction = extraction_metrics(records, predictions) if has_spans else None
    classification = records_classification_metrics(records, predictions) if has_classes else None
    headline = extraction or classification or {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_label": {}}
    result.update({k: headline[k] for k in ("f1", "precision", "recall", "per_label")})
    if classification is not None:
        result["accuracy"] = classification["accuracy"]
    if extraction is not None and classification is not None:
        result["extraction"] = extraction
        result["classification"] = classification
    return result


# --- decoder answers ---------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation or articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_metrics(predictions: list[str], references: list[str]) -> dict[str, float | int]:
    """Exact match and token-level precision/recall/F1 (SQuAD style), averaged over the examples.

    An empty prediction for an empty reference is a full match; an empty one on one side only scores 0."""
    _same_length(predictions, references)
    exact = precision = recall = f1 = 0.0
    for predicted, reference in zip(predictions, references, strict=True):
        pred_tokens, ref_tokens = normalize_answer(predicted).split(), normalize_answer(reference).split()
        exact += pred_tokens == ref_tokens
        if not pred_tokens or not ref_tokens:
            same = float(pred_tokens == ref_tokens)
            precision, recall, f1 = precision + same, recall + same, f1 + same
            continue
        overlap = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
        if overlap:
            p, r = overlap / len(pred_tokens), overlap / len(ref_tokens)
            precision, recall, f1 = precision + p, recall + r, f1 + 2 * p * r / (p + r)
    n = len(references) or 1
    return {
        "exact_match": exact / n,
        "f1": f1 / n,
        "precision": precision / n,
        "recall": recall / n,
        "examples": len(references),
    }


def _same_length(a: list, b: list) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} gold items but {len(b)} predictions")
