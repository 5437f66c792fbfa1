"""Decoding calibration for a freshly trained GLiNER2 boundary model, chosen on the validation split and
stored in the model itself, so that the served default (threshold 0.5) and ``gliner2`` alone both use it.

Trained on sparse data, where most queries have no answer (WNUT-17: 6 entity types, about 0.6 mentions per
sentence), a MiniLM boundary model is under-confident twice over:

- its abstention head ("nothing of this type here") passes ``abstention_threshold`` (0.5) for every query,
  and an abstaining query returns no span at all, whatever the threshold: on WNUT-17 dev, after one epoch,
  no entity at any threshold, even 0.05;
- with abstention off, its span probabilities still sit below 0.5: entity F1 0.0 at 0.5, 0.12 at 0.3, 0.20
  at 0.2, 0.21 at 0.1 (same checkpoint, 300 dev sentences).

So each validation tries a few abstention cut-offs, and for each a few decision thresholds (one prediction
pass at a low threshold, with confidences, filtered per threshold), keeps the pair with the best span F1,
writes the cut-off into the boundary settings (``config.json``; ``outrider.json`` for adapters, which carry
no config of their own) and moves the chosen threshold to 0.5 by adding ``logit(0.5) - logit(t)`` to the
pair scorer's constant term (``pair_scorer.compat_mix.bias``, scaled by its ``1/sqrt(pair_dim)``): every
candidate's logit moves by the same amount, so the ranking is unchanged and a request at 0.5 gets what
the chosen threshold gave. On dense data (the demo set) the search keeps the library's values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from outrider.backends.encoder_adapters import set_abstention
from outrider.training.metrics import RELATIONS_KEY, extraction_metrics, gold_units

ABSTENTION_CANDIDATES = (0.5, 0.8, 0.95, 1.0)
DECISION_CANDIDATES = (0.5, 0.4, 0.3, 0.2, 0.1)
SEARCH_THRESHOLD = min(DECISION_CANDIDATES)  # one pass at the lowest, filtered for the others
CALIBRATION_RECORDS = 200  # validation records the search looks at


@dataclass(frozen=True)
class Calibration:
    abstention_threshold: float
    decision_threshold: float  # what the raw model needed; served at 0.5 after the shift

    @property
    def logit_shift(self) -> float:
        return math.log((1 - self.decision_threshold) / self.decision_threshold)


def _compat_bias(core: Any) -> tuple[Any, float] | None:
    """The pair scorer's constant term and the factor its output is scaled by, if the model has them."""
    scorer = getattr(getattr(core, "boundary_head", None), "pair_scorer", None)
    mix = getattr(scorer, "compat_mix", None)
    if mix is None or getattr(mix, "bias", None) is None or not getattr(scorer, "reranker_endpoint_compat", False):
        return None
    return mix.bias, 1.0 / math.sqrt(scorer.pair_dim)


@contextmanager
def shifted(core: Any, calibration: Calibration | None) -> Iterator[None]:
    """Every candidate's pair logit moved by the calibration's shift inside the block (saved checkpoints keep
    it); no calibration, no shift."""
    import torch

    shift = calibration.logit_shift if calibration else 0.0
    found = _compat_bias(core) if shift else None
    if found is None:
        yield
        return
    bias, scale = found
    with torch.no_grad():
        bias.add_(shift / scale)
    try:
        yield
    finally:
        with torch.no_grad():
            bias.sub_(shift / scale)


def _confident(value: Any, threshold: float) -> bool:
    confidence = value.get("confidence") if isinstance(value, dict) else None
    return confidence is None or confidence >= threshold


def keep_confident(prediction: dict[str, Any], threshold: float, structures: Iterable[str]) -> dict[str, Any]:
    """A prediction made at a lower threshold, as it would have been at ``threshold`` (up to overlaps)."""
    kept: dict[str, Any] = dict(prediction)
    if "entities" in prediction:
        kept["entities"] = {
            label: [m for m in mentions if _confident(m, threshold)]
            for label, mentions in (prediction["entities"] or {}).items()
        }
    for name in structures:
        kept[name] = [
            {field: value if _confident(value, threshold) else None for field, value in instance.items()}
            for instance in prediction.get(name) or []
            if isinstance(instance, dict)
        ]
    if RELATIONS_KEY in prediction:
        kept[RELATIONS_KEY] = {
            name: [p for p in pairs if _confident(p, threshold)]
            for name, pairs in (prediction[RELATIONS_KEY] or {}).items()
        }
    return kept


def calibrate(
    core: Any, records: list[dict[str, Any]], predict_at: Callable[[list[dict[str, Any]], float], list[dict]]
) -> Calibration | None:
    """Search, apply the abstention cut-off, and return the choice (None: nothing to calibrate on).
    ``predict_at(records, threshold)`` predicts with confidences."""
    from outrider.training.metrics import structure_names

    sample = records[:CALIBRATION_RECORDS]
    if _compat_bias(core) is None or not any(gold_units(r["output"]) for r in sample):
        return None
    structures = structure_names(sample)
    scores: dict[tuple[float, float], float] = {}
    for abstention in ABSTENTION_CANDIDATES:
        set_abstention(core, abstention)
        predictions = predict_at(sample, SEARCH_THRESHOLD)
        for threshold in DECISION_CANDIDATES:
            kept = [keep_confident(p, threshold, structures) for p in predictions]
            scores[(abstention, threshold)] = extraction_metrics(sample, kept)["f1"]
    # ties keep the library's values (abstention 0.5, threshold 0.5) as far as they can
    best = max(scores, key=lambda key: (scores[key], -key[0], key[1]))
    set_abstention(core, best[0])
    return Calibration(abstention_threshold=best[0], decision_threshold=best[1])
