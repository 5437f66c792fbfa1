"""Evaluations over real HTTP: models scored on a dataset version by the worker, compared, isolated per account."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from outrider.training.demo_data import demo_records
from tests.conftest import SMOL, new_account

DEMO = "demo-extractor"
MINILM = "outrider/gliner2-minilm-l6"


def ner_examples(count: int) -> list[dict]:
    """Demo sentences (new sentences from the names the demo extractor was trained on), as NER examples."""
    examples = []
    for record in demo_records(count, seed=7):
        text, entities = record["input"], []
        for label, mentions in record["output"]["entities"].items():
            for mention in mentions:
                start = text.index(mention)
                entities.append({"start": start, "end": start + len(mention), "label": label, "text": mention})
        examples.append({"text": text, "entities": sorted(entities, key=lambda e: e["start"])})
    return examples


def upload(client: httpx.Client, name: str, task_type: str, examples: list[dict]) -> None:
    body = "".join(json.dumps(e) + "\n" for e in examples)
    response = client.post("/datasets", params={"name": name, "task_type": task_type}, content=body)
    assert response.status_code == 201, response.text


def wait_done(client: httpx.Client, evaluation_id: str, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while True:
        evaluation = client.get(f"/evaluations/{evaluation_id}").json()
        if evaluation["status"] in ("complete", "failed", "stopped"):
            return evaluation
        assert time.time() < deadline, evaluation
        time.sleep(0.3)


@pytest.fixture(scope="module")
def owner(server, admin):
    with server.client(new_account(admin, "evaluations")) as client:
        upload(client, "held-out", "ner", ner_examples(24))
        upload(
            client,
            "intents",
            "classification",
            [{"text": t, "label": label} for t, label in [("Where is my card?", "card"), ("Reset my PIN", "pin")] * 4],
        )
        upload(
            client,
            "chat",
            "decoder",
            [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}],
        )
        assert client.put("/deployments/ner", json={"model_id": DEMO}).status_code in (200, 201)
        yield client


@pytest.fixture(scope="module")
def compared(owner):
    """The base model against the fine-tuned one (through its deployment name) on held-out NER data."""
    # The demo extractor was trained with its labels in this order (GLiNER2 reads them as one prompt).
    order = ["person", "company", "location"]
    body = {"models": [MINILM, "@ner"], "dataset": "held-out", "version": 1, "labels": order}
    created = owner.post("/evaluations", json=body)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "queued" and body["id"].startswith("eval_")
    assert body["models"] == [{"model_id": MINILM, "model_used": MINILM}, {"model_id": "@ner", "model_used": DEMO}]
    assert body["dataset"] == {"name": "held-out", "version": 1, "task_type": "ner", "examples": 24}
    assert body["labels"] == order
    return wait_done(owner, body["id"])


def test_an_evaluation_scores_each_model_per_label_with_latency(compared):
    assert compared["status"] == "complete", compared["error"]
    base, tuned = compared["results"]
    assert tuned["model_id"] == "@ner" and tuned["model_used"] == DEMO and tuned["examples"] == 24
    metrics = tuned["metrics"]
    assert set(metrics["per_label"]) == {"company", "location", "person"}
    assert metrics["micro"]["f1"] > 0.8, metrics
    assert metrics["micro"]["f1"] > base["metrics"]["micro"]["f1"] + 0.3
    assert 0 <= metrics["macro"]["f1"] <= 1 and metrics["per_label"]["person"]["support"] == 24
    latency = tuned["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"] and latency["mean"] > 0
    assert tuned["tokens"] > 0 and tuned["cost_usd"] > 0  # demo-extractor is priced in the tests
    assert compared["progress"]["example"] == 24


def test_the_comparison_has_per_label_differences_and_a_bootstrap(compared):
    [comparison] = compared["comparisons"]
    assert comparison["baseline"] == MINILM and comparison["candidate"] == "@ner"
    micro = comparison["figures"]["micro_f1"]
    assert micro["difference"] > 0.3 and micro["ci95"][0] > 0 and micro["p_value"] < 0.05
    assert set(comparison["figures"]) == {"micro_f1", "macro_f1"} and comparison["resamples"] == 1000
    person = comparison["per_label"]["person"]["f1"]
    base = compared["results"][0]
    assert person["baseline"] == base["metrics"]["per_label"].get("person", {}).get("f1", 0.0)
    assert abs(person["difference"] - (person["candidate"] - person["baseline"])) < 1e-6


def test_classification_gets_accuracy_macro_f1_and_a_confusion_matrix(owner):
    created = owner.post("/evaluations", json={"models": [DEMO], "dataset": "intents", "max_examples": 6})
    assert created.status_code == 201, created.text
    done = wait_done(owner, created.json()["id"])
    assert done["status"] == "complete", done["error"]
    [result] = done["results"]
    metrics = result["metrics"]
    assert result["examples"] == 6 and 0 <= metrics["accuracy"] <= 1 and "f1" in metrics["macro"]
    matrix = metrics["confusion_matrix"]
    assert {"card", "pin"} <= set(matrix["labels"]) and sum(map(sum, matrix["matrix"])) == 6
    assert done["comparisons"] == []


JSON_CHAT = [
    {"messages": [{"role": "user", "content": f"Give {name}'s age as JSON."}, {"role": "assistant", "content": answer}]}
    for name, answer in [("Anna", '{"age": 31}'), ("Ben", '{"age": 40}'), ("Cleo", "forty")]
]
AGE_SCHEMA = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}


def test_decoders_get_exact_match_json_and_schema_valid_rates_with_latency_and_cost(owner):
    """SmolLM2 against itself through a deployment: the same greedy answers, so every difference is zero."""
    upload(owner, "json-chat", "decoder", JSON_CHAT)
    assert owner.put("/deployments/chat", json={"model_id": SMOL}).status_code in (200, 201)
    body = {"models": [SMOL, "@chat"], "dataset": "json-chat", "max_tokens": 12, "json_schema": AGE_SCHEMA}
    created = owner.post("/evaluations", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["max_tokens"] == 12 and created.json()["labels"] == []
    done = wait_done(owner, created.json()["id"])
    assert done["status"] == "complete", done["error"]
    smol, deployed = done["results"]
    assert deployed["model_used"] == SMOL and smol["examples"] == 3 and done["json_schema"] == AGE_SCHEMA
    metrics = smol["metrics"]
    assert set(metrics) == {"exact_match", "json_valid", "schema_valid", "errors"} and metrics["errors"] == 0
    for rate in ("exact_match", "json_valid", "schema_valid"):
        assert metrics[rate] in (0.0, round(1 / 3, 6), round(2 / 3, 6), 1.0)  # a share of 3 examples
    assert metrics["schema_valid"] <= metrics["json_valid"]
    assert deployed["metrics"] == metrics  # greedy: the same answers
    assert smol["tokens"] > 0 and smol["cost_usd"] > 0 and smol["cost_usd_per_example"] > 0  # SmolLM2 is priced
    assert 0 < smol["latency_ms"]["p50"] <= smol["latency_ms"]["max"]
    [comparison] = done["comparisons"]
    assert set(comparison["figures"]) == {"exact_match", "json_valid", "schema_valid"}
    assert all(f["difference"] == 0 and f["p_value"] == 1 for f in comparison["figures"].values())


def test_evaluations_are_listed_and_other_accounts_get_404s(server, admin, owner, compared):
    listed = owner.get("/evaluations").json()
    assert compared["id"] in [e["id"] for e in listed["evaluations"]] and listed["total"] >= 1
    with server.client(new_account(admin, "evaluations-other")) as other:
        assert other.get(f"/evaluations/{compared['id']}").status_code == 404
        assert other.get("/evaluations").json()["total"] == 0
        theirs = other.post("/evaluations", json={"models": [DEMO], "dataset": "held-out"})
        assert theirs.status_code == 404 and "held-out" in theirs.json()["detail"]
        upload(other, "mine", "ner", ner_examples(2))
        deployment = other.post("/evaluations", json={"models": ["@ner"], "dataset": "mine"})
        assert deployment.status_code == 404  # the first account's deployment name means nothing here
    assert owner.get("/evaluations/eval_0123456789abcdef01234567").status_code == 404
    # A training job's id is not an evaluation.
    assert owner.get(f"/evaluations/{compared['id'].replace('eval_', 'ft_')}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"models": [], "dataset": "held-out"}, 422, "models"),
        ({"models": [DEMO] * 2, "dataset": "held-out"}, 422, "models"),
        ({"models": [DEMO, MINILM, "a", "b", "c", "d"], "dataset": "held-out"}, 422, "models"),
        ({"models": [SMOL], "dataset": "held-out"}, 422, "decoder"),
        ({"models": [DEMO], "dataset": "chat"}, 422, "decoder"),
        ({"models": [SMOL], "dataset": "chat", "labels": ["a"]}, 422, "labels"),
        ({"models": [SMOL], "dataset": "chat", "json_schema": {"type": 5}}, 422, "json_schema"),
        ({"models": [DEMO], "dataset": "held-out", "json_schema": {"type": "object"}}, 422, "json_schema"),
        ({"models": [SMOL], "dataset": "chat", "max_tokens": 0}, 422, "max_tokens"),
        ({"models": [DEMO], "dataset": "held-out", "threshold": 2}, 422, "threshold"),
        ({"models": [DEMO], "dataset": "held-out", "max_examples": 0}, 422, "max_examples"),
        ({"models": [DEMO], "dataset": "held-out", "version": 99}, 404, "version 99"),
        ({"models": [DEMO], "dataset": "nope"}, 404, "nope"),
        ({"models": ["no-such-model"], "dataset": "held-out"}, 404, "no-such-model"),
        ({"models": [DEMO], "dataset": "held-out", "extra": True}, 422, "extra"),
        ({"models": [DEMO], "dataset": "held-out", "labels": ["person"]}, 422, "company"),
        ({"models": [DEMO], "dataset": "held-out", "labels": ["person", "person"]}, 422, "once"),
        ({"models": [DEMO], "dataset": "held-out", "labels": ["person", "company", "location", "x" * 201]}, 422, "200"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(owner, body, status, field):
    response = owner.post("/evaluations", json=body)
    assert response.status_code == status, response.text
    assert field in json.dumps(response.json()["detail"])
