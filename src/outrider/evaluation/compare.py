"""Two models on the same examples: per-label differences and a paired bootstrap.

The bootstrap (Koehn, 2004; Efron and Tibshirani) resamples the examples with replacement ``resamples``
times, the same draw for both models, and recomputes each figure's difference (candidate minus baseline).
Reported per figure: the observed difference, the 95% interval of the resampled differences, and a
two-sided p-value: twice the share of resamples on the far side of zero (at most 1). A small p-value says
the difference is unlikely to be an accident of which examples the set happens to hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from outrider.evaluation.scoring import ExampleScores

RESAMPLES = 1000


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=np.float64), where=denominator > 0)


def micro_f1(summed: np.ndarray) -> float:
    tp, fp, fn = summed.sum(axis=0)
    return float(_f1(np.array(tp), np.array(fp), np.array(fn)))


def macro_f1(summed: np.ndarray) -> float:
    """Mean F1 over the labels that occur (in the gold answers or the predictions) in this sample."""
    present = summed.sum(axis=1) > 0
    if not present.any():
        return 0.0
    return float(_f1(summed[present, 0], summed[present, 1], summed[present, 2]).mean())


def _aligned(a: ExampleScores, b: ExampleScores) -> tuple[np.ndarray, np.ndarray]:
    """Both models' tallies over the union of their labels (a label one of them never touched counts zero)."""
    labels = sorted(set(a.labels) | set(b.labels))

    def widen(scores: ExampleScores) -> np.ndarray:
        out = np.zeros((scores.tallies.shape[0], len(labels), 3), dtype=np.int64)
        for j, label in enumerate(scores.labels):
            out[:, labels.index(label)] = scores.tallies[:, j]
        return out

    return widen(a), widen(b)


def paired_bootstrap(
    baseline: np.ndarray, candidate: np.ndarray, figure: Callable[[np.ndarray], float], resamples: int, seed: int
) -> dict[str, Any]:
    """``figure`` maps per-example rows (summed over the sample's examples) to a number."""
    n, shape = baseline.shape[0], baseline.shape[1:]
    flat_b, flat_c = baseline.reshape(n, -1), candidate.reshape(n, -1)
    observed_b, observed_c = figure(baseline.sum(axis=0)), figure(candidate.sum(axis=0))
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    for r in range(resamples):
        # How often each example is drawn: the sample's sums are one product, without copying the rows.
        weights = np.bincount(rng.integers(0, n, n), minlength=n)
        deltas[r] = figure((weights @ flat_c).reshape(shape)) - figure((weights @ flat_b).reshape(shape))
    low, high = np.percentile(deltas, [2.5, 97.5])
    p_value = min(1.0, 2 * min(float((deltas <= 0).mean()), float((deltas >= 0).mean())))
    return {
        "baseline": round(observed_b, 6),
        "candidate": round(observed_c, 6),
        "difference": round(observed_c - observed_b, 6),
        "ci95": [round(float(low), 6), round(float(high), 6)],
        "p_value": round(p_value, 6),
    }


def compare(
    baseline: ExampleScores,
    candidate: ExampleScores,
    baseline_labels: dict[str, dict[str, Any]],
    candidate_labels: dict[str, dict[str, Any]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-label differences (candidate minus baseline) and the bootstrap of the headline figures: micro and
    macro F1 for extraction, accuracy and macro F1 for classification."""
    if baseline.tallies.shape[0] != candidate.tallies.shape[0]:
        raise ValueError("both models must be scored on the same examples")
    a, b = _aligned(baseline, candidate)
    figures: dict[str, Any] = {}
    if baseline.tallies.shape[0]:
        if baseline.correct is not None and candidate.correct is not None:
            n = baseline.correct.shape[0]

            def accuracy(summed: np.ndarray) -> float:
                return float(summed[0]) / n

            rows_a, rows_b = baseline.correct.reshape(n, 1), candidate.correct.reshape(n, 1)
            figures["accuracy"] = paired_bootstrap(rows_a, rows_b, accuracy, resamples, seed)
        else:
            figures["micro_f1"] = paired_bootstrap(a, b, micro_f1, resamples, seed)
        figures["macro_f1"] = paired_bootstrap(a, b, macro_f1, resamples, seed)
    per_label = {}
    for label in sorted(set(baseline_labels) | set(candidate_labels)):
        old, new = baseline_labels.get(label, {}), candidate_labels.get(label, {})
        per_label[label] = {
            key: {
                "baseline": old.get(key, 0.0),
                "candidate": new.get(key, 0.0),
                "difference": round(new.get(key, 0.0) - old.get(key, 0.0), 6),
            }
            for key in ("precision", "recall", "f1")
        }
    return {"figures": figures, "per_label": per_label, "resamples": resamples, "examples": int(a.shape[0])}
