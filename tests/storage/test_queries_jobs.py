"""Job queries: the queue, the compare-and-set claim, heartbeats owned by one worker, stop, finish, recovery."""

from outrider.storage.queries import jobs as q
from tests.databases import make_account


def test_jobs_are_listed_per_account_and_kind_newest_first(db):
    account, other = make_account(db, "jobs"), make_account(db, "other")
    with db.session() as s:
        first = q.insert_job(s, account_id=account.id, kind="training", payload={"n": 1})
        second = q.insert_job(s, account_id=account.id, kind="generation", payload={"n": 2}, prefix="gen")
        q.insert_job(s, account_id=other.id, kind="training", payload={})
    assert second.id.startswith("gen_") and first.status == "queued" and first.payload == {"n": 1}
    with db.session() as s:
        jobs, total = q.list_jobs(s, account_id=account.id)
        assert total == 2 and {j.id for j in jobs} == {first.id, second.id}
        assert [j.id for j in q.list_jobs(s, account_id=account.id, kind="training")[0]] == [first.id]
        assert q.get_job(s, first.id, account_id=other.id) is None and q.get_job(s, first.id) == first


def test_the_oldest_queued_job_of_a_kind_is_claimed_once(db):
    account = make_account(db, "claims")
    with db.session() as s:
        older = q.insert_job(s, account_id=account.id, kind="a", payload={})
        newer = q.insert_job(s, account_id=account.id, kind="a", payload={})
        q.insert_job(s, account_id=account.id, kind="b", payload={})
    with db.session() as s:
        claimed = q.claim_next(s, ["a"], "w1")
    assert claimed.id == older.id and claimed.status == "running" and claimed.worker_id == "w1"
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    with db.session() as s:
        assert q.claim_next(s, ["a"], "w2").id == newer.id
    with db.session() as s:
        assert q.claim_next(s, ["a"], "w3") is None  # nothing of kind "a" left
        assert q.claim_next(s, [], "w3") is None


def test_heartbeats_and_finishing_belong_to_the_owning_worker(db):
    account = make_account(db, "owner")
    with db.session() as s:
        job = q.insert_job(s, account_id=account.id, kind="a", payload={})
    with db.session() as s:
        q.claim_next(s, ["a"], "w1")
    with db.session() as s:
        assert q.heartbeat(s, job.id, "w2", {"step": 1}) is None  # not its job
        assert q.heartbeat(s, job.id, "w1", {"step": 1}).progress == {"step": 1}
        q.set_result(s, job.id, {"a": 1})
        assert q.finish_job(s, job.id, status="complete", worker_id="w2") is None
        done = q.finish_job(s, job.id, status="complete", worker_id="w1", result={"b": 2})
    assert done.status == "complete" and done.result == {"a": 1, "b": 2} and done.finished_at is not None
    with db.session() as s:
        assert q.finish_job(s, job.id, status="failed") is None  # a finished job stays finished
        assert q.heartbeat(s, job.id, "w1") is None


def test_stop_ends_a_queued_job_at_once_and_flags_a_running_one(db):
    account, other = make_account(db, "stopper"), make_account(db, "other")
    with db.session() as s:
        queued = q.insert_job(s, account_id=account.id, kind="a", payload={})
        running = q.insert_job(s, account_id=account.id, kind="b", payload={})
    with db.session() as s:
        q.claim_next(s, ["b"], "w1")
    with db.session() as s:
        assert q.request_stop(s, queued.id, account_id=other.id) is None
        stopped = q.request_stop(s, queued.id, account_id=account.id)
        flagged = q.request_stop(s, running.id, account_id=account.id)
    assert stopped.status == "stopped" and stopped.finished_at is not None
    assert flagged.status == "running" and flagged.stop_requested


def test_an_abandoned_job_fails_only_if_its_heartbeat_did_not_move(db):
    account = make_account(db, "recovery")
    with db.session() as s:
        job = q.insert_job(s, account_id=account.id, kind="a", payload={})
    with db.session() as s:
        claimed = q.claim_next(s, ["a"], "w1")
    with db.session() as s:
        assert [j.id for j in q.running_jobs(s)] == [job.id]
        q.heartbeat(s, job.id, "w1")
    with db.session() as s:
        # Judged on the claim's heartbeat, which has moved since: the worker is alive.
        assert q.fail_abandoned(s, job.id, seen_heartbeat=claimed.heartbeat_at, reason="gone") is None
        current = q.get_job(s, job.id).heartbeat_at
        failed = q.fail_abandoned(s, job.id, seen_heartbeat=current, reason="worker gone")
    assert failed.status == "failed" and failed.error == "worker gone"
