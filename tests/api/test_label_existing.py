"""Label existing text over HTTP: one batched pass through a registry encoder, spans and labels with
confidences, 1..1,000 inputs, optionally saved as a dataset version."""

import pytest

from outrider.datasets.formats import validate_example
from tests.conftest import new_account

LABELS = ["person", "company", "location"]
TEXT = "David Kim works for Sony in Berlin."


@pytest.fixture(scope="module")
def labeller(server, admin):
    with server.client(new_account(admin, "labeller")) as client:
        yield client


def test_one_input_gets_spans_with_offsets_labels_and_confidences(labeller):
    response = labeller.post(
        "/generate/ner/label-existing", json={"labels": LABELS, "inputs": [TEXT], "model_id": "demo-extractor"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_used"] == "demo-extractor" and body["usage"]["prompt_tokens"] > 0
    [result] = body["results"]
    found = {(e["text"], e["label"]) for e in result["entities"]}
    assert {("David Kim", "person"), ("Sony", "company"), ("Berlin", "location")} <= found
    for entity in result["entities"]:
        assert TEXT[entity["start"] : entity["end"]] == entity["text"] and 0 < entity["confidence"] <= 1
    assert validate_example("ner", result, labels=LABELS) is None


def test_a_thousand_inputs_are_answered_in_one_recorded_pass(labeller):
    names = ["Anna Schmidt", "Robert Chen", "Laura Rossi", "Kenji Watanabe"]
    inputs = [f"{names[i % 4]} joined Netflix in Boston, memo {i}." for i in range(1000)]
    response = labeller.post(
        "/generate/ner/label-existing", json={"labels": LABELS, "inputs": inputs, "model_id": "demo-extractor"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["text"] for r in results] == inputs
    assert all(validate_example("ner", r, labels=LABELS) is None for r in results)
    people = sum(any(e["label"] == "person" for e in r["entities"]) for r in results)
    assert people >= 900, people  # the demo extractor finds held-out names
    history = labeller.get("/inferences", params={"model_id": "demo-extractor"}).json()
    batched = [
        i for i in history["inferences"] if isinstance(i["input"]["text"], list) and len(i["input"]["text"]) == 1000
    ]
    assert len(batched) == 1  # one extraction call for all 1,000 inputs


@pytest.mark.parametrize("count", [0, 1001])
def test_zero_or_more_than_a_thousand_inputs_are_422_naming_inputs(labeller, count):
    for path in ("/generate/ner/label-existing", "/generate/classification/label-existing"):
        response = labeller.post(path, json={"labels": ["a", "b"], "inputs": ["x"] * count})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "inputs"]


def test_classification_returns_one_of_the_labels_with_a_confidence(labeller):
    labels = ["positive", "negative"]
    inputs = ["The product exceeded all my expectations.", "Shipping took three weeks and the box was damaged."]
    response = labeller.post(
        "/generate/classification/label-existing",
        json={"labels": labels, "inputs": inputs, "model_id": "demo-extractor"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["text"] for r in results] == inputs
    for result in results:
        assert result["label"] in labels and 0 <= result["confidence"] <= 1


def test_the_result_can_be_saved_as_a_dataset_version(labeller):
    inputs = [TEXT, "Laura Rossi works for Spotify in Madrid."]
    body = {"labels": LABELS, "inputs": inputs, "model_id": "demo-extractor", "dataset_name": "auto-labelled"}
    first = labeller.post("/generate/ner/label-existing", json=body).json()
    second = labeller.post("/generate/ner/label-existing", json=body).json()
    assert (first["dataset_name"], first["dataset_version"], second["dataset_version"]) == ("auto-labelled", 1, 2)
    page = labeller.get("/datasets/auto-labelled/versions/1/examples").json()
    assert page["task_type"] == "ner" and page["total"] == 2
    expected = [
        {"text": r["text"], "entities": [{k: v for k, v in e.items() if k != "confidence"} for e in r["entities"]]}
        for r in first["results"]
    ]
    assert page["examples"] == expected


def test_unknown_models_and_decoders_are_refused(labeller):
    body = {"labels": LABELS, "inputs": [TEXT]}
    assert labeller.post("/generate/ner/label-existing", json={**body, "model_id": "nope"}).status_code == 404
    decoder = labeller.post(
        "/generate/ner/label-existing", json={**body, "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    )
    assert decoder.status_code == 422 and "decoder" in decoder.json()["detail"]
    one_class = labeller.post("/generate/classification/label-existing", json={"labels": ["a"], "inputs": ["x"]})
    assert one_class.status_code == 422
