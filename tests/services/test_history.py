"""HistoryService against a real database: account-scoped reads and the feedback rules, without a server."""

from __future__ import annotations

import asyncio

import pytest

from outrider.core.errors import InvalidRequest, NotFound
from outrider.services.accounts import AccountService, Principal
from outrider.services.history import HistoryService
from outrider.storage.queries import inferences as inferences_q
from outrider.storage.queries.inferences import InferenceFilter
from outrider.storage.records import NewInference

SCHEMA = {"entities": ["person", "company"]}


def caller(accounts: AccountService, name: str) -> Principal:
    return accounts.authenticate(accounts.create_account(name)[1].raw_key)


def stored(db, who: Principal, **kw: object) -> str:
    fields = {
        "api_key_id": who.key.id,
        "surface": "native",
        "model_id": "m",
        "model_used": "m",
        "task": "extract",
        "input": {"text": "Ann works at Acme.", "schema": SCHEMA},
        "output": {"entities": {"person": ["Ann"], "company": []}},
        "status": "success",
        "latency_ms": 4.0,
        **kw,
    }
    with db.session() as s:
        return inferences_q.insert_inference(s, NewInference(account_id=who.account.id, **fields)).id


@pytest.fixture
def setup(db):
    accounts = AccountService(db)
    verdicts: list[tuple[str, str | None, bool]] = []
    history = HistoryService(db, on_routed_verdict=lambda *args: verdicts.append(args))
    return history, caller(accounts, "reader"), caller(accounts, "stranger"), verdicts


def test_an_account_reads_and_lists_only_its_own_records(setup, db):
    history, who, stranger, _ = setup
    mine = stored(db, who)
    stored(db, stranger)
    assert asyncio.run(history.get(who, mine)).id == mine
    with pytest.raises(NotFound):
        asyncio.run(history.get(stranger, mine))
    records, total = asyncio.run(history.list(InferenceFilter(who.account.id), limit=10, offset=0))
    assert total == 1 and [r.id for r in records] == [mine]


def test_a_correct_verdict_is_stored_and_can_be_replaced_by_a_correction(setup, db):
    history, who, _, verdicts = setup
    inference_id = stored(db, who)
    first = asyncio.run(history.feedback(who, inference_id, verdict="correct", corrected_output=None, notes="fine"))
    assert first.verdict == "correct" and first.notes == "fine"
    correction = {"entities": {"person": ["Ann"], "company": ["Acme"]}}
    asyncio.run(history.feedback(who, inference_id, verdict="incorrect", corrected_output=correction, notes=None))
    assert asyncio.run(history.get(who, inference_id)).feedback.corrected_output == correction
    assert verdicts == []  # not a routed call: routing is not told


@pytest.mark.parametrize(
    ("verdict", "corrected", "message"),
    [
        ("maybe", None, "verdict must be"),
        ("incorrect", None, "required"),
        ("correct", {"entities": {}}, "only accepted"),
        ("incorrect", {"entities": {"animal": ["cat"]}}, "unknown entity label"),
        ("incorrect", {"sentiment": "good"}, "unknown section"),
    ],
)
def test_feedback_that_breaks_the_rules_is_refused(setup, db, verdict, corrected, message):
    history, who, _, _ = setup
    inference_id = stored(db, who)
    with pytest.raises(InvalidRequest, match=message):
        asyncio.run(history.feedback(who, inference_id, verdict=verdict, corrected_output=corrected, notes=None))
    assert asyncio.run(history.get(who, inference_id)).feedback is None


def test_a_failed_call_has_no_output_to_correct_and_a_strangers_call_is_not_found(setup, db):
    history, who, stranger, _ = setup
    failed = stored(db, who, status="error", output=None, error_type="backend_error")
    with pytest.raises(InvalidRequest, match="no output"):
        asyncio.run(history.feedback(who, failed, verdict="incorrect", corrected_output={"entities": {}}, notes=None))
    assert asyncio.run(history.feedback(who, failed, verdict="correct", corrected_output=None, notes=None))
    with pytest.raises(NotFound):
        asyncio.run(history.feedback(stranger, failed, verdict="correct", corrected_output=None, notes=None))


def test_a_verdict_on_a_routed_call_is_told_to_routing(setup, db):
    history, who, _, verdicts = setup
    inference_id = stored(
        db,
        who,
        task="generate",
        model_used="fast-model",
        input={"messages": []},
        output={"completion": "hi"},
        routing={"task": "chat", "model": "fast-model"},
    )
    asyncio.run(history.feedback(who, inference_id, verdict="incorrect", corrected_output="hello", notes=None))
    asyncio.run(history.feedback(who, inference_id, verdict="correct", corrected_output=None, notes=None))
    assert verdicts == [("fast-model", "chat", False), ("fast-model", "chat", True)]
