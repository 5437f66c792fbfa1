"""Calibrated per-type thresholds in serving: the default of a request without a threshold, and what overrides them.

Precedence, highest first: a type's ``threshold`` in the request's schema, the request's ``threshold``, the
model's calibrated threshold for the type, 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outrider.backends.encoder_adapters import calibrated_thresholds
from outrider.core.schema import ExtractionSchema

TEXTS = [
    "Anna Schmidt works for Siemens in Berlin.",
    "Tim Cook met the team from Sony in Tokyo last year.",
    "In Paris, Maria Lopez joined Netflix.",
]
LABELS = ["person", "company", "location"]


@pytest.fixture(scope="module")
def demo_model(demo_model_dir: Path):
    from gliner2 import AutoExtractor

    return AutoExtractor.from_pretrained(str(demo_model_dir / "demo-extractor")).eval()


def encoder(model, thresholds: dict[str, float] | None = None):
    from outrider.backends.encoder_gliner import Gliner2Encoder

    return Gliner2Encoder(model, label_thresholds=thresholds)


def extract(served, schema: dict, threshold: float | None) -> list[dict]:
    prepared = served.prepare(ExtractionSchema.model_validate(schema))
    return served.extract(TEXTS, [prepared] * len(TEXTS), threshold)


def confidences(results: list[dict], label: str) -> list[float]:
    return [m["confidence"] for r in results for m in r["entities"][label]]


def test_a_model_without_calibration_serves_at_0_5(demo_model):
    served = encoder(demo_model)
    assert extract(served, {"entities": LABELS}, None) == extract(served, {"entities": LABELS}, 0.5)


def test_calibrated_thresholds_are_the_default_and_a_request_threshold_overrides_them(demo_model):
    found = confidences(extract(encoder(demo_model), {"entities": LABELS}, 0.5), "person")
    assert found and max(found) < 1.0  # the demo model finds the people, below certainty
    above_every_person = (max(found) + 1.0) / 2
    served = encoder(demo_model, {"person": above_every_person, "company": 0.5})

    by_default = extract(served, {"entities": LABELS}, None)
    assert confidences(by_default, "person") == []  # the calibrated threshold applies
    assert confidences(by_default, "company") == confidences(extract(served, {"entities": LABELS}, 0.5), "company")
    # the request's threshold wins over the calibrated ones
    assert confidences(extract(served, {"entities": LABELS}, 0.5), "person") == found
    # and a type's own threshold in the schema wins over both
    schema = {"entities": [{"name": "person", "threshold": 0.5}, "company", "location"]}
    assert confidences(extract(served, schema, None), "person") == found
    schema = {"entities": [{"name": "person", "threshold": above_every_person}, "company", "location"]}
    assert confidences(extract(served, schema, 0.5), "person") == []


def test_calibrated_thresholds_are_read_from_the_models_metadata(tmp_path):
    metadata = {"calibration": {"abstention_threshold": 1.0, "label_thresholds": {"product": 0.21, "person": 0.6}}}
    (tmp_path / "outrider.json").write_text(json.dumps(metadata))
    assert calibrated_thresholds(tmp_path) == {"product": 0.21, "person": 0.6}
    (tmp_path / "outrider.json").write_text(json.dumps({"calibration": None}))
    assert calibrated_thresholds(tmp_path) == {}
    assert calibrated_thresholds("fastino/gliner2-base-v1") == {}  # a hub id has no metadata
