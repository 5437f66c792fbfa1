"""Inference history queries: insert, account-scoped reads, every filter, paging, feedback, routing evidence."""

from datetime import UTC, datetime, timedelta

from outrider.storage.queries import inferences as q
from outrider.storage.queries.inferences import InferenceFilter
from outrider.storage.records import NewInference
from tests.databases import make_account


def record(account_id: str, **kw: object) -> NewInference:
    fields = {
        "api_key_id": None,
        "surface": "native",
        "model_id": "m1",
        "model_used": "m1",
        "task": "extract",
        "input": {"text": "hello"},
        "output": {"entities": {}},
        "status": "success",
        "latency_ms": 10.0,
        **kw,
    }
    return NewInference(account_id=account_id, **fields)


def test_an_inference_is_read_back_only_by_its_account(db):
    mine, other = make_account(db, "mine"), make_account(db, "other")
    with db.session() as s:
        stored = q.insert_inference(s, record(mine.id, project_id="p", prompt_tokens=3, cost_micro_usd=7))
    with db.session() as s:
        found = q.get_inference(s, stored.id, account_id=mine.id)
        assert found.input == {"text": "hello"} and found.project_id == "p" and found.cost_micro_usd == 7
        assert found.feedback is None and found.created_at.tzinfo is not None
        assert q.get_inference(s, stored.id, account_id=other.id) is None


def test_filters_and_paging_list_newest_first_with_the_total(db):
    account, other = make_account(db, "lister"), make_account(db, "other")
    rows = [
        ("inf_a", record(account.id, model_id="m1", latency_ms=5.0)),
        ("inf_b", record(account.id, model_id="m2", task="generate", latency_ms=50.0)),
        ("inf_c", record(account.id, model_id="m1", status="error", latency_ms=500.0, training_job_id="job_1")),
        ("inf_d", record(other.id)),
    ]
    with db.session() as s:
        q.insert_inferences(s, rows)  # one group commit: the same created_at, ordered by id
    with db.session() as s:

        def ids(**kw: object) -> list[str]:
            return [i.id for i in q.list_inferences(s, InferenceFilter(account.id, **kw), limit=10, offset=0)[0]]

        assert ids() == ["inf_c", "inf_b", "inf_a"]
        assert ids(model_id="m1") == ["inf_c", "inf_a"]
        assert ids(task="generate") == ["inf_b"]
        assert ids(status="error") == ids(training_job_id="job_1") == ["inf_c"]
        assert ids(min_latency_ms=10, max_latency_ms=100) == ["inf_b"]
        later = datetime.now(UTC) + timedelta(minutes=1)
        assert ids(since=later) == [] and ids(until=later) == ["inf_c", "inf_b", "inf_a"]
        page, total = q.list_inferences(s, InferenceFilter(account.id), limit=2, offset=1)
        assert [i.id for i in page] == ["inf_b", "inf_a"] and total == 3


def test_feedback_is_upserted_and_read_with_its_inference(db):
    account = make_account(db, "judge")
    with db.session() as s:
        stored = q.insert_inference(s, record(account.id))
    with db.session() as s:
        first = q.upsert_feedback(
            s, inference_id=stored.id, account_id=account.id, verdict="correct", corrected_output=None, notes="ok"
        )
    with db.session() as s:
        second = q.upsert_feedback(
            s,
            inference_id=stored.id,
            account_id=account.id,
            verdict="incorrect",
            corrected_output={"entities": {"person": ["Ann"]}},
            notes=None,
        )
        assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    with db.session() as s:
        feedback = q.get_inference(s, stored.id, account_id=account.id).feedback
        assert feedback.verdict == "incorrect" and feedback.corrected_output == {"entities": {"person": ["Ann"]}}
        listed = q.list_inferences(s, InferenceFilter(account.id), limit=5, offset=0)[0]
        assert listed[0].feedback == feedback


def test_routing_evidence_collects_recent_latencies_and_verdicts_on_routed_calls(db):
    account = make_account(db, "router")
    routed = {"task": "code", "model": "fast"}
    with db.session() as s:
        q.insert_inferences(
            s,
            [
                ("inf_1", record(account.id, task="generate", model_used="fast", latency_ms=1.0, routing=routed)),
                ("inf_2", record(account.id, task="generate", model_used="fast", latency_ms=2.0, routing=routed)),
                ("inf_3", record(account.id, task="generate", model_used="fast", latency_ms=9.0, status="error")),
                ("inf_4", record(account.id, task="extract", model_used="encoder", latency_ms=3.0)),
            ],
        )
        for inference_id, verdict in (("inf_1", "correct"), ("inf_2", "incorrect")):
            q.upsert_feedback(
                s, inference_id=inference_id, account_id=account.id, verdict=verdict, corrected_output=None, notes=None
            )
    with db.session() as s:
        evidence = q.routing_evidence(s, window=10)
    assert sorted(evidence.latencies["fast"]) == [1.0, 2.0]  # successes only
    assert "encoder" not in evidence.latencies  # extraction is not routed
    assert evidence.verdicts == {("fast", "code"): (1, 1)}
