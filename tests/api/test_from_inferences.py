"""Corrections to data over real HTTP: reviewed inference records appended to a dataset as a new version."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import new_account

DEMO = "demo-extractor"
SCHEMA = {"entities": ["person", "company"]}
TEXTS = [
    "Anna Schmidt works for Netflix.",
    "Tim Cook runs Apple in Cupertino.",
    "Maria Lopez joined Sony last year.",
    "David Kim left Google.",
    "Omar Haddad founded Nokia Labs.",
]


def infer(client: httpx.Client, text: str, model_id: str = DEMO, **extra) -> str:
    body = {"model_id": model_id, "text": text, "schema": SCHEMA, "include_spans": True, **extra}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()["inference_id"]


def feedback(client: httpx.Client, inference_id: str, verdict: str, corrected=None) -> None:
    body = {"verdict": verdict} if corrected is None else {"verdict": verdict, "corrected_output": corrected}
    response = client.post(f"/inferences/{inference_id}/feedback", json=body)
    assert response.status_code == 200, response.text


def build(client: httpx.Client, name: str, status: int, **body) -> dict:
    response = client.post(f"/datasets/{name}/from-inferences", json=body)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def reviewed(server, admin):
    """An account with reviewed traffic: 2 corrected, 1 confirmed, 1 correction that does not fit its text,
    1 unreviewed; and an existing dataset holding the first text already."""
    key = new_account(admin, "from-inferences")
    with server.client(key) as client:
        ids = [infer(client, text, project_id="p1" if i < 4 else "p2") for i, text in enumerate(TEXTS)]
        feedback(client, ids[0], "incorrect", {"entities": {"person": ["Anna Schmidt"], "company": ["Netflix"]}})
        feedback(client, ids[1], "incorrect", {"entities": {"person": ["Tim Cook"], "company": ["Apple"]}})
        feedback(client, ids[2], "correct")
        feedback(client, ids[3], "incorrect", {"entities": {"person": ["Dave Kim"], "company": ["Google"]}})
        existing = {"text": TEXTS[0], "entities": [{"start": 0, "end": 12, "label": "person", "text": "Anna Schmidt"}]}
        uploaded = client.post(
            "/datasets", params={"name": "support", "task_type": "ner"}, content=json.dumps(existing)
        )
        assert uploaded.status_code == 201, uploaded.text
        yield client, ids


def test_corrections_and_confirmed_outputs_become_a_new_version(reviewed):
    client, ids = reviewed
    assert client.get("/inferences", params={"human_verdict": "incorrect"}).json()["total"] == 3
    assert client.get("/inferences", params={"human_verdict": "reviewed"}).json()["total"] == 4
    assert client.get("/inferences", params={"human_verdict": "unreviewed"}).json()["total"] == 1
    corrected = client.get(f"/inferences/{ids[1]}").json()
    assert corrected["human_verdict"] == "incorrect" and corrected["human_feedback_at"] is not None
    assert corrected["human_corrected_output"] == {"entities": {"person": ["Tim Cook"], "company": ["Apple"]}}
    assert client.get(f"/inferences/{ids[4]}").json()["human_verdict"] is None
    out = build(client, "support", 201)
    assert out["base_version"] == 1 and out["version"]["version"] == 2 and out["version"]["source"] == "inferences"
    assert out["records"] == 4 and out["added"] == 2 and out["skipped_duplicates"] == 1
    assert out["unfit_count"] == 1 and out["unfit"][0]["inference_id"] == ids[3]
    assert "'Dave Kim' does not occur" in out["unfit"][0]["reason"]
    examples = client.get("/datasets/support/versions/2/examples").json()["examples"]
    assert len(examples) == 3 and examples[0]["text"] == TEXTS[0]  # the old version's examples come first
    by_text = {e["text"]: e for e in examples}
    tim = by_text[TEXTS[1]]
    assert {(e["text"], e["label"]) for e in tim["entities"]} == {("Tim Cook", "person"), ("Apple", "company")}
    assert all(TEXTS[1][e["start"] : e["end"]] == e["text"] for e in tim["entities"])
    assert tim["metadata"] == {"inference_id": ids[1], "human_verdict": "incorrect"}
    assert by_text[TEXTS[2]]["metadata"]["human_verdict"] == "correct"
    # Built again: everything is in the dataset already, so no version is made.
    again = build(client, "support", 200)
    assert again["version"] is None and again["added"] == 0 and again["skipped_duplicates"] == 3
    assert client.get("/datasets/support").json()["latest_version"] == 2


def test_the_history_filter_selects_the_records(reviewed):
    client, _ = reviewed
    only_confirmed = build(client, "confirmed", 201, task_type="ner", human_verdict="correct")
    assert only_confirmed["records"] == 1 and only_confirmed["added"] == 1 and only_confirmed["base_version"] is None
    assert build(client, "by-project", 200, task_type="ner", project_id="p2")["records"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert build(client, "later", 200, task_type="ner", since=future)["records"] == 0
    assert build(client, "earlier", 201, task_type="ner", until=future, model_id=DEMO)["records"] == 4
    assert build(client, "other-model", 200, task_type="ner", model_id="@nothing")["records"] == 0


def test_records_of_a_deployment_are_selected_by_its_name(server, admin):
    with server.client(new_account(admin, "from-deployment")) as client:
        assert client.put("/deployments/ner", json={"model_id": DEMO}).status_code == 201
        deployed = infer(client, TEXTS[4], model_id="@ner")
        infer(client, TEXTS[1])
        feedback(client, deployed, "incorrect", {"entities": {"person": ["Omar Haddad"], "company": ["Nokia Labs"]}})
        out = build(client, "from-ner", 201, task_type="ner", model_id="@ner")
        assert out["records"] == 1 and out["added"] == 1
        [example] = client.get("/datasets/from-ner/versions/1/examples").json()["examples"]
        assert [e["text"] for e in example["entities"]] == ["Omar Haddad", "Nokia Labs"]


def test_other_accounts_records_and_datasets_are_invisible(server, admin, reviewed):
    with server.client(new_account(admin, "from-inferences-other")) as other:
        missing = other.post("/datasets/support/from-inferences", json={})
        assert missing.status_code == 404 and "support" in missing.json()["detail"]
        # Its own dataset of the same name, from its own (empty) history: nothing to add.
        out = build(other, "support", 200, task_type="ner")
        assert out["records"] == 0 and out["version"] is None
    client, _ = reviewed
    assert client.get("/datasets/support").json()["latest_version"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_type": "images"}, "task_type"),
        ({"human_verdict": "maybe"}, "human_verdict"),
        ({"max_records": 0}, "max_records"),
        ({"max_records": 10_001}, "max_records"),
        ({"unknown": 1}, "unknown"),
        ({"since": "yesterday"}, "since"),
        ({"model_id": "x" * 301}, "model_id"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(reviewed, body, field):
    client, _ = reviewed
    response = client.post("/datasets/support/from-inferences", json=body)
    assert response.status_code == 422, response.text
    assert field in json.dumps(response.json()["detail"])


def test_a_task_type_other_than_the_datasets_and_a_bad_name_are_refused(reviewed):
    client, _ = reviewed
    mismatch = client.post("/datasets/support/from-inferences", json={"task_type": "classification"})
    assert mismatch.status_code == 422 and "ner" in mismatch.json()["detail"]
    bad = client.post("/datasets/-bad/from-inferences", json={"task_type": "ner"})
    assert bad.status_code == 422


def test_judge_passed_records_are_included_when_asked(server, admin):
    from outrider.storage.queries import inferences as inferences_q

    with server.client(new_account(admin, "from-judged")) as client:
        ids = [infer(client, text) for text in TEXTS[:3]]
        owner = server.services.accounts.authenticate(client.headers["X-API-Key"]).account.id
        # Verdicts as a judge would leave them (what a judge says of a given output is the model's to decide).
        with server.services.db.session() as s:
            for inference_id, verdict, score in ((ids[0], "pass", 0.9), (ids[1], "pass", 0.4), (ids[2], "fail", 0.1)):
                inferences_q.upsert_judgement(
                    s,
                    inference_id=inference_id,
                    account_id=owner,
                    judge_model="judge",
                    verdict=verdict,
                    score=score,
                    reasoning=None,
                    error=None,
                )
        assert build(client, "judged", 200, task_type="ner")["records"] == 0  # humans reviewed nothing
        out = build(client, "judged", 201, task_type="ner", include_judge_passed=True, llmaj_score_min=0.5)
        assert out["records"] == 1 and out["added"] == 1
        [example] = client.get("/datasets/judged/versions/1/examples").json()["examples"]
        assert example["metadata"] == {"inference_id": ids[0], "llmaj_verdict": "pass"}
        assert build(client, "judged", 201, include_judge_passed=True)["added"] == 1  # the 0.4 one too, now
        # A human verdict wins over the judge's.
        feedback(client, ids[1], "incorrect", {"entities": {"person": ["Tim Cook"], "company": ["Apple"]}})
        again = build(client, "judged-human", 201, task_type="ner", include_judge_passed=True)
        assert again["records"] == 2
        versions = client.get("/datasets/judged-human/versions/1/examples").json()["examples"]
        assert {e["metadata"].get("human_verdict") or e["metadata"].get("llmaj_verdict") for e in versions} == {
            "incorrect",
            "pass",
        }
