"""Evaluation figures against hand-computed values."""

from __future__ import annotations

import pytest

from outrider.training.metrics import (
    answer_metrics,
    classification_metrics,
    encoder_metrics,
    extraction_metrics,
    records_classification_metrics,
)
from outrider.training.splits import split_records


def ner(text: str, **entities: list[str]) -> dict:
    return {"input": text, "output": {"entities": entities}}


def test_entity_spans_are_scored_by_exact_match_per_label_and_micro_overall():
    gold = [
        ner("Tim Cook runs Apple in Cupertino.", person=["Tim Cook"], company=["Apple"], location=["Cupertino"]),
        ner("Lisa Su leads AMD.", person=["Lisa Su"], company=["AMD"], location=[]),
    ]
    predictions = [
        # person right, company missed, one wrong location span ("Cupertino." is not an exact match)
        {"entities": {"person": ["Tim Cook"], "company": [], "location": ["Cupertino."]}},
        # with confidences and spans, as the serving path asks for them; "Lisa" is a false positive
        {"entities": {"person": [{"text": "Lisa Su", "confidence": 0.9}, {"text": "Lisa", "confidence": 0.6}]}},
    ]
    figures = extraction_metrics(gold, predictions)
    # tp: Tim Cook, Lisa Su = 2; fp: Cupertino., Lisa = 2; fn: Apple, Cupertino, AMD = 3
    assert figures["precision"] == pytest.approx(2 / 4)
    assert figures["recall"] == pytest.approx(2 / 5)
    assert figures["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert figures["support"] == 5
    person = figures["per_label"]["person"]
    assert (person["precision"], person["recall"], person["support"]) == (pytest.approx(2 / 3), 1.0, 2)
    assert figures["per_label"]["company"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert figures["per_label"]["location"]["support"] == 1


def test_a_mention_repeated_in_gold_must_be_found_as_often():
    gold = [ner("Paris, Paris and Rome.", city=["Paris", "Paris", "Rome"])]
    figures = extraction_metrics(gold, [{"entities": {"city": ["Paris", "Rome"]}}])
    assert (figures["precision"], figures["recall"]) == (1.0, pytest.approx(2 / 3))


def test_structure_fields_and_relations_are_units_of_their_own():
    gold = [
        {
            "input": "Lucas Martin of Philips showed the Surface Duo for $199.",
            "output": {
                "json_structures": [{"product": {"name": "Surface Duo", "price": "$199"}}],
                "relations": [{"works_for": {"head": "Lucas Martin", "tail": "Philips"}}],
            },
        }
    ]
    prediction = {
        "product": [{"name": {"text": "Surface Duo", "confidence": 0.99}, "price": "$1"}],
        "relation_extraction": {"works_for": [("Lucas Martin", "Philips")]},
    }
    figures = extraction_metrics(gold, [prediction])
    # product.name and works_for right; product.price wrong ($1): tp 2, fp 1, fn 1
    assert (figures["precision"], figures["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert figures["per_label"]["product.price"]["f1"] == 0.0
    assert figures["per_label"]["works_for"]["f1"] == 1.0
    # the dict form of a predicted relation counts the same
    as_dicts = {
        **prediction,
        "relation_extraction": {"works_for": [{"head": {"text": "Lucas Martin"}, "tail": "Philips"}]},
    }
    assert extraction_metrics(gold, [as_dicts])["per_label"]["works_for"]["f1"] == 1.0


def test_classification_macro_figures_and_accuracy():
    gold = [["a"], ["a"], ["b"], ["c"]]
    predicted = [["a"], ["b"], ["b"], ["a"]]
    figures = classification_metrics(gold, predicted)
    # a: tp 1, fp 1, fn 1 -> p 1/2 r 1/2 f1 1/2; b: tp 1 fp 1 fn 0 -> p 1/2 r 1 f1 2/3; c: 0 0 0
    assert figures["accuracy"] == 0.5
    assert figures["precision"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert figures["recall"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert figures["f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert figures["per_label"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}


def test_classification_from_records_reads_every_prediction_shape():
    def record(label: str) -> dict:
        return {
            "input": "x",
            "output": {"classifications": [{"task": "intent", "labels": ["a", "b"], "true_label": [label]}]},
        }

    records = [record("a"), record("b"), record("b")]
    predictions = [{"intent": "a"}, {"intent": {"label": "b", "confidence": 0.7}}, {"intent": [{"label": "a"}]}]
    figures = records_classification_metrics(records, predictions)
    assert figures["accuracy"] == pytest.approx(2 / 3)
    # a: tp 1 fp 1 fn 0 -> f1 2/3; b: tp 1 fp 0 fn 1 -> f1 2/3
    assert figures["f1"] == pytest.approx(2 / 3)


def test_the_job_figures_lead_with_spans_and_keep_classification_apart():
    records = [
        {
            "input": "Tim Cook runs Apple.",
            "output": {
                "entities": {"person": ["Tim Cook"]},
                "classifications": [{"task": "topic", "labels": ["tech", "food"], "true_label": ["tech"]}],
            },
        }
    ]
    figures = encoder_metrics(records, [{"entities": {"person": ["Tim Cook"]}, "topic": "food"}])
    assert (figures["f1"], figures["accuracy"]) == (1.0, 0.0)
    assert figures["extraction"]["f1"] == 1.0
    assert figures["classification"]["per_label"]["food"]["precision"] == 0.0
    only_classes = encoder_metrics(
        [{**records[0], "output": {"classifications": records[0]["output"]["classifications"]}}], [{"topic": "tech"}]
    )
    assert (only_classes["f1"], only_classes["accuracy"], only_classes["examples"]) == (1.0, 1.0, 1)


def test_answer_exact_match_and_token_f1():
    figures = answer_metrics(["The cat sat.", "a dog", ""], ["cat sat", "the red dog", ""])
    # 1: normalised equal -> em 1, f1 1; 2: "dog" vs "red dog" -> p 1, r 1/2, f1 2/3; 3: both empty -> 1
    assert figures["exact_match"] == pytest.approx(2 / 3)
    assert figures["f1"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert figures["precision"] == pytest.approx(1.0)
    assert figures["recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    with pytest.raises(ValueError):
        answer_metrics(["a"], [])


def test_the_validation_split_is_deterministic_by_seed():
    records = list(range(100))
    train, val = split_records(records, 0.2, seed=7)
    assert len(val) == 20 and sorted(train + val) == records
    assert split_records(records, 0.2, seed=7) == (train, val)
    assert split_records(records, 0.2, seed=8)[1] != val
    assert split_records(records, 0.0, seed=7) == (split_records(records, 0.0, seed=7)[0], [])
    assert len(split_records([1, 2], 0.01)[1]) == 1  # any fraction holds out one, never every example
