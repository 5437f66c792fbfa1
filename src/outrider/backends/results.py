"""Shape extraction output for the caller: one section per schema section, as requested.

Backends always produce confidences and character spans; what the caller did not ask for is removed.
"""

from __future__ import annotations

from typing import Any


def _item(raw: Any, confidence: bool, spans: bool) -> Any:
    if not isinstance(raw, dict) or "text" not in raw:
        return raw
    if not confidence and not spans:
        return raw["text"]
    out: dict[str, Any] = {"text": raw["text"]}
    if confidence and "confidence" in raw:
        out["confidence"] = raw["confidence"]
    if spans and "start" in raw:
        out["start"], out["end"] = raw["start"], raw["end"]
    return out


def _items(raw: Any, confidence: bool, spans: bool) -> Any:
    if isinstance(raw, list):
        return [_item(r, confidence, spans) for r in raw]
    return _item(raw, confidence, spans)


def shape_result(
    raw: dict,
    *,
    entities: list[str],
    classifications: list[str],
    structures: list[str],
    relations: list[str],
    confidence: bool,
    spans: bool,
) -> dict:
    result: dict[str, Any] = {}
    if entities:
        found = raw.get("entities", {})
        result["entities"] = {name: _items(found.get(name, []), confidence, spans) for name in entities}
    if classifications:
        out = {}
        for task in classifications:
            value = raw.get(task)
            if isinstance(value, list):
                out[task] = [_label(v, confidence) for v in value]
            else:
                out[task] = _label(value, confidence)
        result["classifications"] = out
    if structures:
        out = {}
        for name in structures:
            records = raw.get(name, [])
            out[name] = [
                {field: _items(value, confidence, spans) for field, value in record.items()} for record in records
            ]
        result["structures"] = out
    if relations:
        found = raw.get("relation_extraction", {})
        out = {}
        for name in relations:
            tuples = []
            for rel in found.get(name, []):
                entry = {"head": _item(rel["head"], confidence, spans), "tail": _item(rel["tail"], confidence, spans)}
                if confidence and "confidence" in rel:
                    entry["confidence"] = rel["confidence"]
                tuples.append(entry)
            out[name] = tuples
        result["relations"] = out
    return result


def _label(value: Any, confidence: bool) -> Any:
    if isinstance(value, dict) and "label" in value:
        return {"label": value["label"], "confidence": value.get("confidence")} if confidence else value["label"]
    return value
