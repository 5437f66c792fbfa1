"""Evaluation figures and paired comparisons, on hand-made predictions whose answers are known."""

from __future__ import annotations

import numpy as np

from outrider.evaluation.compare import compare, macro_f1, micro_f1
from outrider.evaluation.scoring import evaluation_schema, gold_records, latency_figures, score

NER = [
    {
        "text": "Tim Cook runs Apple.",
        "entities": [
            {"start": 0, "end": 8, "label": "person", "text": "Tim Cook"},
            {"start": 14, "end": 19, "label": "company", "text": "Apple"},
        ],
    },
    {
        "text": "Sony hired Anna.",
        "entities": [
            {"start": 0, "end": 4, "label": "company", "text": "Sony"},
            {"start": 11, "end": 15, "label": "person", "text": "Anna"},
        ],
    },
]


def test_ner_figures_have_per_label_micro_and_macro():
    records = gold_records("ner", ["company", "person"], NER)
    predictions = [
        {"entities": {"person": ["Tim Cook"], "company": []}},  # misses Apple
        {"entities": {"person": ["Anna", "Hired"], "company": ["Sony"]}},  # one false person
    ]
    figures, scores = score("ner", records, predictions)
    assert figures["per_label"]["company"]["recall"] == 0.5 and figures["per_label"]["company"]["precision"] == 1.0
    assert figures["per_label"]["person"]["precision"] == 2 / 3 and figures["per_label"]["person"]["recall"] == 1.0
    assert abs(figures["micro"]["f1"] - 0.75) < 1e-9  # tp 3, fp 1, fn 1
    company_f1, person_f1 = 2 / 3, 0.8
    assert abs(figures["macro"]["f1"] - (company_f1 + person_f1) / 2) < 1e-9
    assert scores.tallies.shape == (2, 2, 3) and scores.tallies.sum(axis=(0, 1)).tolist() == [3, 1, 1]
    assert abs(micro_f1(scores.tallies.sum(axis=0)) - 0.75) < 1e-9
    assert abs(macro_f1(scores.tallies.sum(axis=0)) - figures["macro"]["f1"]) < 1e-9
    assert evaluation_schema("ner", ["company", "person"], NER) == {"entities": ["company", "person"]}


def classification(n: int) -> list[dict]:
    return [{"text": f"text {i}", "label": "yes" if i % 2 else "no"} for i in range(n)]


def test_classification_figures_and_confusion_matrix():
    examples = classification(4)
    records = gold_records("classification", ["no", "yes"], examples)
    predictions = [{"label": "no"}, {"label": "no"}, {"label": {"label": "no", "confidence": 0.9}}, {"label": "yes"}]
    figures, scores = score("classification", records, predictions)
    assert figures["accuracy"] == 0.75
    assert figures["confusion_matrix"] == {"labels": ["no", "yes"], "matrix": [[2, 0], [1, 1]]}
    assert abs(figures["macro"]["f1"] - (0.8 + 2 / 3) / 2) < 1e-9
    assert scores.correct.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_a_clearly_better_model_is_significant_and_an_identical_one_is_not():
    examples = classification(200)
    records = gold_records("classification", ["no", "yes"], examples)
    right = [{"label": e["label"]} for e in examples]
    coin = [{"label": "yes"} for _ in examples]  # half right
    base_figures, base = score("classification", records, coin)
    good_figures, good = score("classification", records, right)
    result = compare(base, good, base_figures["per_label"], good_figures["per_label"], resamples=300)
    accuracy = result["figures"]["accuracy"]
    assert accuracy["difference"] == 0.5 and accuracy["p_value"] < 0.01 and accuracy["ci95"][0] > 0.3
    assert result["per_label"]["no"]["f1"]["difference"] == 1.0
    same = compare(good, good, good_figures["per_label"], good_figures["per_label"], resamples=300)
    assert same["figures"]["accuracy"]["difference"] == 0 and same["figures"]["accuracy"]["p_value"] == 1.0


def test_extraction_comparison_aligns_labels_one_model_never_predicted():
    records = gold_records("ner", ["company", "person"], NER)
    empty = [{"entities": {}} for _ in NER]
    perfect = [
        {"entities": {"person": ["Tim Cook"], "company": ["Apple"]}},
        {"entities": {"person": ["Anna"], "company": ["Sony"]}},
    ]
    a_figures, a = score("ner", records, empty)
    b_figures, b = score("ner", records, perfect)
    result = compare(a, b, a_figures["per_label"], b_figures["per_label"], resamples=100)
    assert result["figures"]["micro_f1"]["difference"] == 1.0 and result["figures"]["macro_f1"]["candidate"] == 1.0
    assert np.isclose(result["per_label"]["person"]["recall"]["difference"], 1.0)


def test_latency_figures():
    assert latency_figures([10.0, 20.0, 30.0, 40.0]) == {"mean": 25.0, "p50": 20.0, "p95": 40.0, "max": 40.0}
    assert latency_figures([])["mean"] == 0.0
