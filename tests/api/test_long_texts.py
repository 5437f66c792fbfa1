"""Texts longer than the encoder's input (MiniLM: 512 tokens, schema prompt included) through /inference."""

from __future__ import annotations

import json
import time

import openai
import pytest

from outrider.core.schema import ExtractionSchema
from tests.conftest import ADMIN_KEY

DEMO = "demo-extractor"
SCHEMA = {"entities": ["person", "company", "location"], "relations": ["works_for"]}
FACT = "David Kim works for Sony in Berlin."
FILLERS = [
    "The committee met again on Tuesday and approved the minutes without changes.",
    "Rain is expected over the weekend, with milder weather returning next week.",
    "The library extended its opening hours during the examination period.",
    "Several roads in the old town will be closed for repairs until the end of the month.",
]


def document(chars: int, near_end: str = FACT) -> str:
    """Filler sentences, then ``near_end`` about 300 characters before the end."""
    sentences: list[str] = []
    size, i = 0, 0
    while size < chars - len(near_end) - 300:
        sentences.append(FILLERS[i % len(FILLERS)])
        size += len(sentences[-1]) + 1
        i += 1
    sentences.append(near_end)
    while size < chars - len(near_end):
        sentences.append(FILLERS[i % len(FILLERS)])
        size += len(sentences[-1]) + 1
        i += 1
    return " ".join(sentences)[:chars]


def infer(client, text, schema=SCHEMA, **extra):
    body = {"model_id": DEMO, "text": text, "schema": schema, "include_spans": True, "include_confidence": True}
    return client.post("/inference", json={**body, **extra})


def people(result: dict) -> list[dict]:
    return result["entities"]["person"]


@pytest.mark.parametrize("chars", [2800, 6000, 20000])
def test_a_long_text_is_extracted_with_offsets_into_the_original_text(admin, chars):
    text = document(chars)
    assert len(text) == chars and text.count(FACT) == 1
    response = infer(admin, text)
    assert response.status_code == 200, response.text  # 502 "tensor (613) must match (512)" before windows
    result = response.json()["result"]
    david = [p for p in people(result) if p["text"] == "David Kim"]
    assert len(david) == 1, people(result)  # found once, though the windows overlap
    start = text.index(FACT)
    assert (david[0]["start"], david[0]["end"]) == (start, start + len("David Kim"))
    for items in result["entities"].values():
        for item in items:
            assert text[item["start"] : item["end"]] == item["text"]
    assert {"head": "David Kim", "tail": "Sony"} in [
        {"head": r["head"]["text"], "tail": r["tail"]["text"]} for r in result["relations"]["works_for"]
    ]


def test_mentions_all_over_a_long_text_are_each_found_once(admin):
    names = ["Anna Schmidt", "Robert Chen", "Laura Rossi", "Aisha Bello", "Lucas Martin", "Kenji Watanabe"]
    parts = []
    for index, name in enumerate(names):
        parts.append(" ".join(FILLERS[(index + k) % len(FILLERS)] for k in range(14)))
        parts.append(f"{name} works for Netflix in Boston.")
    text = " ".join(parts)
    assert len(text) > 6000
    result = infer(admin, text).json()["result"]
    found = [p["text"] for p in people(result)]
    for name in names:
        assert found.count(name) == 1, found
        start = text.index(name)
        assert {"text": name, "start": start, "end": start + len(name)} in [
            {k: p[k] for k in ("text", "start", "end")} for p in people(result)
        ]


def test_a_name_cut_by_a_window_border_is_found_once_and_whole(server, admin):
    assert infer(admin, FACT).status_code == 200  # the model is loaded
    model = server.services.registry._loaded[DEMO].model
    gliner_schema = model.prepare(ExtractionSchema.model_validate(SCHEMA)).gliner_schema
    # no sentence ends: windows are cut between two words, so a name can straddle a cut
    words = ("the committee met again on tuesday and approved the minutes without changes " * 60).split()
    cut = model._gliner_windows(" ".join(words), gliner_schema)[0].end
    k = [len(" ".join(words[: i + 1])) for i in range(len(words))].index(cut)  # the first window's last word
    words[k : k + 7] = ["Maria", "Lopez", "works", "for", "Netflix", "in", "Boston"]  # one token each, as before
    text = " ".join(words)
    name = text.index("Maria Lopez")
    first, second = model._gliner_windows(text, gliner_schema)[:2]
    assert first.end == name + len("Maria") and second.start < name  # the first window holds "Maria" alone
    result = infer(admin, text).json()["result"]
    assert [(p["text"], p["start"]) for p in people(result)] == [("Maria Lopez", name)]


def test_a_long_text_with_a_classification_task_gets_one_document_level_answer(admin):
    schema = {**SCHEMA, "classifications": [{"task": "tone", "labels": ["formal", "casual"]}]}
    result = infer(admin, document(8000), schema=schema).json()["result"]
    tone = result["classifications"]["tone"]
    assert tone["label"] in {"formal", "casual"} and 0.0 <= tone["confidence"] <= 1.0


def test_the_longest_accepted_text_is_answered_in_reasonable_time(server, admin):
    limit = server.settings.max_text_chars
    text = document(limit)
    started = time.perf_counter()
    response = infer(admin, text)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert elapsed < 120, elapsed  # about 10 s on 2 cores: linear in the length, windows batched
    david = [p for p in people(response.json()["result"]) if p["text"] == "David Kim"]
    assert [(p["start"], p["end"]) for p in david] == [(text.index(FACT), text.index(FACT) + len("David Kim"))]
    too_long = infer(admin, text + "x")
    assert too_long.status_code == 422, too_long.text


def test_a_long_message_through_the_openai_schema_extension(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)
    text = document(12000)
    response = client.chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": text}], extra_body={"schema": SCHEMA}
    )
    result = json.loads(response.choices[0].message.content)
    assert result["entities"]["person"] == ["David Kim"]
    assert {"head": "David Kim", "tail": "Sony"} in result["relations"]["works_for"]
