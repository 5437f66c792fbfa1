"""The neutral extraction schema: what to pull out of a text, independent of surface and backend.

Accepted shapes (all surfaces): ``entities`` and ``relations`` are lists of plain names or objects
``{name, description?, threshold?}``, or a mapping ``name -> description | {description, threshold}``;
``classifications`` is a list of ``{task, labels, multi_label?, threshold?}`` where labels are names,
``{name, description}`` objects, or a mapping ``label -> description``; ``structures`` maps a structure
name to ``{fields: [...], description?}`` (or directly to the list of fields), each field a name or
``{name, dtype?, description?, threshold?, choices?}``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from outrider.core.errors import InvalidSchema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    threshold: float | None = Field(None, ge=0.0, le=1.0)


class FieldSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    dtype: Literal["str", "list"] = "list"
    description: str | None = Field(None, max_length=2000)
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    choices: list[str] | None = None


class StructureSpec(_Strict):
    fields: list[FieldSpec] = Field(min_length=1)
    description: str | None = None


class ClassificationSpec(_Strict):
    task: str = Field(min_length=1, max_length=200)
    labels: list[LabelSpec] = Field(min_length=2)
    multi_label: bool = False
    threshold: float = Field(0.5, ge=0.0, le=1.0)


def _label_list(value: Any, what: str) -> Any:
    """Normalise names / objects / mappings into a list of label dicts."""
    if value is None:
        return None
    if isinstance(value, dict):
        items = []
        for name, spec in value.items():
            if isinstance(spec, str):
                items.append({"name": name, "description": spec})
            elif isinstance(spec, dict):
                items.append({"name": name, **spec})
            elif spec is None:
                items.append({"name": name})
            else:
                raise ValueError(f"{what} '{name}' must map to a description string or an object")
        return items
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    raise ValueError(f"{what} must be a list or an object")


def _unique_names(items: list[Any], what: str) -> None:
    names = [item.name for item in items]
    if len(names) != len(set(names)):
        raise ValueError(f"{what} names must be unique")


class ExtractionSchema(_Strict):
    entities: list[LabelSpec] | None = None
    classifications: list[ClassificationSpec] | None = None
    structures: dict[str, StructureSpec] | None = None
    relations: list[LabelSpec] | None = None

    @field_validator("entities", "relations", mode="before")
    @classmethod
    def _names_or_objects(cls, value: Any, info: Any) -> Any:
        return _label_list(value, info.field_name)

    @field_validator("classifications", mode="before")
    @classmethod
    def _classification_labels(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for task in value:
            if isinstance(task, dict) and "labels" in task:
                task = {**task, "labels": _label_list(task["labels"], "labels")}
                if "cls_threshold" in task:
                    task["threshold"] = task.pop("cls_threshold")
            out.append(task)
        return out

    @field_validator("structures", mode="before")
    @classmethod
    def _structure_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for name, spec in value.items():
            if isinstance(spec, list):
                spec = {"fields": spec}
            if isinstance(spec, dict) and isinstance(spec.get("fields"), list):
                spec = {**spec, "fields": [{"name": f} if isinstance(f, str) else f for f in spec["fields"]]}
            out[name] = spec
        return out

    @model_validator(mode="after")
    def _check(self) -> ExtractionSchema:
        if not any([self.entities, self.classifications, self.structures, self.relations]):
            raise ValueError(
                "schema needs at least one non-empty section: entities, classifications, structures, relations"
            )
        for section in ("entities", "relations"):
            items = getattr(self, section)
            if items is not None:
                if not items:
                    raise ValueError(f"{section} must not be empty")
                _unique_names(items, section)
        for task in self.classifications or []:
            _unique_names(task.labels, f"classification '{task.task}' label")
        if self.classifications is not None:
            _unique_names([LabelSpec(name=t.task) for t in self.classifications], "classification task")
        for name, structure in (self.structures or {}).items():
            if not name.strip():
                raise ValueError("structure names must not be empty")
            _unique_names(structure.fields, f"structure '{name}' field")
        return self

    def entity_names(self) -> list[str]:
        return [e.name for e in self.entities or []]

    def relation_names(self) -> list[str]:
        return [r.name for r in self.relations or []]


def parse_schema(raw: Any) -> ExtractionSchema:
    """Validate a schema from any surface; problems become one ``InvalidSchema`` naming each location."""
    try:
        return ExtractionSchema.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'schema'}: {e['msg']}" for e in exc.errors())
        raise InvalidSchema(f"invalid schema: {details}", param="schema") from exc
