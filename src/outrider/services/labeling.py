"""Label existing text (``/generate/{ner,classification}/label-existing``): one batched extraction pass
through ``ExtractionService`` (so the call is resolved, micro-batched, recorded and billed like any
extraction), reshaped into the dataset formats, optionally saved as a dataset version."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from outrider.config import Settings
from outrider.core.errors import InvalidRequest
from outrider.core.schema import parse_schema
from outrider.core.usage import Usage
from outrider.datasets.formats import CLASSIFICATION_TASK
from outrider.services.datasets import DatasetService, check_name
from outrider.services.extraction import ExtractionRequest, ExtractionService
from outrider.services.recording import CallContext

MAX_INPUTS = 1000


@dataclass(frozen=True)
class LabelingRequest:
    task_type: Literal["ner", "classification"]
    labels: list[str]
    inputs: list[str]
    model_id: str | None = None
    threshold: float | None = None  # None: the model's own defaults, as for ``ExtractionRequest``
    dataset_name: str | None = None


@dataclass(frozen=True)
class LabelingOutcome:
    model_id: str
    model_used: str
    results: list[dict[str, Any]]  # dataset-format examples with confidences
    latency_ms: float
    usage: Usage
    dataset_name: str | None = None
    dataset_version: int | None = None


class LabelingService:
    def __init__(self, settings: Settings, extraction: ExtractionService, datasets: DatasetService) -> None:
        self.settings = settings
        self.extraction = extraction
        self.datasets = datasets

    async def label(self, ctx: CallContext, request: LabelingRequest) -> LabelingOutcome:
        if not 1 <= len(request.inputs) <= MAX_INPUTS:
            raise InvalidRequest(f"inputs must hold between 1 and {MAX_INPUTS} strings", param="inputs")
        labels = list(dict.fromkeys(label.strip() for label in request.labels))
        if not labels or any(not label for label in labels):
            raise InvalidRequest("labels must be a non-empty list of non-empty strings", param="labels")
        if request.task_type == "classification" and len(labels) < 2:
            raise InvalidRequest("classification needs at least two labels", param="labels")
        if request.dataset_name is not None:
            check_name(request.dataset_name)
        if request.task_type == "ner":
            schema = parse_schema({"entities": labels})
        else:
            schema = parse_schema({"classifications": [{"task": CLASSIFICATION_TASK, "labels": labels}]})
        for index, text in enumerate(request.inputs):
            if not text.strip() or len(text) > self.settings.max_text_chars:
                raise InvalidRequest(
                    f"inputs[{index}] must be non-empty and at most {self.settings.max_text_chars} characters",
                    param="inputs",
                )
        model_id = request.model_id or self.settings.default_labeling_model
        started = time.perf_counter()
        # One pass when the extraction batch limit allows it (the default allows 1,000 texts).
        size = self.settings.max_batch_texts
        chunks = [request.inputs[i : i + size] for i in range(0, len(request.inputs), size)]
        outcomes = [
            await self.extraction.extract(
                ctx,
                ExtractionRequest(
                    model_id=model_id,
                    texts=chunk,
                    schema=schema,
                    threshold=request.threshold,
                    include_confidence=True,
                    include_spans=True,
                    batch=True,
                ),
            )
            for chunk in chunks
        ]
        raw_results = [raw for outcome in outcomes for raw in outcome.result]
        shape = _ner if request.task_type == "ner" else _classification
        results = [shape(text, raw) for text, raw in zip(request.inputs, raw_results, strict=True)]
        usage = Usage(
            sum(o.usage.prompt_tokens for o in outcomes),
            sum(o.usage.completion_tokens for o in outcomes),
            sum(o.usage.cost_micro_usd for o in outcomes),
        )
        name = version = None
        if request.dataset_name is not None:
            examples = [_without_confidence(r) for r in results if r.get("label", True) is not None]
            dataset, saved = await self.datasets.save_examples(
                ctx.principal.account.id, request.dataset_name, request.task_type, examples, source="label-existing"
            )
            name, version = dataset.name, saved.version
        latency_ms = (time.perf_counter() - started) * 1000
        return LabelingOutcome(model_id, outcomes[0].model_used, results, latency_ms, usage, name, version)


def _ner(text: str, raw: dict) -> dict:
    entities = []
    for label, found in raw.get("entities", {}).items():
        for item in found:
            start, end = item["start"], item["end"]
            entities.append(
                {"start": start, "end": end, "text": text[start:end], "label": label, "confidence": item["confidence"]}
            )
    entities.sort(key=lambda e: (e["start"], e["end"]))
    return {"text": text, "entities": entities}


def _classification(text: str, raw: dict) -> dict:
    found = raw.get("classifications", {}).get(CLASSIFICATION_TASK) or {}
    return {"text": text, "label": found.get("label"), "confidence": found.get("confidence")}


def _without_confidence(result: dict) -> dict:
    if "entities" in result:
        entities = [{k: v for k, v in e.items() if k != "confidence"} for e in result["entities"]]
        return {"text": result["text"], "entities": entities}
    return {"text": result["text"], "label": result["label"]}
