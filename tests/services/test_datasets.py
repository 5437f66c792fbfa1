"""DatasetService against a real database and data folder: versions, paging, deletes, and versions a job
appends to, without a server."""

from __future__ import annotations

import asyncio
import json

import pytest

from outrider.config import build_settings
from outrider.core.errors import Conflict, InvalidRequest, NotFound
from outrider.services.datasets import DatasetService
from tests.databases import make_account


def jsonl(*examples: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in examples)


def review(text: str, label: str) -> dict:
    return {"text": text, "label": label}


@pytest.fixture
def datasets(db, tmp_path) -> DatasetService:
    return DatasetService(db, build_settings(data_dir=tmp_path / "data"))


@pytest.fixture
def owner(db) -> str:
    return make_account(db, "owner").id


def test_an_upload_is_stored_byte_for_byte_as_the_next_version(datasets, owner):
    data = jsonl(review("Great kettle.", "positive"), review("It broke.", "negative"), review("Fine.", "positive"))
    dataset, first = asyncio.run(datasets.upload(owner, "reviews", "classification", data))
    _, second = asyncio.run(datasets.upload(owner, "reviews", "classification", jsonl(review("Meh.", "negative"))))
    assert (first.version, second.version) == (1, 2) and first.status == "ready" and first.example_count == 3
    assert first.label_stats == {"positive": 2, "negative": 1} and first.byte_size == len(data) and first.sha256
    download = asyncio.run(datasets.download(owner, "reviews", 1))
    assert b"".join(download.chunks) == data
    assert [v.version for v in asyncio.run(datasets.get(owner, "reviews")).versions] == [1, 2]
    assert [d.name for d in asyncio.run(datasets.list(owner))] == [dataset.name]


def test_invalid_uploads_store_nothing(datasets, owner):
    with pytest.raises(InvalidRequest, match="line 2"):
        asyncio.run(datasets.upload(owner, "bad", "classification", jsonl(review("ok", "a"), {"text": "no label"})))
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(datasets.upload(owner, "../escape", "classification", jsonl(review("ok", "a"))))
    assert caught.value.param == "name"
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(datasets.upload(owner, "x", "poetry", jsonl(review("ok", "a"))))
    assert caught.value.param == "task_type"
    assert asyncio.run(datasets.list(owner)) == []
    assert not [p for p in datasets.files.root.rglob("*") if p.is_file()]  # refused before any file was written


def test_examples_are_paged_by_version_and_other_accounts_see_nothing(datasets, owner, db):
    examples = [review(f"text {i}", "a" if i % 2 else "b") for i in range(5)]
    asyncio.run(datasets.upload(owner, "paged", "classification", jsonl(*examples)))
    page = asyncio.run(datasets.examples(owner, "paged", "latest", offset=1, limit=2))
    assert page.examples == examples[1:3] and page.version.version == 1
    for bad in ({"offset": -1, "limit": 2}, {"offset": 0, "limit": 0}, {"offset": 0, "limit": 1001}):
        with pytest.raises(InvalidRequest):
            asyncio.run(datasets.examples(owner, "paged", None, **bad))
    with pytest.raises(InvalidRequest, match="version must be"):
        asyncio.run(datasets.version(owner, "paged", "first"))
    with pytest.raises(NotFound, match="no version 9"):
        asyncio.run(datasets.version(owner, "paged", 9))
    stranger = make_account(db, "stranger").id
    with pytest.raises(NotFound):
        asyncio.run(datasets.get(stranger, "paged"))


def test_deleting_one_version_then_the_last_removes_the_dataset(datasets, owner):
    asyncio.run(datasets.upload(owner, "d", "classification", jsonl(review("one", "a"))))
    _, second = asyncio.run(datasets.upload(owner, "d", "classification", jsonl(review("two", "a"))))
    gone = asyncio.run(datasets.delete(owner, "d", 1))
    assert [v.version for v in gone] == [1] and not datasets.files.data_path(gone[0].path).exists()
    assert [v.version for v in asyncio.run(datasets.get(owner, "d")).versions] == [2]
    asyncio.run(datasets.delete(owner, "d", 2))
    with pytest.raises(NotFound):
        asyncio.run(datasets.get(owner, "d"))
    assert not datasets.files.data_path(second.path).exists()


def test_a_job_appends_valid_examples_and_the_version_stays_undeletable_until_closed(datasets, owner):
    writer = asyncio.run(
        datasets.open_append(owner, "generated", "ner", source="generation", job_id=None, labels=["person"])
    )
    good = {"text": "Ann ran.", "entities": [{"start": 0, "end": 3, "label": "person", "text": "Ann"}]}
    off_label = {"text": "Acme won.", "entities": [{"start": 0, "end": 4, "label": "company", "text": "Acme"}]}
    assert asyncio.run(writer.append([good, off_label, {"text": "no entities key"}])) == 1
    assert writer.rejected == 2
    building = asyncio.run(datasets.version(owner, "generated", 1))[1]
    assert building.status == "building" and building.example_count == 1  # readable while written
    with pytest.raises(Conflict, match="still being written"):
        asyncio.run(datasets.delete(owner, "generated"))
    closed = asyncio.run(writer.close("partial"))
    assert closed.status == "partial" and closed.sha256 and closed.label_stats == {"person": 1}
    assert asyncio.run(datasets.examples(owner, "generated", 1, offset=0, limit=10)).examples == [good]
    assert datasets.finalize(closed.id, "ready").status == "partial"  # a closed version is not reopened
