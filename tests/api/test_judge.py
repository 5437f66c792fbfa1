"""LLM-as-judge over real HTTP: a real local decoder grades a record, verdicts land on it and filters find
them; a failing judge leaves the record unjudged with the error recorded; another account's record is a 404.
Background judging: a judge configuration samples records when they are written and the worker judges them
(the real SmolLM2), a project's configuration overrides the account's, and failing judges are recorded and
retried as documented."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from outrider.storage.queries import judging as judging_q
from tests.api.test_upstream_errors import start_gateway
from tests.conftest import ADMIN_KEY, SMOL, new_account
from tests.scripted_upstream import ScriptedUpstream
from tests.sessions import add_user, sign_in
from tests.waiting import wait_until

DEMO = "demo-extractor"
TEXT = "Anna Schmidt works for Netflix in Boston."


def extract(client: httpx.Client, **extra: object) -> str:
    body = {"model_id": DEMO, "text": TEXT, "schema": {"entities": ["person", "company"]}, **extra}
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
    # A breaker that never opens: the judges here fail the same upstream model again and again.
    running = start_gateway(
        tmp_path_factory,
        base_models_dir,
        scripted,
        judge_poll_interval_s=0.2,
        judge_retry_after_s=0.2,
        upstream_breaker_failures=10_000,
    )
    running.scripted = scripted
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


def judged_at(client: httpx.Client, inference_id: str) -> dict | None:
    record = client.get(f"/inferences/{inference_id}").json()
    return record if record["llmaj_judged_at"] is not None else None


def test_judge_configs_are_set_per_account_and_project_and_checked(server, admin):
    key = new_account(admin, "judge-config")
    with server.client(key) as client:
        assert client.get("/judge-config").status_code == 404
        put = client.put("/judge-config", json={"judge_model": SMOL, "sampling_rate": 0.25})
        assert put.status_code == 201, put.text
        assert put.json()["project"] is None and put.json()["sampling_rate"] == 0.25
        assert put.json()["updated_by"].startswith("key ")
        replaced = client.put("/judge-config", json={"judge_model": SMOL, "sampling_rate": 0.5})
        assert replaced.status_code == 200 and client.get("/judge-config").json()["sampling_rate"] == 0.5
        project = client.put("/judge-config", json={"judge_model": SMOL, "sampling_rate": 0, "project": "p1"})
        assert (
            project.status_code == 201
            and client.get("/judge-config", params={"project": "p1"}).json()["project"] == "p1"
        )
        assert [c["project"] for c in client.get("/judge-configs").json()["data"]] == [None, "p1"]
        for bad, status in (
            ({"judge_model": SMOL, "sampling_rate": 1.5}, 422),
            ({"judge_model": DEMO, "sampling_rate": 1}, 422),  # an encoder cannot judge
            ({"judge_model": "nope", "sampling_rate": 1}, 404),
            ({"judge_model": SMOL}, 422),
        ):
            assert client.put("/judge-config", json=bad).status_code == status, bad
        viewer = add_user(client, "viewer")
        session = sign_in(server.url, viewer["username"])
        try:
            assert session.get("/judge-config").status_code == 200
            assert session.put("/judge-config", json={"judge_model": SMOL, "sampling_rate": 1}).status_code == 403
            assert session.delete("/judge-config").status_code == 403
        finally:
            session.close()
        with server.client(new_account(admin, "judge-config-other")) as other:
            assert other.get("/judge-config").status_code == 404
            assert other.get("/judge-config", params={"project": "p1"}).status_code == 404
            assert other.delete("/judge-config").status_code == 404
            assert other.get("/judge-configs").json()["data"] == []
        deleted = client.delete("/judge-config", params={"project": "p1"})
        assert deleted.status_code == 200 and deleted.json() == {"project": "p1", "deleted": True}
        assert client.delete("/judge-config", params={"project": "p1"}).status_code == 404
        assert client.get("/judge-config").status_code == 200  # the account's stays


def test_sampled_records_are_judged_in_the_background_by_the_worker(server, admin):
    key = new_account(admin, "judge-background")
    with server.client(key) as client:
        assert client.put("/judge-config", json={"judge_model": SMOL, "sampling_rate": 0.5}).status_code == 201
        quiet = {"judge_model": SMOL, "sampling_rate": 0, "project": "quiet"}
        assert client.put("/judge-config", json=quiet).status_code == 201
        # The sample is a hash of the record id against the rate: the test knows which records it holds.
        sampled, skipped = [], []
        while len(sampled) < 2 or not skipped:
            inference_id = extract(client)
            (sampled if judging_q.sampled(inference_id, 0.5) else skipped).append(inference_id)
        in_quiet_project = next(
            i for i in iter(lambda: extract(client, project_id="quiet"), None) if judging_q.sampled(i, 0.5)
        )
        for inference_id in sampled:
            record = wait_until(lambda i=inference_id: judged_at(client, i), timeout=240, interval=0.5)
            assert record["status"] == "success" and record["llmaj_judge_model"] == SMOL
            assert record["llmaj_verdict"] in ("pass", "fail", "uncertain") and record["llmaj_error"] is None
            assert 0 <= record["llmaj_score"] <= 1
        judged = client.get("/inferences", params={"llmaj_verdict": "judged"}).json()["inferences"]
        assert sorted(r["inference_id"] for r in judged) == sorted(sampled)
        unjudged = {
            r["inference_id"]
            for r in client.get("/inferences", params={"llmaj_verdict": "unjudged"}).json()["inferences"]
        }
        assert set(skipped) | {in_quiet_project} <= unjudged  # a project's rate 0 overrides the account's 0.5
        account_id = server.services.accounts.authenticate(key).account.id
        with server.services.db.session() as s:
            assert judging_q.pending_count(s, account_id) == 0
        # Each background judgement is charged like any other call: a usage record of surface "judge".
        usage = [u for u in client.get("/usage").json()["data"] if u["surface"] == "judge"]
        assert len(usage) == len(sampled) and all(u["cost_micro_usd"] > 0 for u in usage)


def test_failing_background_judges_leave_the_record_unjudged_with_the_error(gateway):
    asked = {"model_id": "flaky-oai/scripted", "task": "generate", "messages": [{"role": "user", "content": "Hi"}]}
    with gateway.client(ADMIN_KEY) as client:
        # An answer that is no verdict: recorded once, not tried again.
        assert (
            client.put("/judge-config", json={"judge_model": "flaky-oai/scripted", "sampling_rate": 1}).status_code
            == 201
        )
        inference_id = client.post("/inference", json=asked).json()["inference_id"]
        record = wait_until(lambda: judged_at(client, inference_id), timeout=30, interval=0.1)
        assert record["status"] == "success" and record["output"]["completion"] == "Hello upstream world"
        assert record["llmaj_verdict"] is None and "no usable verdict" in record["llmaj_error"]
        # An upstream error: tried judge_max_attempts times (3), each error recorded, then the entry leaves the queue.
        assert (
            client.put("/judge-config", json={"judge_model": "flaky-oai/status-500", "sampling_rate": 1}).status_code
            == 200
        )
        before = len(gateway.scripted.requests)
        inference_id = client.post("/inference", json=asked).json()["inference_id"]
        account_id = gateway.services.accounts.authenticate(ADMIN_KEY).account.id

        def settled() -> bool:
            with gateway.services.db.session() as s:
                return judging_q.pending_count(s, account_id) == 0 and judged_at(client, inference_id) is not None

        wait_until(settled, timeout=30, interval=0.1)
        record = client.get(f"/inferences/{inference_id}").json()
        assert record["status"] == "success" and record["llmaj_verdict"] is None and "500" in record["llmaj_error"]
        tries = [r for r in gateway.scripted.requests[before:] if r["body"].get("model") == "status-500"]
        assert len(tries) >= 3
        assert client.delete("/judge-config").status_code == 200
