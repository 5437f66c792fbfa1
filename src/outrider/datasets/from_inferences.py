"""Inference records with human feedback -> training examples of a dataset's task type.

The output a record teaches is its human correction (verdict ``incorrect``) or its own output (verdict
``correct``, confirmed). Each text of the record is one example, in the format of ``datasets/formats.py``:

- ner: every entity mention becomes a character span. A mention that carries ``start``/``end`` which still
  select its text is kept there; one given as text only is placed on every occurrence of that text (left
  to right, never overlapping a span already placed). A mention whose text does not occur is *unfit*: the
  example is reported with the reason, never placed by a guess.
- classification: the chosen label(s) of one classification task (the only one, or the one named).
- relations / structures: heads, tails and field values must occur in the text (else unfit).
- decoder: the record's messages (or prompt) followed by the corrected or confirmed completion.

Converters raise ``Unfit`` with a reason; ``example_key`` is what makes two examples duplicates: the input
(the text, or the messages before the answer), compared exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from outrider.datasets.formats import validate_example


class Unfit(ValueError):
    """The feedback cannot become an example of this task type; the message says why."""


@dataclass(frozen=True)
class Converted:
    inference_id: str
    example: dict


def example_key(task_type: str, example: dict) -> str:
    if task_type == "decoder":
        return json.dumps(example["messages"][:-1], ensure_ascii=False, sort_keys=True)
    return example["text"]


def taught_output(verdict: str, output: Any, corrected: Any) -> Any:
    """What a record teaches: the correction of an ``incorrect`` one, else (confirmed, judge-passed) its output."""
    return corrected if verdict == "incorrect" else output


def convert_record(
    task_type: str,
    record_input: dict,
    taught: Any,
    *,
    record_task: str,
    classification_task: str | None = None,
) -> list[dict]:
    """The examples one record teaches (one per text). Raises ``Unfit``."""
    if task_type == "decoder":
        if record_task != "generate":
            raise Unfit("an extraction record cannot become a decoder (chat) example")
        return [_decoder(record_input, taught)]
    if record_task != "extract":
        raise Unfit(f"a generation record cannot become a {task_type} example")
    texts = record_input.get("text")
    if isinstance(texts, str):
        texts, outputs = [texts], [taught]
    elif isinstance(texts, list) and isinstance(taught, list) and len(texts) == len(taught):
        outputs = taught
    else:
        raise Unfit("the output does not match the record's texts")
    examples = []
    for index, (text, output) in enumerate(zip(texts, outputs, strict=True)):
        try:
            example = _CONVERTERS[task_type](text, output if isinstance(output, dict) else {}, classification_task)
        except Unfit as exc:
            raise Unfit(f"text[{index}]: {exc}" if len(texts) > 1 else str(exc)) from None
        problem = validate_example(task_type, example)
        if problem is not None:
            raise Unfit(problem)
        examples.append(example)
    return examples


def _mention_text(mention: Any) -> str:
    return mention["text"] if isinstance(mention, dict) else mention


def _ner(text: str, output: dict, _task: str | None) -> dict:
    sections = output.get("entities")
    if not isinstance(sections, dict):
        raise Unfit("the output has no 'entities' section")
    taken: list[tuple[int, int]] = []
    spans: list[dict] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def place(start: int, end: int, label: str) -> None:
        taken.append((start, end))
        spans.append({"start": start, "end": end, "label": label, "text": text[start:end]})

    pending: list[tuple[str, str]] = []
    for label, mentions in sections.items():
        for mention in mentions if isinstance(mentions, list) else [mentions]:
            value = _mention_text(mention)
            if not isinstance(value, str) or not value.strip():
                raise Unfit(f"entities.{label}: an empty mention")
            start, end = (mention.get("start"), mention.get("end")) if isinstance(mention, dict) else (None, None)
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end and text[start:end] == value:
                if free(start, end):
                    place(start, end, label)
            else:
                pending.append((label, value))
    for label, value in pending:  # text-only mentions: every free occurrence
        found, at = False, text.find(value)
        while at != -1:
            found = True
            if free(at, at + len(value)):
                place(at, at + len(value), label)
            at = text.find(value, at + 1)
        if not found:
            raise Unfit(f"entities.{label}: {value!r} does not occur in the text")
    spans.sort(key=lambda e: (e["start"], e["end"]))
    return {"text": text, "entities": spans}


def _classification(text: str, output: dict, task: str | None) -> dict:
    tasks = output.get("classifications")
    if not isinstance(tasks, dict) or not tasks:
        raise Unfit("the output has no 'classifications' section")
    if task is None:
        if len(tasks) != 1:
            raise Unfit(f"the output has several classification tasks {sorted(tasks)}: name one (classification_task)")
        task = next(iter(tasks))
    if task not in tasks:
        raise Unfit(f"the output has no classification task {task!r}")
    chosen = tasks[task]
    labels = [v.get("label") if isinstance(v, dict) else v for v in (chosen if isinstance(chosen, list) else [chosen])]
    labels = [label for label in labels if isinstance(label, str) and label]
    if not labels:
        raise Unfit(f"classifications.{task}: no label chosen")
    if isinstance(chosen, list):
        return {"text": text, "labels": list(dict.fromkeys(labels))}
    return {"text": text, "label": labels[0]}


def _relations(text: str, output: dict, _task: str | None) -> dict:
    sections = output.get("relations")
    if not isinstance(sections, dict):
        raise Unfit("the output has no 'relations' section")
    relations = []
    for label, pairs in sections.items():
        for pair in pairs if isinstance(pairs, list) else []:
            head, tail = _mention_text(pair.get("head")), _mention_text(pair.get("tail"))
            for role, value in (("head", head), ("tail", tail)):
                if not isinstance(value, str) or value not in text:
                    raise Unfit(f"relations.{label}: the {role} {value!r} does not occur in the text")
            relations.append({"label": label, "head": head, "tail": tail})
    if not relations:
        raise Unfit("no relation to learn from")
    return {"text": text, "relations": relations}


def _structures(text: str, output: dict, _task: str | None) -> dict:
    sections = output.get("structures")
    if not isinstance(sections, dict):
        raise Unfit("the output has no 'structures' section")
    items = []
    for name, records in sections.items():
        for record in records if isinstance(records, list) else []:
            fields: dict[str, Any] = {}
            for field, value in record.items():
                values = [_mention_text(v) for v in value] if isinstance(value, list) else _mention_text(value)
                for item in values if isinstance(values, list) else [values]:
                    if item is not None and (not isinstance(item, str) or item not in text):
                        raise Unfit(f"structures.{name}.{field}: {item!r} does not occur in the text")
                fields[field] = values
            if any(v not in (None, []) for v in fields.values()):
                items.append({name: fields})
    if not items:
        raise Unfit("no structure to learn from")
    return {"text": text, "structures": items}


def _decoder(record_input: dict, taught: Any) -> dict:
    completion = taught.get("completion") if isinstance(taught, dict) else taught
    if not isinstance(completion, str) or not completion.strip():
        raise Unfit("no completion to learn from (a record with several choices needs a correction)")
    messages = record_input.get("messages")
    if messages is None and isinstance(record_input.get("prompt"), str):
        messages = [{"role": "user", "content": record_input["prompt"]}]
    if not isinstance(messages, list) or not messages:
        raise Unfit("the record has no messages or prompt")
    example = {
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages]
        + [{"role": "assistant", "content": completion}]
    }
    problem = validate_example("decoder", example)
    if problem is not None:
        raise Unfit(problem)
    return example


_CONVERTERS = {"ner": _ner, "classification": _classification, "relations": _relations, "structures": _structures}
