"""LLM-as-judge over real HTTP: a real local decoder grades a record, verdicts land on it and filters find
them; a failing judge leaves the record unjudged with the error recorded; another account's record is a 404."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_upstream_errors import start_gateway
from tests.conftest import ADMIN_KEY, SMOL, new_account
from tests.scripted_upstream import ScriptedUpstream

DEMO = "demo-extractor"
TEXT = "Anna Schmidt works for Netflix in Boston."


def extract(client: httpx.Client) -> str:
    body = {"model_id": DEMO, "text": TEXT, "schema": {"entities": ["person", "company"]}}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()["inference_id"]


@pytest.fixture(scope="module")
def judged(server, admin):
    key = new_account(admin, "judge")
    with server.client(key) as client:
        first, second = extract(client), extract(client)
        response = client.post(f"/inferences/{first}/judge", json={"judge_model": SMOL})
        assert response.status_code == 200, response.text
        yield client, first, second, response.json()


def test_a_local_decoder_judges_a_record_and_the_verdict_lands_on_it(judged):
    client, first, _, verdict = judged
    assert verdict["inference_id"] == first and verdict["judge_model"] == SMOL
    assert verdict["llmaj_verdict"] in ("pass", "fail", "uncertain") and 0 <= verdict["llmaj_score"] <= 1
    assert isinstance(verdict["llmaj_reasoning"], str) and verdict["llmaj_error"] is None
    record = client.get(f"/inferences/{first}").json()
    assert record["llmaj_verdict"] == verdict["llmaj_verdict"] and record["llmaj_score"] == verdict["llmaj_score"]
    assert record["llmaj_judged_at"] is not None and record["llmaj_judge_model"] == SMOL
    # The judge's call is charged like any other: a usage record of surface "judge", at SmolLM2's price.
    usage = [u for u in client.get("/usage").json()["data"] if u["surface"] == "judge"]
    assert len(usage) == 1 and usage[0]["model_used"] == SMOL and usage[0]["cost_micro_usd"] > 0


def test_filters_find_judged_records_by_verdict_and_score(judged):
    client, first, second, verdict = judged

    def ids(**params) -> list[str]:
        return [r["inference_id"] for r in client.get("/inferences", params=params).json()["inferences"]]

    assert ids(llmaj_verdict="judged") == [first] and ids(llmaj_verdict="unjudged") == [second]
    assert ids(llmaj_verdict=verdict["llmaj_verdict"]) == [first]
    other = next(v for v in ("pass", "fail", "uncertain") if v != verdict["llmaj_verdict"])
    assert ids(llmaj_verdict=other) == []
    score = verdict["llmaj_score"]
    assert ids(llmaj_score_min=score, llmaj_score_max=score) == [first]
    assert ids(llmaj_score_min=min(1.0, score + 0.01)) == ([] if score < 1 else [first])
    assert client.get("/inferences", params={"llmaj_score_min": 2}).status_code == 422
    assert client.get("/inferences", params={"llmaj_verdict": "great"}).status_code == 422


def test_bad_judges_and_other_accounts_records_are_refused(server, admin, judged):
    client, first, _, _ = judged
    encoder = client.post(f"/inferences/{first}/judge", json={"judge_model": DEMO})
    assert encoder.status_code == 422 and "encoder" in encoder.json()["detail"]
    assert client.post(f"/inferences/{first}/judge", json={"judge_model": "nope"}).status_code == 404
    assert client.post(f"/inferences/{first}/judge", json={}).status_code == 422
    assert client.post("/inferences/inf_missing/judge", json={"judge_model": SMOL}).status_code == 404
    with server.client(new_account(admin, "judge-other")) as other:
        assert other.post(f"/inferences/{first}/judge", json={"judge_model": SMOL}).status_code == 404
        assert other.get("/inferences", params={"llmaj_verdict": "judged"}).json()["total"] == 0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir) -> Iterator:
    scripted = ScriptedUpstream().start()
    running = start_gateway(tmp_path_factory, base_models_dir, scripted)
    yield running
    running.stop()
    scripted.stop()


def test_a_failing_judge_leaves_the_record_unjudged_with_the_error(gateway):
    with gateway.client(ADMIN_KEY) as client:
        asked = {"model_id": "flaky-oai/scripted", "task": "generate", "messages": [{"role": "user", "content": "Hi"}]}
        answered = client.post("/inference", json=asked)
        assert answered.status_code == 200, answered.text
        inference_id = answered.json()["inference_id"]
        down = client.post(f"/inferences/{inference_id}/judge", json={"judge_model": "flaky-oai/status-500"})
        assert down.status_code == 502
        record = client.get(f"/inferences/{inference_id}").json()
        assert record["status"] == "success" and record["output"]["completion"] == "Hello upstream world"
        assert record["llmaj_verdict"] is None and "500" in record["llmaj_error"]
        # An answer that is no verdict (the scripted upstream says "Hello upstream world") is an error too.
        prose = client.post(f"/inferences/{inference_id}/judge", json={"judge_model": "flaky-oai/scripted"})
        assert prose.status_code == 502 and "no usable verdict" in prose.json()["detail"]
        assert "no usable verdict" in client.get(f"/inferences/{inference_id}").json()["llmaj_error"]
        unjudged = client.get("/inferences", params={"llmaj_verdict": "unjudged"}).json()["inferences"]
        assert inference_id in [r["inference_id"] for r in unjudged]
