"""The adaptive loop end to end through the API: serve under a deployment name, correct traffic, build a
dataset version from the corrections, retrain from the serving model, evaluate both, switch, roll back."""

from __future__ import annotations

import time

import httpx

from outrider.training.demo_data import demo_records
from tests.conftest import new_account

MINILM = "outrider/gliner2-minilm-l6"
LABELS = ["company", "location", "person"]  # sorted: the order Outrider's trainer uses


def wait(client: httpx.Client, path: str, timeout: float = 900) -> dict:
    deadline = time.time() + timeout
    while True:
        body = client.get(path).json()
        if body["status"] in ("complete", "failed", "stopped"):
            return body
        assert time.time() < deadline, body
        time.sleep(0.5)


def extract(client: httpx.Client, text: str) -> dict:
    response = client.post("/inference", json={"model_id": "@loop", "text": text, "schema": {"entities": LABELS}})
    assert response.status_code == 200, response.text
    return response.json()


def test_corrections_retrain_evaluate_and_switch_the_deployment(server, admin):
    records = demo_records(48, seed=3)
    with server.client(new_account(admin, "adaptive-loop", credit_usd=50)) as client:
        assert client.put("/deployments/loop", json={"model_id": MINILM}).status_code == 201
        served = [extract(client, r["input"]) for r in records]
        assert all(s["model_used"] == MINILM for s in served)
        # A reviewer corrects 40 of the 48 answers; 8 stay unreviewed.
        for answer, record in list(zip(served, records, strict=True))[:40]:
            gold = {label: record["output"]["entities"][label] for label in LABELS}
            feedback = {"verdict": "incorrect", "corrected_output": {"entities": gold}}
            response = client.post(f"/inferences/{answer['inference_id']}/feedback", json=feedback)
            assert response.status_code == 200, response.text
        built = client.post("/datasets/loop/from-inferences", json={"model_id": "@loop", "task_type": "ner"})
        assert built.status_code == 201, built.text
        assert built.json()["added"] + built.json()["skipped_duplicates"] == 40 and built.json()["unfit"] == []
        # Continue from the model the deployment serves now (its '@name' is a base_model).
        job = client.post(
            "/felix/training-jobs",
            json={
                "model_name": "loop-v2",
                "base_model": "@loop",
                "datasets": [{"name": "loop"}],
                "training_type": "full",
                "nr_epochs": 8,
                "batch_size": 4,
                "validation_fraction": 0,
            },
        )
        assert job.status_code == 201, job.text
        trained = wait(client, f"/felix/training-jobs/{job.json()['id']}")
        assert trained["status"] == "complete", trained["error"]
        candidate = trained["model_id"]
        evaluation = client.post("/evaluations", json={"models": ["@loop", candidate], "dataset": "loop"})
        assert evaluation.status_code == 201, evaluation.text
        scored = wait(client, f"/evaluations/{evaluation.json()['id']}")
        assert scored["status"] == "complete", scored["error"]
        before, after = (r["metrics"]["micro"]["f1"] for r in scored["results"])
        assert after > before + 0.2, scored["results"]
        assert scored["comparisons"][0]["figures"]["micro_f1"]["difference"] > 0.2
        # Better: switch. The same client call is now answered by the new model.
        switched = client.put(
            "/deployments/loop", json={"model_id": candidate, "note": f"F1 {before:.2f} -> {after:.2f}"}
        )
        assert switched.status_code == 200 and switched.json()["history"][0]["previous_target"] == MINILM
        again = extract(client, records[0]["input"])
        assert again["model_used"] == candidate and again["model_id"] == "@loop"
        # The corrected examples are now answered as the evaluation measured: the same figure, from served calls.
        tp = fp = fn = 0
        for record in records[:40]:
            result = extract(client, record["input"])["result"]["entities"]
            for label in LABELS:
                gold, predicted = set(record["output"]["entities"][label]), set(result[label])
                tp, fp, fn = tp + len(gold & predicted), fp + len(predicted - gold), fn + len(gold - predicted)
        assert abs(2 * tp / (2 * tp + fp + fn) - after) < 1e-9, (tp, fp, fn, after)
        print(f"adaptive loop: 40 of 48 answers corrected, micro F1 {before:.3f} -> {after:.3f}")
        assert client.post("/deployments/loop/rollback").json()["target"] == MINILM
        assert extract(client, records[0]["input"])["model_used"] == MINILM
        # A deployment whose target is deleted answers a 404 that says so, until it is pointed elsewhere.
        assert client.put("/deployments/loop", json={"model_id": candidate}).status_code == 200
        assert client.delete(f"/felix/training-jobs/{candidate}").status_code == 200
        gone = client.post("/inference", json={"model_id": "@loop", "text": "x", "schema": {"entities": LABELS}})
        assert gone.status_code == 404 and "no longer exists" in gone.json()["detail"]
        assert client.post("/deployments/loop/rollback").json()["target"] == MINILM
        assert extract(client, records[0]["input"])["model_used"] == MINILM
