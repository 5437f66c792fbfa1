"""Inference history and feedback over real HTTP, and isolation between accounts."""

from datetime import UTC, datetime, timedelta

from tests.api.test_inference import DEMO, TEXT
from tests.conftest import make_settings, new_account, start_server
from tests.waiting import wait_until

SCHEMA = {"entities": ["person", "company"], "relations": ["works_for"]}


def run(client, text=TEXT, **extra):
    body = {"model_id": DEMO, "text": text, "schema": SCHEMA, **extra}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_call_is_recorded_with_its_input_output_and_usage(server, admin):
    with server.client(new_account(admin, "history-a")) as client:
        body = run(client, project_id="proj-1")
        record = client.get(f"/inferences/{body['inference_id']}").json()
        assert record["input"]["text"] == TEXT and record["input"]["schema"]["entities"][0]["name"] == "person"
        assert record["output"] == body["result"] and record["status"] == "success"
        assert record["model_id"] == DEMO and record["task"] == "extract" and record["project_id"] == "proj-1"
        assert record["usage"] == body["usage"] and record["latency_ms"] > 0 and record["feedback"] is None


def test_store_false_is_not_recorded(server, admin):
    key = new_account(admin, "history-nostore")
    with server.client(key) as client:
        body = run(client, store=False)
        assert body["inference_id"] is None
        assert client.get("/inferences").json()["total"] == 0


def test_listing_filters_and_paginates(server, admin):
    key = new_account(admin, "history-filters")
    with server.client(key) as client:
        for i in range(5):
            run(client, project_id="p-even" if i % 2 == 0 else "p-odd")
        smol = client.post(
            "/inference",
            json={
                "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
                "task": "generate",
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ).json()
        page = client.get("/inferences", params={"limit": 2, "offset": 0}).json()
        assert page["total"] == 6 and len(page["inferences"]) == 2 and page["limit"] == 2
        assert page["inferences"][0]["inference_id"] == smol["inference_id"]  # newest first
        rest = client.get("/inferences", params={"limit": 10, "offset": 2}).json()["inferences"]
        assert len(rest) == 4
        assert client.get("/inferences", params={"project_id": "p-even"}).json()["total"] == 3
        assert client.get("/inferences", params={"task": "generate"}).json()["total"] == 1
        assert client.get("/inferences", params={"model_id": DEMO}).json()["total"] == 5
        assert client.get("/inferences", params={"training_job_id": "job_none"}).json()["total"] == 0
        future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert client.get("/inferences", params={"since": future}).json()["total"] == 0
        assert client.get("/inferences", params={"until": future}).json()["total"] == 6
        assert client.get("/inferences", params={"min_latency_ms": 10**9}).json()["total"] == 0
        assert client.get("/inferences", params={"max_latency_ms": 10**9}).json()["total"] == 6
        assert client.get("/inferences", params={"limit": 0}).status_code == 422


def test_feedback_correct_and_corrections_that_match_the_schema(server, admin):
    key = new_account(admin, "history-feedback")
    with server.client(key) as client:
        inference_id = run(client)["inference_id"]
        ok = client.post(f"/inferences/{inference_id}/feedback", json={"verdict": "correct", "notes": "fine"})
        assert ok.status_code == 200 and ok.json()["verdict"] == "correct"
        correction = {
            "entities": {"person": ["Anna Schmidt"], "company": ["Netflix"]},
            "relations": {"works_for": [{"head": "Anna Schmidt", "tail": "Netflix"}]},
        }
        fixed = client.post(
            f"/inferences/{inference_id}/feedback", json={"verdict": "incorrect", "corrected_output": correction}
        )
        assert fixed.status_code == 200, fixed.text
        record = client.get(f"/inferences/{inference_id}").json()
        assert record["feedback"]["verdict"] == "incorrect" and record["feedback"]["corrected_output"] == correction


def test_feedback_is_validated(server, admin):
    key = new_account(admin, "history-feedback-bad")
    with server.client(key) as client:
        inference_id = run(client)["inference_id"]
        url = f"/inferences/{inference_id}/feedback"
        assert client.post(url, json={"verdict": "incorrect"}).status_code == 422
        assert client.post(url, json={"verdict": "maybe"}).status_code == 422
        wrong_label = client.post(
            url, json={"verdict": "incorrect", "corrected_output": {"entities": {"animal": ["cat"]}}}
        )
        assert wrong_label.status_code == 422 and "animal" in wrong_label.json()["detail"]
        wrong_shape = client.post(url, json={"verdict": "incorrect", "corrected_output": {"entities": {"person": "x"}}})
        assert wrong_shape.status_code == 422 and "list" in wrong_shape.json()["detail"]
        bad_relation = client.post(
            url, json={"verdict": "incorrect", "corrected_output": {"relations": {"works_for": [{"head": "a"}]}}}
        )
        assert bad_relation.status_code == 422 and "tail" in bad_relation.json()["detail"]
        assert client.post("/inferences/inf_missing/feedback", json={"verdict": "correct"}).status_code == 404


def test_one_account_can_never_read_anothers_history(server, admin):
    key_a, key_b = new_account(admin, "iso-a"), new_account(admin, "iso-b")
    with server.client(key_a) as a, server.client(key_b) as b:
        inference_id = run(a)["inference_id"]
        assert b.get(f"/inferences/{inference_id}").status_code == 404
        assert b.post(f"/inferences/{inference_id}/feedback", json={"verdict": "correct"}).status_code == 404
        assert inference_id not in [i["inference_id"] for i in b.get("/inferences").json()["inferences"]]
        assert a.get(f"/inferences/{inference_id}").status_code == 200


def test_a_restart_keeps_history_accounts_and_keys(tmp_path, base_models_dir, demo_model_dir):
    settings = make_settings(tmp_path, base_models_dir, model_dirs=[demo_model_dir])
    first = start_server(settings)
    try:
        with first.client() as client:
            key = new_account(client, "survivor")
        with first.client(key) as client:
            inference_id = run(client)["inference_id"]
    finally:
        first.stop()
    # The same data directory is opened again: only once the first server has shut down and let go of it.
    wait_until(lambda: not first.thread.is_alive(), what="the first server to shut down")
    second = start_server(make_settings(tmp_path, base_models_dir, model_dirs=[demo_model_dir]))
    try:
        with second.client(key) as client:
            assert client.get(f"/inferences/{inference_id}").json()["output"]["entities"]["person"] == ["Anna Schmidt"]
    finally:
        second.stop()
