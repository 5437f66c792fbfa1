"""Datasets over HTTP: versions, paging, byte-identical downloads, validation, imports, isolation, deletes."""

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import new_account

DATA = Path("/work/shared/data")
# Odd but valid formatting: spacing, key order, escapes, unicode, CRLF, a blank line, no final newline.
NER_JSONL = (
    '{"text": "Tim Cook runs Apple.", "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook"}]}\r\n'
    "\n"
    '{ "entities":[{"label":"city","text":"Z\\u00fcrich","start":0,"end":6}] ,"text":"Zürich is calm" }\n'
    '{"text": "Nothing here.", "entities": []}'
).encode()


@pytest.fixture(scope="module")
def owner(server, admin):
    with server.client(new_account(admin, "ds-owner")) as client:
        yield client


def upload(client, name, body, task_type="ner", **params):
    return client.post("/datasets", params={"name": name, "task_type": task_type, **params}, content=body)


def test_upload_page_and_download_round_trip_byte_for_byte(owner):
    created = upload(owner, "people", NER_JSONL)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["version"] == 1 and version["status"] == "ready" and version["example_count"] == 3
    assert version["byte_size"] == len(NER_JSONL) and version["sha256"] == hashlib.sha256(NER_JSONL).hexdigest()
    assert version["label_stats"] == {"person": 1, "city": 1}
    download = owner.get("/datasets/people/versions/1/download")
    assert download.status_code == 200 and download.content == NER_JSONL
    assert download.headers["content-type"].startswith("application/x-ndjson")
    page = owner.get("/datasets/people/versions/1/examples", params={"offset": 1, "limit": 5}).json()
    assert page["total"] == 3 and [e["text"] for e in page["examples"]] == ["Zürich is calm", "Nothing here."]
    assert owner.get("/datasets/people/versions/latest/examples", params={"offset": 3}).json()["examples"] == []


def test_a_second_write_makes_a_new_immutable_version(owner):
    first = upload(owner, "versioned", NER_JSONL).json()
    second_body = b'{"text": "Apple", "entities": [{"start": 0, "end": 5, "label": "company", "text": "Apple"}]}\n'
    second = upload(owner, "versioned", second_body).json()
    assert (first["version"], second["version"]) == (1, 2)
    dataset = owner.get("/datasets/versioned").json()
    assert dataset["latest_version"] == 2 and dataset["example_count"] == 1
    assert [v["example_count"] for v in dataset["versions"]] == [3, 1]
    assert owner.get("/datasets/versioned/versions/1/download").content == NER_JSONL
    assert owner.get("/datasets/versioned/versions/2/download").content == second_body
    assert "versioned" in [d["name"] for d in owner.get("/datasets").json()["datasets"]]


def test_multipart_upload_stores_the_file_part_exactly(owner):
    files = {"file": ("data.jsonl", NER_JSONL, "application/x-ndjson")}
    created = owner.post("/datasets", data={"name": "multipart", "task_type": "ner"}, files=files)
    assert created.status_code == 201, created.text
    assert owner.get("/datasets/multipart/versions/1/download").content == NER_JSONL


def test_malformed_jsonl_is_refused_with_its_line_number_and_nothing_is_stored(owner, server):
    before = sorted(p.name for p in (server.settings.data_dir / "datasets").rglob("*"))
    bad_json = NER_JSONL + b'\n{"text": "broken", "entities": [}\n'
    response = upload(owner, "broken", bad_json)
    assert response.status_code == 422 and response.json()["detail"].startswith("line 5: invalid JSON")
    wrong_span = (
        b'{"text": "ok", "entities": []}\n'
        b'{"text": "Apple", "entities": [{"start": 0, "end": 3, "label": "c", "text": "Apple"}]}\n'
    )
    response = upload(owner, "broken", wrong_span)
    assert response.status_code == 422 and response.json()["detail"].startswith("line 2: entities[0].text")
    assert owner.get("/datasets/broken").status_code == 404
    upload(owner, "kept", NER_JSONL)
    assert upload(owner, "kept", b"not json\n").status_code == 422
    assert [v["version"] for v in owner.get("/datasets/kept").json()["versions"]] == [1]
    after = sorted(p.name for p in (server.settings.data_dir / "datasets").rglob("*"))
    assert len(after) == len(before) + 2  # only "kept" v1: its JSONL and its offsets index


def test_bad_names_task_types_and_empty_files_are_422(owner):
    assert upload(owner, "../etc", NER_JSONL).status_code == 422
    assert upload(owner, "x", NER_JSONL, task_type="poetry").status_code == 422
    assert upload(owner, "x", b"\n\n").json()["detail"].startswith("the file holds no examples")
    assert owner.post("/datasets", content=NER_JSONL).json()["detail"].startswith("name is required")


def test_conll_and_csv_reference_data_import_in_one_call(owner):
    conll_bytes = (DATA / "wnut17/train.conll").read_bytes()
    conll = owner.post("/datasets/import", params={"name": "wnut17", "format": "conll"}, content=conll_bytes)
    assert conll.status_code == 201, conll.text
    body = conll.json()
    assert body["task_type"] == "ner" and body["example_count"] == 3394 and sum(body["label_stats"].values()) == 1975
    assert set(body["label_stats"]) == {"person", "location", "group", "creative-work", "corporation", "product"}
    csv = owner.post(
        "/datasets/import",
        data={"name": "banking77", "format": "csv"},
        files={"file": ("train.csv", (DATA / "banking77/train.csv").read_bytes(), "text/csv")},
    )
    assert csv.status_code == 201, csv.text
    assert csv.json()["example_count"] == 10003 and len(csv.json()["label_stats"]) == 77
    page = owner.get("/datasets/banking77/versions/1/examples", params={"offset": 10000, "limit": 10}).json()
    assert len(page["examples"]) == 3 and all(set(e) == {"text", "label"} for e in page["examples"])
    lines = owner.get("/datasets/wnut17/versions/1/download").content.decode().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 3394 and first["entities"][0]["text"] == "Empire State Building"


def test_accounts_cannot_see_each_others_datasets(owner, admin, server):
    upload(owner, "private", NER_JSONL)
    with server.client(new_account(admin, "ds-other")) as other:
        assert other.get("/datasets/private").status_code == 404
        assert other.get("/datasets/private/versions/1/examples").status_code == 404
        assert other.get("/datasets/private/versions/1/download").status_code == 404
        assert other.delete("/datasets/private").status_code == 404
        assert "private" not in [d["name"] for d in other.get("/datasets").json()["datasets"]]
        mine = upload(other, "private", b'{"text": "a", "label": "b"}\n', task_type="classification").json()
        assert mine["version"] == 1  # the same name is another dataset in another account
    assert owner.get("/datasets/private").json()["task_type"] == "ner"


def test_delete_a_version_then_the_dataset(owner, server):
    upload(owner, "doomed", NER_JSONL)
    upload(owner, "doomed", NER_JSONL)
    assert owner.delete("/datasets/doomed/versions/1").json() == {"name": "doomed", "deleted_versions": [1]}
    assert owner.get("/datasets/doomed/versions/1/examples").status_code == 404
    assert [v["version"] for v in owner.get("/datasets/doomed").json()["versions"]] == [2]
    assert owner.delete("/datasets/doomed").json()["deleted_versions"] == [2]
    assert owner.get("/datasets/doomed").status_code == 404
    assert owner.delete("/datasets/doomed").status_code == 404


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"text": "\\ud800abc", "entities": []}', "line 2: text: is not valid Unicode (a lone surrogate, U+D800)"),
        (b'{"text": "a", "entities": [], "metadata": {"score": NaN}}', "line 2: metadata.score: must be a finite"),
        (b'{"text": "a", "entities": [], "metadata": {"s": -Infinity}}', "line 2: metadata.s: must be a finite"),
        (b'{"text": "a", "entities": [], "metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, "line 2: nested"),
        (b'{"text": "a", "entities": [], "metadata": ' + b'{"a": ' * 80 + b"1" + b"}" * 81, "line 2: metadata.a"),
    ],
)
def test_examples_that_cannot_be_stored_or_rendered_are_refused_naming_line_and_field(owner, line, message):
    response = upload(owner, "unstorable", b'{"text": "fine", "entities": []}\n' + line + b"\n")
    assert response.status_code == 422 and response.json()["detail"].startswith(message), response.text
    assert owner.get("/datasets/unstorable").status_code == 404


def test_a_csv_field_longer_than_the_csv_modules_limit_imports(owner):
    long_text = "word " * 40_000  # 200,000 characters
    body = f'text,label\n"{long_text}",long\nshort,short\n'.encode()
    created = owner.post("/datasets/import", params={"name": "long-csv", "format": "csv"}, content=body)
    assert created.status_code == 201, created.text
    page = owner.get("/datasets/long-csv/versions/1/examples").json()
    assert page["examples"][0] == {"text": long_text, "label": "long"}
