"""Check that a corrected output has the shape of the inference it corrects.

An extraction correction uses the result's own sections and names (entity labels, classification
tasks and labels, structure names and fields, relation names); a generation correction is the text.
"""

from __future__ import annotations

from typing import Any

from outrider.core.errors import InvalidRequest
from outrider.core.schema import ExtractionSchema

SECTIONS = ("entities", "classifications", "structures", "relations")


def _fail(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"corrected_output{path}: {message}", param="corrected_output")


def _mention(value: Any, path: str) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return
    raise _fail(path, "each mention must be a string or an object with 'text'")


def _mentions(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _fail(path, "must be a list")
    for index, item in enumerate(value):
        _mention(item, f"{path}[{index}]")


def _known_keys(value: Any, allowed: set[str], path: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object")
    unknown = set(value) - allowed
    if unknown:
        raise _fail(path, f"unknown {what} {sorted(unknown)}; the schema has {sorted(allowed)}")
    return value


def validate_extraction_correction(corrected: Any, schema: ExtractionSchema, path: str = "") -> None:
    body = _known_keys(corrected, set(SECTIONS), path, "section")
    if "entities" in body:
        entities = _known_keys(body["entities"], set(schema.entity_names()), f"{path}.entities", "entity label")
        for label, value in entities.items():
            _mentions(value, f"{path}.entities.{label}")
    if "classifications" in body:
        tasks = {t.task: {label.name for label in t.labels} for t in schema.classifications or []}
        chosen = _known_keys(body["classifications"], set(tasks), f"{path}.classifications", "task")
        for task, value in chosen.items():
            labels = value if isinstance(value, list) else [value]
            for label in labels:
                name = label.get("label") if isinstance(label, dict) else label
                if name not in tasks[task]:
                    raise _fail(f"{path}.classifications.{task}", f"'{name}' is not one of {sorted(tasks[task])}")
    if "structures" in body:
        fields = {n: {f.name for f in s.fields} for n, s in (schema.structures or {}).items()}
        structures = _known_keys(body["structures"], set(fields), f"{path}.structures", "structure")
        for name, records in structures.items():
            if not isinstance(records, list):
                raise _fail(f"{path}.structures.{name}", "must be a list of records")
            for index, record in enumerate(records):
                where = f"{path}.structures.{name}[{index}]"
                for field, value in _known_keys(record, fields[name], where, "field").items():
                    (_mentions if isinstance(value, list) else _mention)(value, f"{where}.{field}")
    if "relations" in body:
        relations = _known_keys(body["relations"], set(schema.relation_names()), f"{path}.relations", "relation")
        for name, tuples in relations.items():
            if not isinstance(tuples, list):
                raise _fail(f"{path}.relations.{name}", "must be a list")
            for index, pair in enumerate(tuples):
                where = f"{path}.relations.{name}[{index}]"
                if not isinstance(pair, dict) or "head" not in pair or "tail" not in pair:
                    raise _fail(where, "each relation needs 'head' and 'tail'")
                _mention(pair["head"], f"{where}.head")
                _mention(pair["tail"], f"{where}.tail")


def validate_correction(task: str, record_input: dict, corrected: Any) -> None:
    if task == "generate":
        if isinstance(corrected, str) or (isinstance(corrected, dict) and isinstance(corrected.get("completion"), str)):
            return
        raise _fail("", "a generation correction is the corrected text, or an object with 'completion'")
    schema = ExtractionSchema.model_validate(record_input["schema"])
    if isinstance(record_input.get("text"), list):
        if not isinstance(corrected, list) or len(corrected) != len(record_input["text"]):
            raise _fail("", f"this inference had {len(record_input['text'])} texts: send one result per text")
        for index, item in enumerate(corrected):
            validate_extraction_correction(item, schema, f"[{index}]")
    else:
        validate_extraction_correction(corrected, schema)
