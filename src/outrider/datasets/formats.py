"""One JSONL example format per task family, its validator, label statistics, and the conversions to what
the trainers read. Documented with examples in ``docs/datasets.md``.

    ner             {"text": "Tim Cook runs Apple.",
                     "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook"}]}
                    character offsets into ``text``; ``text[start:end]`` must equal the entity's ``text``.
    classification  {"text": "Where is my card?", "label": "card_arrival"}
                    or, multi-label, {"text": ..., "labels": ["a", "b"]} (exactly one of the two keys).
    structures      {"text": "The Pixel 9 costs $799.",
                     "structures": [{"product": {"name": "Pixel 9", "price": "$799"}}],
                     "descriptions": {"product": {"price": "the price, an amount of money"}}}   (optional)
                    GLiNER2's ``json_structures`` list: each item maps one structure name to one record whose
                    field values are a string, a list of strings, or null; every value occurs in ``text``.
    relations       {"text": "Tim Cook works for Apple.",
                     "relations": [{"label": "works_for", "head": "Tim Cook", "tail": "Apple"}]}
                    ``head`` and ``tail`` occur in ``text``.
    decoder         {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}
                    roles system/user/assistant; the last message is the assistant's (the training target).

Every example may also carry ``metadata`` (any JSON object), ignored by the trainers; any other key is an
error, so that a misspelt field is reported instead of silently dropped. Anywhere in an example, strings must
be valid Unicode (no lone surrogate such as ``"\\ud800"``), numbers finite (no NaN or Infinity) and nesting at
most ``core.text.MAX_DEPTH`` (64) levels deep.

Validators return ``None`` for a valid example, or one message that names the offending field
(``entities[1].end: ...``); ``labels`` optionally restricts the label set (generation and imports use it).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from outrider.core.text import dotted, find_invalid

TASK_TYPES = ("ner", "classification", "structures", "relations", "decoder")
ROLES = ("system", "user", "assistant")
# Task name GLiNER2 classification examples carry; the trainer and the label-existing schema share it.
CLASSIFICATION_TASK = "label"

_KEYS = {
    "ner": ({"text", "entities"}, set()),
    "classification": ({"text"}, {"label", "labels"}),
    "structures": ({"text", "structures"}, {"descriptions"}),
    "relations": ({"text", "relations"}, set()),
    "decoder": ({"messages"}, set()),
}


class ExampleError(ValueError):
    """An invalid example; ``field`` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def validate_example(task_type: str, example: Any, labels: list[str] | None = None) -> str | None:
    """``None`` when ``example`` is a valid ``task_type`` example, else a message naming the field."""
    try:
        check_example(task_type, example, labels)
    except ExampleError as exc:
        return str(exc)
    return None


def check_example(task_type: str, example: Any, labels: list[str] | None = None) -> None:
    """Raise ``ExampleError`` naming the first invalid field."""
    if task_type not in _KEYS:
        raise ExampleError("task_type", f"must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")
    if not isinstance(example, dict):
        raise ExampleError("", f"an example must be a JSON object, got {_kind(example)}")
    invalid = find_invalid(example)  # a lone surrogate, NaN/Infinity, nesting past MAX_DEPTH: never stored
    if invalid is not None:
        raise ExampleError(dotted(invalid[0]), invalid[1])
    required, optional = _KEYS[task_type]
    for key in sorted(required):
        if key not in example:
            raise ExampleError(key, "is required")
    unknown = set(example) - required - optional - {"metadata"}
    if unknown:
        raise ExampleError(sorted(unknown)[0], f"unknown field for a {task_type} example")
    if "metadata" in example and not isinstance(example["metadata"], dict):
        raise ExampleError("metadata", "must be an object")
    allowed = set(labels) if labels is not None else None
    if task_type == "decoder":
        _check_messages(example["messages"])
        return
    text = example["text"]
    if not isinstance(text, str) or not text.strip():
        raise ExampleError("text", "must be a non-empty string")
    _CHECKS[task_type](example, text, allowed)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _label(value: Any, field: str, allowed: set[str] | None) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ExampleError(field, "must be a non-empty string")
    if allowed is not None and value not in allowed:
        raise ExampleError(field, f"{value!r} is not one of the labels {sorted(allowed)}")


def _check_ner(example: dict, text: str, allowed: set[str] | None) -> None:
    entities = example["entities"]
    if not isinstance(entities, list):
        raise ExampleError("entities", "must be a list")
    for i, entity in enumerate(entities):
        where = f"entities[{i}]"
        if not isinstance(entity, dict):
            raise ExampleError(where, "must be an object with start, end, label and text")
        for key in ("start", "end", "label", "text"):
            if key not in entity:
                raise ExampleError(f"{where}.{key}", "is required")
        extra = set(entity) - {"start", "end", "label", "text", "confidence"}
        if extra:
            raise ExampleError(f"{where}.{sorted(extra)[0]}", "unknown field for an entity")
        start, end = entity["start"], entity["end"]
        for key, value in (("start", start), ("end", end)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ExampleError(f"{where}.{key}", "must be a non-negative integer (a character offset)")
        if not start < end <= len(text):
            raise ExampleError(f"{where}.end", f"must satisfy start < end <= {len(text)} (the text's length)")
        _label(entity["label"], f"{where}.label", allowed)
        if entity["text"] != text[start:end]:
            raise ExampleError(
                f"{where}.text", f"{entity['text']!r} does not equal text[{start}:{end}] = {text[start:end]!r}"
            )


def _check_classification(example: dict, text: str, allowed: set[str] | None) -> None:
    if ("label" in example) == ("labels" in example):
        raise ExampleError("label", "give exactly one of 'label' (one class) or 'labels' (multi-label)")
    if "label" in example:
        _label(example["label"], "label", allowed)
        return
    values = example["labels"]
    if not isinstance(values, list) or not values:
        raise ExampleError("labels", "must be a non-empty list of strings")
    for i, value in enumerate(values):
        _label(value, f"labels[{i}]", allowed)
    if len(set(values)) != len(values):
        raise ExampleError("labels", "must not repeat a label")


def _check_value(value: Any, where: str, text: str) -> None:
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        field = f"{where}[{i}]" if isinstance(value, list) else where
        if not isinstance(item, str) or not item:
            raise ExampleError(field, "must be a non-empty string, a list of them, or null")
        if item not in text:
            raise ExampleError(field, f"{item!r} does not occur in the text")


def _check_structures(example: dict, text: str, allowed: set[str] | None) -> None:
    structures = example["structures"]
    if not isinstance(structures, list) or not structures:
        raise ExampleError("structures", "must be a non-empty list of {structure_name: {field: value}} objects")
    for i, item in enumerate(structures):
        where = f"structures[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise ExampleError(where, "must map exactly one structure name to its record")
        name, record = next(iter(item.items()))
        _label(name, where, allowed)
        if not isinstance(record, dict) or not record:
            raise ExampleError(f"{where}.{name}", "must be a non-empty object of field values")
        for field, value in record.items():
            if value is not None:
                _check_value(value, f"{where}.{name}.{field}", text)
    descriptions = example.get("descriptions", {})
    if not isinstance(descriptions, dict) or not all(
        isinstance(fields, dict) and all(isinstance(d, str) for d in fields.values())
        for fields in descriptions.values()
    ):
        raise ExampleError("descriptions", "must map structure names to {field: description} objects")


def _check_relations(example: dict, text: str, allowed: set[str] | None) -> None:
    relations = example["relations"]
    if not isinstance(relations, list) or not relations:
        raise ExampleError("relations", "must be a non-empty list of {label, head, tail} objects")
    for i, relation in enumerate(relations):
        where = f"relations[{i}]"
        if not isinstance(relation, dict):
            raise ExampleError(where, "must be an object with label, head and tail")
        for key in ("label", "head", "tail"):
            if key not in relation:
                raise ExampleError(f"{where}.{key}", "is required")
        extra = set(relation) - {"label", "head", "tail"}
        if extra:
            raise ExampleError(f"{where}.{sorted(extra)[0]}", "unknown field for a relation")
        _label(relation["label"], f"{where}.label", allowed)
        _check_value(relation["head"], f"{where}.head", text)
        _check_value(relation["tail"], f"{where}.tail", text)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or len(messages) < 2:
        raise ExampleError("messages", "must be a list of at least two messages (a user turn and the answer)")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ExampleError(where, "must be an object with exactly 'role' and 'content'")
        if message["role"] not in ROLES:
            raise ExampleError(f"{where}.role", f"must be one of {', '.join(ROLES)}")
        if not isinstance(message["content"], str) or not message["content"].strip():
            raise ExampleError(f"{where}.content", "must be a non-empty string")
        if message["role"] == "system" and i != 0:
            raise ExampleError(f"{where}.role", "a system message may only come first")
    if messages[-1]["role"] != "assistant":
        raise ExampleError(f"messages[{len(messages) - 1}].role", "the last message must be the assistant's answer")
    if not any(m["role"] == "user" for m in messages):
        raise ExampleError("messages", "needs at least one user message")


_CHECKS = {
    "ner": _check_ner,
    "classification": _check_classification,
    "structures": _check_structures,
    "relations": _check_relations,
}


# -- statistics ---------------------------------------------------------------------------------------------


def example_labels(task_type: str, example: dict) -> list[str]:
    """The labels one (valid) example uses, one entry per occurrence: entity mentions, classes, structure
    names, relation labels. Decoder examples have none."""
    if task_type == "ner":
        return [e["label"] for e in example["entities"]]
    if task_type == "classification":
        return [example["label"]] if "label" in example else list(example["labels"])
    if task_type == "structures":
        return [next(iter(item)) for item in example["structures"]]
    if task_type == "relations":
        return [r["label"] for r in example["relations"]]
    return []


def count_labels(task_type: str, examples: list[dict], into: Counter | None = None) -> Counter:
    counts = into if into is not None else Counter()
    for example in examples:
        counts.update(example_labels(task_type, example))
    return counts


# -- conversions for the trainers -------------------------------------------------------------------------


def to_gliner2(task_type: str, example: dict, labels: list[str] | None = None) -> dict:
    """One GLiNER2 training record ``{"input", "output"}`` (the shape ``training/demo_data.py`` builds).

    ``labels`` is the dataset's whole label set: NER examples list every entity type (absent ones with an
    empty list, which GLiNER2 learns as negatives) and classification examples offer every class.
    """
    text = example["text"]
    if task_type == "ner":
        entities: dict[str, list[str]] = {label: [] for label in labels or []}
        for entity in example["entities"]:
            mentions = entities.setdefault(entity["label"], [])
            if entity["text"] not in mentions:
                mentions.append(entity["text"])
        return {"input": text, "output": {"entities": entities}}
    if task_type == "classification":
        true = [example["label"]] if "label" in example else list(example["labels"])
        options = list(labels) if labels else sorted(set(true))
        task: dict[str, Any] = {"task": CLASSIFICATION_TASK, "labels": options, "true_label": true}
        if "labels" in example:
            task["multi_label"] = True
        return {"input": text, "output": {"classifications": [task]}}
    if task_type == "structures":
        output: dict[str, Any] = {"json_structures": [dict(item) for item in example["structures"]]}
        if example.get("descriptions"):
            output["json_descriptions"] = example["descriptions"]
        return {"input": text, "output": output}
    if task_type == "relations":
        relations = [{r["label"]: {"head": r["head"], "tail": r["tail"]}} for r in example["relations"]]
        return {"input": text, "output": {"relations": relations}}
    raise ValueError(f"{task_type} examples do not train an encoder; use to_chat")


def to_chat(task_type: str, example: dict, labels: list[str] | None = None) -> list[dict[str, str]]:
    """Chat messages for a decoder trainer: decoder examples as they are; the other families as an
    instruction (with the label set) and a JSON answer, so a decoder can learn any task."""
    import json

    if task_type == "decoder":
        return [dict(m) for m in example["messages"]]
    text = example["text"]
    names = ", ".join(labels) if labels else None
    if task_type == "ner":
        ask = f"Extract the entities ({names or 'any type'}) from the text as JSON [[text, label], ...].\n\n{text}"
        answer = json.dumps([[e["text"], e["label"]] for e in example["entities"]], ensure_ascii=False)
    elif task_type == "classification":
        ask = f"Classify the text into one of: {names}.\n\n{text}" if names else f"Classify the text.\n\n{text}"
        answer = example["label"] if "label" in example else json.dumps(example["labels"], ensure_ascii=False)
    elif task_type == "structures":
        ask = f"Extract the structured records from the text as JSON.\n\n{text}"
        answer = json.dumps(example["structures"], ensure_ascii=False)
    else:
        ask = f"Extract the relations from the text as JSON [{{label, head, tail}}, ...].\n\n{text}"
        answer = json.dumps(example["relations"], ensure_ascii=False)
    return [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]
