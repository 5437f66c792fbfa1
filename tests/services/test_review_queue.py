"""The review queue (HistoryService.review_queue) on a real database: only successful records no one reviewed,
of this account, in review order: never judged, the judge failed, judged fail, uncertain, then passed, each
by judge score (lowest first) then newest first."""

from __future__ import annotations

from outrider.services.history import HistoryService
from outrider.storage.queries import inferences as q
from outrider.storage.queries.inferences import InferenceFilter
from tests.databases import make_account
from tests.storage.test_queries_inferences import record


def judge(db, account_id: str, inference_id: str, verdict: str | None, score: float | None) -> None:
    with db.session() as s:
        q.upsert_judgement(
            s,
            inference_id=inference_id,
            account_id=account_id,
            judge_model="judge",
            verdict=verdict,
            score=score,
            reasoning=None,
            error=None if verdict else "the judge answered no verdict",
        )


async def test_the_queue_puts_what_the_judge_could_not_vouch_for_first(db):
    mine, other = make_account(db, "reviewer"), make_account(db, "other")
    names = ["passed_hi", "passed_lo", "uncertain", "failed", "judge_error", "unjudged", "reviewed", "errored"]
    with db.session() as s:
        q.insert_inferences(s, [(f"inf_{n}", record(mine.id)) for n in names if n != "errored"])
        q.insert_inferences(s, [("inf_errored", record(mine.id, status="error", output=None))])
        q.insert_inferences(s, [("inf_theirs", record(other.id))])
    for name, verdict, score in (
        ("passed_hi", "pass", 0.9),
        ("passed_lo", "pass", 0.6),
        ("uncertain", "uncertain", 0.5),
        ("failed", "fail", 0.2),
        ("judge_error", None, None),
    ):
        judge(db, mine.id, f"inf_{name}", verdict, score)
    with db.session() as s:
        q.upsert_feedback(
            s, inference_id="inf_reviewed", account_id=mine.id, verdict="correct", corrected_output=None, notes=None
        )
    history = HistoryService(db)

    queue, total = await history.review_queue(InferenceFilter(mine.id), limit=10, offset=0)
    assert [r.id for r in queue] == [
        "inf_unjudged",
        "inf_judge_error",
        "inf_failed",
        "inf_uncertain",
        "inf_passed_lo",
        "inf_passed_hi",
    ]
    assert total == 6
    page, total = await history.review_queue(InferenceFilter(mine.id), limit=2, offset=2)
    assert [r.id for r in page] == ["inf_failed", "inf_uncertain"] and total == 6
    other_queue, _ = await history.review_queue(InferenceFilter(other.id), limit=10, offset=0)
    assert [r.id for r in other_queue] == ["inf_theirs"]
    none, total = await history.review_queue(InferenceFilter(mine.id, model_id="elsewhere"), limit=10, offset=0)
    assert none == [] and total == 0
