"""Retrain policies over real HTTP: set per deployment, isolated per account, and a real run started by the
worker once enough corrections arrived (build, held-out split, training from the serving model, evaluation),
whose candidate is not switched in when it is not better by the margin."""

from __future__ import annotations

import httpx

from outrider.training.demo_data import demo_records
from tests.api.test_adaptive_loop import LABELS, MINILM
from tests.conftest import new_account
from tests.waiting import wait_until

POLICY = {"dataset": "policy-ner", "task_type": "ner", "min_corrections": 6, "margin": 1.0, "holdout_fraction": 0.3}


def correct_calls(client: httpx.Client, count: int) -> None:
    """``count`` calls to @policy, each corrected by a reviewer with its gold entities."""
    for record in demo_records(count, seed=11):
        body = {"model_id": "@policy", "text": record["input"], "schema": {"entities": LABELS}}
        answer = client.post("/inference", json=body)
        assert answer.status_code == 200, answer.text
        gold = {label: record["output"]["entities"][label] for label in LABELS}
        feedback = {"verdict": "incorrect", "corrected_output": {"entities": gold}}
        assert client.post(f"/inferences/{answer.json()['inference_id']}/feedback", json=feedback).status_code == 200


def test_policies_are_per_deployment_checked_and_isolated(server, admin):
    with server.client(new_account(admin, "retrain-policy")) as client:
        assert client.put("/deployments/quiet", json={"model_id": MINILM}).status_code == 201
        assert client.get("/deployments/quiet/retrain-policy").status_code == 404
        put = client.put("/deployments/@quiet/retrain-policy", json={**POLICY, "min_corrections": 1000})
        assert put.status_code == 201, put.text
        assert put.json()["deployment"] == "@quiet" and put.json()["run"] is None
        assert put.json()["training"] == {"training_type": "full", "nr_epochs": None}
        again = client.put("/deployments/quiet/retrain-policy", json={**POLICY, "margin": 0.1})
        assert again.status_code == 200 and again.json()["margin"] == 0.1
        for bad in ({**POLICY, "margin": 2}, {**POLICY, "task_type": "poems"}, {**POLICY, "holdout_fraction": 0.9}):
            assert client.put("/deployments/quiet/retrain-policy", json=bad).status_code == 422
        assert client.put("/deployments/nope/retrain-policy", json=POLICY).status_code == 404
        # Nothing reviewed yet: a run asked for now ends at once with nothing to learn from.
        now = client.post("/deployments/quiet/retrain")
        assert now.status_code == 202, now.text
        assert now.json()["run"]["stage"] == "done" and now.json()["run"]["outcome"] == "nothing new"
        with server.client(new_account(admin, "retrain-policy-other")) as other:
            assert other.get("/deployments/quiet/retrain-policy").status_code == 404
            assert other.post("/deployments/quiet/retrain").status_code == 404
            assert other.delete("/deployments/quiet/retrain-policy").status_code == 404
        assert client.delete("/deployments/quiet/retrain-policy").json() == {"deployment": "@quiet", "deleted": True}
        assert client.get("/deployments/quiet/retrain-policy").status_code == 404


def test_a_run_started_by_corrections_keeps_a_candidate_that_is_not_better_by_the_margin(server, admin):
    with server.client(new_account(admin, "retrain-run", credit_usd=20)) as client:
        assert client.put("/deployments/policy", json={"model_id": MINILM}).status_code == 201
        # One short epoch: the point is the pipeline; a margin of 1.0 cannot be met, so the candidate is kept.
        policy = {**POLICY, "min_corrections": 8, "nr_epochs": 1, "batch_size": 4}
        assert client.put("/deployments/policy/retrain-policy", json=policy).status_code == 201
        correct_calls(client, 8)  # the eighth correction starts the run (the worker checks every second here)

        def finished() -> dict | None:
            run = client.get("/deployments/policy/retrain-policy").json()["run"]
            return run if run and run["stage"] == "done" else None

        run = wait_until(finished, timeout=900, interval=1.0, what="the retrain run")
        assert run["outcome"] == "kept", run
        assert "less than the margin 1.0" in run["reason"] and run["serving"] == MINILM
        assert run["built"]["added"] == 8 and run["train"]["added"] + run["holdout"]["added"] == 8
        assert run["holdout"]["added"] >= 1 and run["train"]["added"] >= 1
        # Every step is a job of the account: the training continued from the serving model, then the evaluation.
        training = client.get(f"/felix/training-jobs/{run['training_job']}").json()
        assert training["status"] == "complete" and training["base_model"] == MINILM
        evaluation = client.get(f"/evaluations/{run['evaluation']}").json()
        assert evaluation["status"] == "complete"
        assert [m["model_id"] for m in evaluation["models"]] == [MINILM, run["candidate"]]
        assert evaluation["dataset"]["name"] == "policy-ner-holdout"
        # The held-out slice was never trained on.
        holdout = client.get("/datasets/policy-ner-holdout/versions/latest/examples").json()["examples"]
        train = client.get("/datasets/policy-ner-train/versions/latest/examples").json()["examples"]
        assert not {e["text"] for e in holdout} & {e["text"] for e in train}
        # The deployment still serves the same model; its history says why.
        deployment = client.get("/deployments/policy").json()
        assert deployment["target"] == MINILM
        kept = deployment["history"][0]
        assert kept["action"] == "retrain_kept" and kept["switched_by"] == "retrain policy"
        assert run["candidate"] in kept["note"] and "margin" in kept["note"]
        # A rollback skips the kept retrain: there is nothing earlier to go back to.
        assert client.post("/deployments/policy/rollback").status_code == 409
