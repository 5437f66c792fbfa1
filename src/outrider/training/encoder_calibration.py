"""Decoding calibration for a freshly trained GLiNER2 boundary model, chosen on the validation split and
stored with the model, so that the served default and ``gliner2`` alone both use it.

Trained on sparse data, where most queries have no answer (WNUT-17: 6 entity types, about 0.6 mentions per
sentence), a MiniLM boundary model is under-confident twice over:

- its abstention head ("nothing of this type here") passes ``abstention_threshold`` (0.5) for every query,
  and an abstaining query returns no span at all, whatever the threshold: on WNUT-17 dev, after one epoch,
  no entity at any threshold, even 0.05;
- with abstention off, its span probabilities still sit below 0.5: entity F1 0.0 at 0.5, 0.12 at 0.3, 0.20
  at 0.2, 0.21 at 0.1 (same checkpoint, 300 dev sentences).

And one threshold does not suit every type: a rare type's spans score far below a frequent one's. With one
global pair (abstention 0.8, threshold 0.2) a WNUT-17 checkpoint never emitted ``creative-work``, ``group``
or ``product``; with abstention off and a threshold per type the same checkpoint found all six.

So each validation tries a few abstention cut-offs (the library applies one to every type), and for each
one prediction pass at a low threshold, with confidences, filtered per candidate threshold:

- one global threshold, the best micro F1 over every unit (structure fields and relations use it, and so
  does ``gliner2`` alone, which knows nothing of per-type thresholds);
- per entity type, starting from the global one, the threshold that gives the best micro F1 with the other
  types at theirs (a rare type goes lower only while what it finds outweighs what it adds wrongly);

and keeps the cut-off whose per-type choice scores the best micro F1. The cut-off goes into the boundary
settings (``config.json``; ``outrider.json`` for adapters, which carry no config of their own); the
global threshold is moved to 0.5 by adding ``logit(0.5) - logit(t)`` to the pair scorer's constant term
(``pair_scorer.compat_mix.bias``, scaled by its ``1/sqrt(pair_dim)``): every candidate's logit moves by the
same amount, so the ranking is unchanged and a request at 0.5 gets what the chosen threshold gave. The
per-type thresholds are stored on that shifted scale (``label_thresholds`` in ``outrider.json``), where
serving applies them by default (``backends/encoder_gliner.py``). On dense data (the demo set) the search
keeps the library's values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from outrider.backends.encoder_adapters import set_abstention
from outrider.training.metrics import RELATIONS_KEY, Tally, TallyBook, extraction_tallies, gold_units

ABSTENTION_CANDIDATES = (0.5, 0.8, 0.95, 1.0)
DECISION_CANDIDATES = (0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05)
SEARCH_THRESHOLD = min(DECISION_CANDIDATES)  # one pass at the lowest, filtered for the others
CALIBRATION_RECORDS = 500  # validation records the search looks at (rare types need every one there is)


@dataclass(frozen=True)
class Calibration:
    abstention_threshold: float
    decision_threshold: float  # what the raw model needed; served at 0.5 after the shift
    # per entity type, on the served (shifted) scale: what a request without a threshold of its own uses
    label_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def logit_shift(self) -> float:
        return _logit(0.5) - _logit(self.decision_threshold)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def served_threshold(raw: float, shift: float) -> float:
    """A threshold on the raw model's scale, as it reads after every logit moved by ``shift``."""
    return round(1 / (1 + math.exp(-(_logit(raw) + shift))), 4)


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


def with_label_thresholds(schema: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """A ``gliner2.Schema.from_dict`` schema whose entity types carry their calibrated thresholds (as
    ``{name: {"description"?, "threshold"}}``; a type without one keeps the call's threshold)."""
    entities = schema.get("entities")
    if not entities or not thresholds:
        return schema
    described = entities if isinstance(entities, dict) else dict.fromkeys(entities)
    out: dict[str, dict[str, Any]] = {}
    for name, description in described.items():
        item: dict[str, Any] = {"description": description} if description and description != name else {}
        if name in thresholds:
            item["threshold"] = thresholds[name]
        out[name] = item
    return {**schema, "entities": out}


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
    entity_types = _entity_types(sample)
    choices: dict[float, tuple[float, float, dict[str, float]]] = {}  # cut-off -> (micro F1, global, per type)
    for abstention in ABSTENTION_CANDIDATES:
        set_abstention(core, abstention)
        predictions = predict_at(sample, SEARCH_THRESHOLD)
        books = {
            t: extraction_tallies(sample, [keep_confident(p, t, structures) for p in predictions])
            for t in DECISION_CANDIDATES
        }
        choices[abstention] = _choose_thresholds(books, entity_types)
    # ties keep the library's values (abstention 0.5, threshold 0.5) as far as they can
    best = max(choices, key=lambda a: (choices[a][0], -a, choices[a][1]))
    _, decision, per_type = choices[best]
    set_abstention(core, best)
    shift = _logit(0.5) - _logit(decision)
    served = {label: served_threshold(t, shift) for label, t in per_type.items()}
    return Calibration(abstention_threshold=best, decision_threshold=decision, label_thresholds=served)


def _entity_types(records: list[dict[str, Any]]) -> list[str]:
    """Entity types that have a gold mention in ``records`` (the others cannot be calibrated), in the order
    the records name them: the stored thresholds keep it, and a model trained on one label order scores
    best with its labels in that order (a schema built from the thresholds is)."""
    declared: dict[str, bool] = {}  # every type in the order the records declare it -> has a mention
    for record in records:
        entities = record["output"].get("entities") or {}
        pairs = entities.items() if isinstance(entities, dict) else ((e["label"], [e]) for e in entities)
        for label, mentions in pairs:
            declared[label] = declared.get(label, False) or bool(mentions)
    return [label for label, found in declared.items() if found]


def _choose_thresholds(books: dict[float, TallyBook], entity_types: list[str]) -> tuple[float, float, dict[str, float]]:
    """From tallies per candidate threshold: the best global threshold (micro F1), then per entity type the
    threshold that gives the best micro F1 with the other types at theirs (two rounds over the types,
    starting from the global one), and that micro F1 (every other label at the global threshold). Ties keep
    the global threshold nearest the library's 0.5 and each type's nearest the global one (then the higher).

    Micro F1, not each type's own F1: on WNUT-17 (150 validation sentences) each type at its own best F1
    took the rare types down to thresholds of 0.05-0.07, where they found a few more mentions and many more
    wrong ones: dev F1 0.23 (precision 0.17) against 0.29 with one global threshold."""

    def f1(tally: Tally) -> float:
        return float(tally.figures()["f1"])

    labels = set().union(*(book.per_label for book in books.values()))

    def micro(per_type: dict[str, float]) -> float:
        combined = Tally()
        for label in labels:
            combined.add(books[per_type.get(label, decision)].label(label))
        return f1(combined)

    decision = max(books, key=lambda t: (f1(books[t].total()), -abs(t - 0.5), t))
    per_type = dict.fromkeys(entity_types, decision)
    for _ in range(2):
        for label in entity_types:
            per_type[label] = max(books, key=lambda t: (micro({**per_type, label: t}), -abs(t - decision), t))
    return micro(per_type), decision, per_type
