"""Deployment queries: per-account names, a compare-and-set switch with its history event, the rollback stack."""

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from outrider.services.deployments import serving_stack
from outrider.storage.queries import deployments as q
from outrider.storage.records import DeploymentEvent
from tests.databases import make_account


def create(s, account_id: str, name: str, target: str):
    return q.create_deployment(
        s, account_id=account_id, name=name, target=target, actor_id="key_1", actor_name="key k", note=None
    )


def test_names_are_per_account_and_unique_within_one(db):
    account, other = make_account(db, "dep"), make_account(db, "dep-other")
    with db.session() as s:
        create(s, account.id, "ner", "a")
        create(s, other.id, "ner", "b")
    with db.session() as s:
        assert q.current_target(s, account.id, "ner") == "a" and q.current_target(s, other.id, "ner") == "b"
        assert q.current_target(s, account.id, "missing") is None
        assert q.deployment_targets(s, account.id) == [("ner", "a")] and q.count_deployments(s, other.id) == 1
    with pytest.raises(IntegrityError), db.session() as s:
        create(s, account.id, "ner", "c")


def test_a_switch_from_a_stale_read_changes_nothing(db):
    account = make_account(db, "dep-cas")
    with db.session() as s:
        read = create(s, account.id, "ner", "a")
    with db.session() as s:
        first = q.change_target(s, read, action="switch", target="b", actor_id=None, actor_name="x", note="n")
    assert first.target == "b" and first.version == 2
    assert [(e.action, e.target, e.previous_target) for e in first.history] == [
        ("switch", "b", "a"),
        ("create", "a", None),
    ]
    with db.session() as s:  # the same (now stale) read again: somebody switched it meanwhile
        assert q.change_target(s, read, action="switch", target="c", actor_id=None, actor_name="x", note=None) is None
    with db.session() as s:
        assert q.current_target(s, account.id, "ner") == "b"
        assert len(q.all_events(s, read.id)) == 2
        assert q.delete_deployment(s, account.id, "ner") and not q.delete_deployment(s, account.id, "ner")


def event(action: str, target: str) -> DeploymentEvent:
    return DeploymentEvent(0, action, target, None, None, "x", None, datetime.now(UTC))


def test_rollbacks_undo_switches_in_reverse_order():
    events = [event("create", "a"), event("switch", "b"), event("switch", "c"), event("rollback", "b")]
    assert serving_stack(events) == ["a", "b"]
    assert serving_stack([*events, event("switch", "d")]) == ["a", "b", "d"]
    assert serving_stack(events[:1]) == ["a"]
