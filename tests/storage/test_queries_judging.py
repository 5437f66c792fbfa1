"""Judge configuration and judge queue queries: scopes, the deterministic sample, project overrides, claims."""

from datetime import timedelta

from outrider.storage.queries import inferences as inferences_q
from outrider.storage.queries import judging as q
from outrider.storage.queries import now
from tests.databases import make_account
from tests.storage.test_queries_inferences import record


def test_configs_are_per_account_and_project_and_replaced_in_place(db):
    mine, other = make_account(db, "mine"), make_account(db, "other")
    with db.session() as s:
        _, created = q.put_config(s, account_id=mine.id, project_id=None, judge_model="a", sampling_rate=0.5, actor="k")
        assert created
        config, created = q.put_config(
            s, account_id=mine.id, project_id=None, judge_model="b", sampling_rate=1.0, actor="u"
        )
        assert not created and config.judge_model == "b" and config.project_id is None
        q.put_config(s, account_id=mine.id, project_id="p1", judge_model="c", sampling_rate=0.0, actor="u")
    with db.session() as s:
        assert [c.project_id for c in q.list_configs(s, mine.id)] == [None, "p1"]
        assert q.get_config(s, mine.id, "p1").judge_model == "c"
        assert q.get_config(s, other.id, None) is None and q.list_configs(s, other.id) == []
        assert not q.delete_config(s, other.id, None)
        assert q.delete_config(s, mine.id, "p1") and q.get_config(s, mine.id, "p1") is None


def test_the_sample_is_a_fixed_function_of_the_record_id():
    ids = [f"inf_{n:04d}" for n in range(2000)]
    half = [i for i in ids if q.sampled(i, 0.5)]
    assert half == [i for i in ids if q.sampled(i, 0.5)]  # the same decision every time
    assert 900 < len(half) < 1100
    assert all(q.sampled(i, 1.0) for i in ids) and not any(q.sampled(i, 0.0) for i in ids)
    assert set(i for i in ids if q.sampled(i, 0.2)) <= set(half)  # a lower rate samples a subset


def test_a_projects_config_overrides_the_accounts_and_claims_are_exclusive(db):
    account, unjudged = make_account(db, "judged"), make_account(db, "unjudged")
    with db.session() as s:
        q.put_config(s, account_id=account.id, project_id=None, judge_model="judge", sampling_rate=1.0, actor="k")
        q.put_config(s, account_id=account.id, project_id="quiet", judge_model="judge", sampling_rate=0.0, actor="k")
        loud = inferences_q.insert_inference(s, record(account.id))
        quiet = inferences_q.insert_inference(s, record(account.id, project_id="quiet"))
        other = inferences_q.insert_inference(s, record(unjudged.id))
        rows = [(r.id, r.account_id, r.project_id) for r in (loud, quiet, other)]
        assert q.enqueue_sampled(s, rows) == 1
        assert q.pending_count(s, account.id) == 1
    lease = now() + timedelta(minutes=10)
    with db.session() as s:
        claimed = q.claim_due(s, limit=10, lease_until=lease)
        assert [(c.inference_id, c.judge_model, c.attempts) for c in claimed] == [(loud.id, "judge", 1)]
    with db.session() as s:  # leased: no other worker gets it
        assert q.claim_due(s, limit=10, lease_until=lease) == []
        q.retry_later(s, loud.id, now() - timedelta(seconds=1))
    with db.session() as s:  # due again: the second try
        assert [c.attempts for c in q.claim_due(s, limit=10, lease_until=lease)] == [2]
        q.dequeue(s, loud.id)
        assert q.pending_count(s, account.id) == 0
