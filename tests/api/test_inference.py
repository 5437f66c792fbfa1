"""Native /inference over real HTTP: extraction with a really fine-tuned model, generation with SmolLM2."""

import threading

from outrider.training.demo_data import DEMO_SCHEMA, demo_records
from tests.conftest import PRICES

DEMO = "demo-extractor"
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TEXT = "Anna Schmidt works for Netflix in Boston. The company just released the Zune HD, priced at $649."


def extract(client, text=TEXT, schema=DEMO_SCHEMA, **extra):
    response = client.post("/inference", json={"model_id": DEMO, "text": text, "schema": schema, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_entities_structure_and_relation_from_the_fine_tuned_model(admin):
    body = extract(admin)
    assert body["type"] == "encoder" and body["model_id"] == DEMO and body["model_used"] == DEMO
    assert body["inference_id"].startswith("inf_") and body["latency_ms"] > 0
    result = body["result"]
    assert result["entities"]["person"] == ["Anna Schmidt"]
    assert result["entities"]["company"] == ["Netflix"]
    assert "Boston" in result["entities"]["location"]
    assert result["structures"]["product"][0]["name"] == "Zune HD"
    assert result["structures"]["product"][0]["price"] == "$649"
    assert set(result["relations"]) == {"works_for"}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10 and usage["completion_tokens"] == 0
    assert usage["total_tokens"] == usage["prompt_tokens"]
    assert usage["cost"] == round(usage["prompt_tokens"] * PRICES[DEMO][0]) / 1e6  # the configured price table


def test_relations_are_extracted_on_unseen_sentences(admin):
    # Names, companies and products the model never saw in training.
    records = demo_records(8, seed=99, held_out=True)
    body = extract(admin, text=[r["input"] for r in records], schema={"relations": ["works_for"]})
    found = 0
    for record, result in zip(records, body["result"], strict=True):
        gold = record["output"]["relations"][0]["works_for"]
        found += {"head": gold["head"], "tail": gold["tail"]} in result["relations"]["works_for"]
    assert found >= 4, body["result"]  # an untrained relation head finds none


def test_spans_are_character_offsets_into_the_original_text_and_confidences_are_probabilities(admin):
    text = "  In Seoul,   Sony employee Kenji Watanabe confirmed the Echo Show is now available for $89."
    result = extract(admin, text=text, include_spans=True, include_confidence=True)["result"]
    mentions = [m for items in result["entities"].values() for m in items]
    assert mentions
    for mention in mentions:
        assert text[mention["start"] : mention["end"]] == mention["text"]
        assert 0.0 <= mention["confidence"] <= 1.0
    assert {m["text"] for m in result["entities"]["person"]} == {"Kenji Watanabe"}


def test_object_items_with_descriptions_and_per_item_thresholds(admin):
    schema = {
        "entities": [
            {"name": "person", "description": "a human name", "threshold": 0.01},
            {"name": "company", "threshold": 0.999999},
        ]
    }
    result = extract(admin, schema=schema, include_confidence=True)["result"]
    assert len(result["entities"]["person"]) >= 1  # a very low threshold keeps the person
    assert result["entities"]["company"] == []  # a near-1 threshold drops everything


def test_a_list_of_texts_is_a_batch_with_one_result_each(admin):
    texts = [TEXT, "In Madrid, Uber employee Laura Rossi confirmed the Hue Bridge is now available for $199."]
    body = extract(admin, text=texts, schema={"entities": ["person", "company"]})
    assert isinstance(body["result"], list) and len(body["result"]) == 2
    assert body["result"][1]["entities"]["person"] == ["Laura Rossi"]


def test_concurrent_requests_are_micro_batched_and_all_answered_correctly(server, admin):
    people = ["Anna Schmidt", "David Kim", "Robert Chen", "Laura Rossi", "Aisha Bello", "Lucas Martin"] * 4
    answers: dict[int, list[str]] = {}
    batcher = server.services.registry._loaded[DEMO].batcher
    passes_before = batcher.passes

    def call(i: int, person: str) -> None:
        with server.client() as client:
            text = f"{person} works for Spotify in Oslo. The company just released the Echo Show, priced at $89."
            answers[i] = extract(client, text=text, schema={"entities": ["person"]}, store=False)["result"]["entities"][
                "person"
            ]

    threads = [threading.Thread(target=call, args=(i, p)) for i, p in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [answers[i] for i in range(len(people))] == [[p] for p in people]
    assert batcher.passes - passes_before < len(people)  # several requests shared a forward pass


def generate(client, messages, **extra):
    body = {"model_id": SMOL, "task": "generate", "temperature": 0, "messages": messages, **extra}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_generation_with_smollm2(admin):
    question = [{"role": "user", "content": "What is the capital of France?"}]
    body = generate(admin, question, max_tokens=12)
    assert body["type"] == "decoder" and body["model_used"] == SMOL
    assert "Paris" in body["completion"]
    assert body["finish_reason"] in ("stop", "length")
    assert 0 < body["usage"]["completion_tokens"] <= 12 and body["usage"]["prompt_tokens"] > 5
    assert body["output_tokens"] == body["usage"]["completion_tokens"]
    system = [{"role": "system", "content": "You are a terse geography tutor."}, *question]
    with_system = generate(admin, system, max_tokens=1)
    assert with_system["usage"]["prompt_tokens"] != body["usage"]["prompt_tokens"]  # the system prompt is used


def test_generation_honours_stop_sequences_and_max_tokens(admin):
    response = admin.post(
        "/inference",
        json={
            "model_id": SMOL,
            "task": "generate",
            "max_tokens": 5,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Count from one to twenty in words."}],
        },
    )
    assert response.json()["finish_reason"] == "length" and response.json()["usage"]["completion_tokens"] == 5
    response = admin.post(
        "/inference",
        json={
            "model_id": SMOL,
            "task": "generate",
            "max_tokens": 40,
            "temperature": 0,
            "stop": ["Paris"],
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        },
    )
    body = response.json()
    assert "Paris" not in body["completion"] and body["finish_reason"] == "stop_sequence"


def test_the_fine_tuned_encoder_is_served_in_its_int8_onnx_form(admin):
    extract(admin)
    health = admin.get(f"/models/{DEMO}/health").json()
    assert health == {"model": DEMO, "status": "ready", "reason": None, "runtime": "onnx-int8"}
