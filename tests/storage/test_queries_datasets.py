"""Dataset queries: versions numbered per dataset, names per account, bulk version reads, deletes."""

import pytest
from sqlalchemy.exc import IntegrityError

from outrider.storage.queries import datasets as q
from tests.databases import make_account


def new_version(version_id: str, status: str = "ready", **kw: object) -> q.NewVersion:
    return q.NewVersion(
        id=version_id, task_type="ner", status=status, source="upload", path=f"x/{version_id}.jsonl", **kw
    )


def test_versions_are_numbered_per_dataset_and_names_are_per_account(db):
    mine, other = make_account(db, "mine"), make_account(db, "other")
    with db.session() as s:
        dataset, first = q.add_version(s, mine.id, "reviews", new_version("dsv_1", example_count=3))
        _, second = q.add_version(s, mine.id, "reviews", new_version("dsv_2", status="building"))
        _, theirs = q.add_version(s, other.id, "reviews", new_version("dsv_3"))
    assert (first.version, second.version, theirs.version) == (1, 2, 1)
    assert first.finished_at is not None and second.finished_at is None  # a building version is not finished
    with db.session() as s:
        found = q.get_dataset(s, mine.id, "reviews")
        assert found.id == dataset.id and [v.id for v in found.versions] == ["dsv_1", "dsv_2"]
        assert q.get_dataset(s, mine.id, "missing") is None
        assert [d.name for d in q.list_datasets(s, other.id)] == ["reviews"]
        assert q.list_datasets(s, other.id)[0].id != dataset.id


def test_versions_are_read_one_or_many_at_a_time_and_updated(db):
    account = make_account(db, "reader")
    with db.session() as s:
        q.add_version(s, account.id, "a", new_version("dsv_a"))
        q.add_version(s, account.id, "b", new_version("dsv_b", status="building"))
    with db.session() as s:
        assert q.get_version(s, "dsv_a").example_count == 0 and q.get_version(s, "dsv_x") is None
        assert set(q.get_versions(s, ["dsv_a", "dsv_b", "dsv_x"])) == {"dsv_a", "dsv_b"}
        assert q.get_versions(s, []) == {}
        updated = q.update_version(s, "dsv_b", example_count=7, label_stats={"person": 7})
        assert updated.example_count == 7 and updated.label_stats == {"person": 7}
        assert q.update_version(s, "dsv_x", example_count=1) is None
        assert [v.id for v in q.versions_in_status(s, "building")] == ["dsv_b"]


def test_a_taken_version_number_is_refused_by_the_database(db):
    account = make_account(db, "racer")
    with db.session() as s:
        q.add_version(s, account.id, "d", new_version("dsv_1"))
    with pytest.raises(IntegrityError), db.session() as s:
        q.add_version(s, account.id, "d", new_version("dsv_1"))  # the same id twice


def test_deleting_a_version_or_a_whole_dataset(db):
    account = make_account(db, "cleaner")
    with db.session() as s:
        dataset, _ = q.add_version(s, account.id, "d", new_version("dsv_1"))
        q.add_version(s, account.id, "d", new_version("dsv_2"))
    with db.session() as s:
        q.delete_version(s, "dsv_1")
    with db.session() as s:
        assert [v.id for v in q.get_dataset(s, account.id, "d").versions] == ["dsv_2"]
        q.delete_dataset(s, dataset.id)
    with db.session() as s:
        assert q.get_dataset(s, account.id, "d") is None and q.get_version(s, "dsv_2") is None
