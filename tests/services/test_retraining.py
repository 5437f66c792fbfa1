"""Retrain policy decisions: switch only when better by the margin, the held-out slice a fixed function, and the
outcome in the deployment's history (a kept retrain is no rollback step)."""

from outrider.services.deployments import KEPT, DeploymentService, serving_stack
from outrider.services.retraining import decide, held_out, split
from outrider.storage.queries import deployments as deployments_q
from tests.databases import make_account


def comparison(key: str, baseline: float, candidate: float) -> dict:
    figure = {"baseline": baseline, "candidate": candidate, "difference": round(candidate - baseline, 6)}
    return {"figures": {key: figure}}


def test_the_candidate_is_switched_in_only_when_better_by_the_margin():
    better, reason = decide("ner", comparison("micro_f1", 0.5, 0.6), 0.05)
    assert better and "micro_f1 0.500 -> 0.600 (+0.100" in reason
    worse, reason = decide("ner", comparison("micro_f1", 0.5, 0.52), 0.05)
    assert not worse and "less than the margin 0.05" in reason
    assert not decide("ner", comparison("micro_f1", 0.5, 0.5), 0.0)[0]  # equal is not better, even at margin 0
    assert decide("classification", comparison("accuracy", 0.5, 0.75), 0.1)[0]
    assert decide("decoder", comparison("exact_match", 0.0, 0.5), 0.5)[0]
    missing, reason = decide("classification", comparison("micro_f1", 0.1, 0.9), 0.0)
    assert not missing and "no accuracy figure" in reason


def test_the_held_out_slice_is_fixed_and_never_empty_when_it_must_not_be():
    examples = [{"text": f"sentence {n}", "entities": []} for n in range(200)]
    held = [e for e in examples if held_out(e, 0.2)]
    assert 20 < len(held) < 60 and held == [e for e in examples if held_out(e, 0.2)]
    train, kept = split(examples, 0.2, holdout_empty=True)
    assert kept == held and len(train) + len(kept) == 200
    few = [e for e in examples if not held_out(e, 0.2)][:2]
    train, kept = split(few, 0.2, holdout_empty=True)
    assert len(train) == 1 and len(kept) == 1  # one of two moves to the empty held-out set
    train, kept = split(few, 0.2, holdout_empty=False)
    assert len(train) == 2 and kept == []
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert held_out(chat, 0.5) == held_out({**chat, "messages": [*chat["messages"][:1], {"role": "assistant"}]}, 0.5)


async def test_a_policy_switches_or_records_a_kept_retrain_and_rollbacks_skip_kept_ones(db):
    account = make_account(db, "policy")
    with db.session() as s:
        deployments_q.create_deployment(
            s, account_id=account.id, name="ner", target="ft_a", actor_id=None, actor_name="key", note=None
        )
    service = DeploymentService(db, catalog=None)  # by_policy reads and writes the deployment only
    kept = await service.by_policy(account.id, "ner", expected="ft_a", target="ft_a", note="not better")
    assert kept.target == "ft_a" and kept.history[0].action == KEPT and kept.history[0].note == "not better"
    assert kept.history[0].actor_name == "retrain policy"
    switched = await service.by_policy(account.id, "ner", expected="ft_a", target="ft_b", note="better")
    assert switched.target == "ft_b" and switched.history[0].action == "switch"
    assert switched.history[0].previous_target == "ft_a"
    # Switched meanwhile: a run that started on ft_a leaves the deployment alone.
    assert await service.by_policy(account.id, "ner", expected="ft_a", target="ft_c", note="late") is None
    with db.session() as s:
        events = deployments_q.all_events(s, switched.id)
    assert serving_stack(events) == ["ft_a", "ft_b"]  # the kept retrain is no step to roll back to
