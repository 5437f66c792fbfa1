"""Decoding calibration on the validation split: per-type thresholds, the abstention cut-off, the shift."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from outrider.training.encoder_calibration import calibrate, served_threshold, shifted, with_label_thresholds


@dataclass(frozen=True)
class Settings:
    abstention_threshold: float = 0.5


def fake_core() -> SimpleNamespace:
    """What calibration touches of a GLiNER2 boundary model: the abstention setting and the pair scorer's bias."""
    mix = SimpleNamespace(bias=torch.nn.Parameter(torch.zeros(1)))
    scorer = SimpleNamespace(compat_mix=mix, reranker_endpoint_compat=True, pair_dim=4)
    return SimpleNamespace(
        boundary_settings=Settings(),
        config=SimpleNamespace(boundary_head={}),
        boundary_head=SimpleNamespace(pair_scorer=scorer),
    )


def record(person: list[str], product: list[str]) -> dict:
    return {"input": "...", "output": {"entities": {"person": person, "product": product}}}


def mention(text: str, confidence: float) -> dict:
    return {"text": text, "confidence": confidence}


# Ten sentences: a frequent type whose right answers score 0.6 and wrong ones 0.35, and a rare one whose right
# answers score 0.12 and wrong ones 0.06, and which the abstention head hides at the library's cut-off (0.5).
RECORDS = [record([f"P{i}"], ["X1"] if i < 3 else []) for i in range(10)]


def predict_at(core: SimpleNamespace):
    def predict(records: list[dict], threshold: float) -> list[dict]:
        abstains_on_rare = core.boundary_settings.abstention_threshold < 0.8
        out = []
        for i, _ in enumerate(records):
            person = [mention(f"P{i}", 0.6), mention(f"wrong{i}", 0.35)]
            product = [] if abstains_on_rare else [mention("X1", 0.12)] if i < 3 else [mention(f"Y{i}", 0.06)]
            out.append(
                {
                    "entities": {
                        k: [m for m in v if m["confidence"] >= threshold]
                        for k, v in {"person": person, "product": product}.items()
                    }
                }
            )
        return out

    return predict


def test_each_type_gets_its_f1_best_threshold_and_the_rare_type_is_no_longer_hidden():
    core = fake_core()
    calibration = calibrate(core, RECORDS, predict_at(core))

    assert calibration is not None
    # The rare type appears only once abstention is relaxed: 0.8 is the lowest cut-off that shows it.
    assert calibration.abstention_threshold == 0.8
    assert (
        core.boundary_settings.abstention_threshold == 0.8 and core.config.boundary_head["abstention_threshold"] == 0.8
    )
    # person: every threshold from 0.4 to 0.6 keeps the right answers and drops the wrong ones; product: 0.1
    # and 0.07 keep 0.12 and drop 0.06 (ties keep the threshold nearest the library's 0.5). One global
    # threshold cannot do both: the best single one serves person (F1 1.0 on 10 of 13 mentions) and loses
    # product.
    assert calibration.decision_threshold == 0.5 and calibration.logit_shift == 0.0
    assert calibration.label_thresholds == {"person": 0.5, "product": 0.1}
    assert list(calibration.label_thresholds) == ["person", "product"]  # the records' order: a prompt keeps it


def test_per_type_thresholds_are_stored_on_the_served_scale():
    """The global threshold is served as 0.5 (a shift of every logit); each type's keeps its place around it."""
    core = fake_core()
    # a less confident model: right person answers at 0.3, wrong ones at 0.12
    scaled = predict_at(core)

    def predict(records: list[dict], threshold: float) -> list[dict]:
        out = scaled(records, 0.0)
        for prediction in out:
            for mentions in prediction["entities"].values():
                for m in mentions:
                    m["confidence"] = {0.6: 0.3, 0.35: 0.12}.get(m["confidence"], m["confidence"])
        return [
            {"entities": {k: [m for m in v if m["confidence"] >= threshold] for k, v in p["entities"].items()}}
            for p in out
        ]

    calibration = calibrate(core, RECORDS, predict)
    assert calibration is not None and calibration.decision_threshold == 0.3
    shift = math.log(0.7 / 0.3)  # logit(0.5) - logit(0.3): moves every logit up, 0.3 to 0.5
    assert calibration.logit_shift == pytest.approx(shift)
    assert calibration.label_thresholds == {"person": 0.5, "product": served_threshold(0.1, shift)}
    assert 0.1 < calibration.label_thresholds["product"] < 0.5


def test_the_served_scale_moves_every_logit_by_the_same_shift():
    core = fake_core()
    calibration = calibrate(core, RECORDS, predict_at(core))
    bias = core.boundary_head.pair_scorer.compat_mix.bias
    with shifted(core, calibration):
        # the bias moves by shift * sqrt(pair_dim): the scorer's output is scaled by 1/sqrt(pair_dim)
        assert float(bias.detach()) == pytest.approx(calibration.logit_shift * 2)
    assert float(bias.detach()) == 0.0


def test_nothing_to_calibrate_on_keeps_the_model_as_it_is():
    core = fake_core()
    empty = [record([], []) for _ in range(3)]
    assert calibrate(core, empty, predict_at(core)) is None
    assert core.boundary_settings.abstention_threshold == 0.5


def test_label_thresholds_go_into_the_schema_and_keep_descriptions():
    assert with_label_thresholds({"entities": ["person", "product"]}, {"product": 0.2}) == {
        "entities": {"person": {}, "product": {"threshold": 0.2}}
    }
    described = {"entities": {"person": "a human", "product": "product"}, "relations": ["works_for"]}
    assert with_label_thresholds(described, {"person": 0.3}) == {
        "entities": {"person": {"description": "a human", "threshold": 0.3}, "product": {}},
        "relations": ["works_for"],
    }
    assert with_label_thresholds(described, {}) is described
