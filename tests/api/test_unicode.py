"""Text that is not valid Unicode (a lone surrogate), NaN and deep nesting: refused at the boundary on every
surface and upload, in the surface's envelope; and a bad value stored before is rendered, never a 500.

The SDKs cannot send a lone surrogate (they encode bodies as UTF-8), so these tests send raw JSON text in
which ``\\ud800`` is an escape, as a careless client's JSON encoder does.
"""

import json

import pytest

from outrider.api.bodies import CheckedBody
from outrider.storage.queries import datasets as dq
from outrider.storage.queries import inferences as iq
from outrider.storage.records import NewInference
from tests.api.test_inference import DEMO, SMOL
from tests.conftest import new_account

SCHEMA = {"entities": ["person"]}
REPLACEMENT = "\ufffd"


@pytest.fixture(scope="module")
def client(server, admin):
    with server.client(new_account(admin, "unicode-owner")) as c:
        yield c


def post_raw(client, path, body, method="POST"):
    """``body`` as JSON text with ASCII escapes (so a lone surrogate travels as ``\\udXXX``)."""
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.request(method, path, content=content, headers={"content-type": "application/json"})


# (path, body, the field's location) for every JSON request body; each holds one lone surrogate.
SURROGATE_BODIES = [
    ("/inference", {"model_id": DEMO, "text": "\ud800 Tim", "schema": SCHEMA}, ["text"]),
    (
        "/inference",
        {"model_id": SMOL, "task": "generate", "messages": [{"role": "user", "content": "\udfff"}]},
        ["messages", 0, "content"],
    ),
    (
        "/v1/chat/completions",
        {"model": SMOL, "messages": [{"role": "user", "content": "hi \udfff"}]},
        ["messages", 0, "content"],
    ),
    (
        "/v1/chat/completions",
        {"model": SMOL, "messages": [{"role": "user", "content": [{"type": "text", "text": "a\ud83d"}]}]},
        ["messages", 0, "content", 0, "text"],
    ),
    ("/v1/completions", {"model": SMOL, "prompt": "\ud800", "max_tokens": 2}, ["prompt"]),
    ("/v1/responses", {"model": SMOL, "input": "x\udc00y"}, ["input"]),
    (
        "/v1/messages",
        {"model": SMOL, "max_tokens": 2, "messages": [{"role": "user", "content": "\ud800"}]},
        ["messages", 0, "content"],
    ),
    ("/v1/messages", {"model": SMOL, "max_tokens": 2, "system": "\udbff", "messages": []}, ["system"]),
    (
        "/inferences/inf_unknown/feedback",
        {"verdict": "incorrect", "corrected_output": {"a": ["\ud800"]}},
        ["corrected_output", "a", 0],
    ),
    ("/keys", {"name": "k", "model_pool": [DEMO, "\ud800"]}, ["model_pool", 1]),
    (
        "/felix/training-jobs",
        {"model_name": "m", "base_model": DEMO, "datasets": [{"name": "\ud800"}]},
        ["datasets", 0, "name"],
    ),
    ("/generate", {"task_type": "ner", "dataset_name": "d", "num_examples": 1, "labels": ["\ud800"]}, ["labels", 0]),
    ("/generate/ner/label-existing", {"labels": ["person"], "inputs": ["ok", "\udfff"]}, ["inputs", 1]),
    (
        "/inference",
        {"model_id": DEMO, "text": "Tim", "schema": {"entities": {"k\ud800": "a description"}}},
        ["schema", "entities", f"k{REPLACEMENT}"],
    ),  # a key is named repaired: the error itself must render
]


@pytest.mark.parametrize(("path", "body", "loc"), SURROGATE_BODIES)
def test_a_lone_surrogate_is_a_422_naming_the_field_in_each_surfaces_envelope(client, path, body, loc):
    response = post_raw(client, path, body)
    assert response.status_code == 422, response.text
    dotted = ".".join(str(p) for p in loc)
    if path.startswith("/v1/messages"):
        error = response.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].startswith(f"{dotted}: is not valid Unicode")
    elif path.startswith("/v1/"):
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == dotted
        assert "not valid Unicode (a lone surrogate, U+D" in error["message"]
    else:
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", *loc] and "not valid Unicode" in detail[0]["msg"], detail


def test_admin_bodies_are_checked_too(admin):
    response = post_raw(admin, "/accounts", {"name": "a\ud800"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "name"]
    response = post_raw(admin, "/credits/grants", {"account_name": "x", "amount_usd": 1, "description": "\ud800"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "description"]


def _subclasses(cls: type) -> set[str]:
    return {name for sub in cls.__subclasses__() for name in (sub.__name__, *_subclasses(sub))}


def test_every_json_body_route_is_checked(client):
    """A new route whose body model does not inherit CheckedBody would let a lone surrogate reach storage."""
    checked = _subclasses(CheckedBody)
    spec = client.get("/openapi.json").json()

    def model_name(schema: dict) -> str:
        # an optional body is anyOf [the model, null]
        ref = schema.get("$ref") or next(s["$ref"] for s in schema.get("anyOf", []) if "$ref" in s)
        return ref.rsplit("/", 1)[-1]

    bodies = [
        (path, model_name(op["requestBody"]["content"]["application/json"]["schema"]))
        for path, ops in spec["paths"].items()
        for op in ops.values()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    assert len(bodies) >= 14
    assert [(path, model) for path, model in bodies if model not in checked] == []


def test_valid_non_ascii_text_and_surrogate_pairs_still_pass(client):
    body = {"model_id": DEMO, "text": "Zoë Müller 😀 works for Netflix.", "schema": SCHEMA, "store": False}
    response = post_raw(client, "/inference", body)  # the emoji travels as the escaped pair \ud83d\ude00
    assert response.status_code == 200, response.text


def test_nan_and_infinity_are_refused(client):
    response = post_raw(client, "/v1/chat/completions", f'{{"model": "{SMOL}", "temperature": NaN, "messages": []}}')
    error = response.json()["error"]
    assert response.status_code == 422 and error["param"] == "temperature" and "finite" in error["message"]
    response = post_raw(client, "/inferences/inf_x/feedback", '{"verdict": "correct", "corrected_output": [-Infinity]}')
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "corrected_output", 0]


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_bodies_are_422_in_each_envelope(client, depth):
    nested = '{"a": ' * depth + "1" + "}" * depth
    native = post_raw(client, "/inference", f'{{"model_id": "{DEMO}", "text": "x", "schema": {nested}}}')
    assert native.status_code == 422, native.text
    assert "nested" in native.json()["detail"][0]["msg"]
    openai = post_raw(client, "/v1/chat/completions", f'{{"model": "{SMOL}", "messages": [], "x": {nested}}}')
    assert openai.status_code == 422 and openai.json()["error"]["type"] == "invalid_request_error"
    assert "nested" in openai.json()["error"]["message"]
    anthropic = post_raw(client, "/v1/messages", f'{{"model": "{SMOL}", "max_tokens": 1, "metadata": {nested}}}')
    assert anthropic.status_code == 422 and anthropic.json()["error"]["type"] == "invalid_request_error"


def test_bodies_that_are_not_utf8_or_not_json_are_422_invalid_request_everywhere(client):
    for body in (b'{"model": "\xff\xfe"}', b'{"model": '):
        native = post_raw(client, "/inference", body)
        assert native.status_code == 422 and native.json()["detail"][0]["type"] == "json_invalid"
        openai = post_raw(client, "/v1/chat/completions", body)
        assert openai.status_code == 422 and openai.json()["error"]["type"] == "invalid_request_error"
        assert openai.json()["error"]["message"].startswith("the body is not valid")
        anthropic = post_raw(client, "/v1/messages", body)
        assert anthropic.status_code == 422 and anthropic.json()["error"]["type"] == "invalid_request_error"


def test_a_chunked_body_over_the_limit_is_413_in_each_envelope(client, server):
    limit = server.settings.max_request_bytes

    def chunks():  # no Content-Length: the limit can only be noticed while reading
        for _ in range(limit // 1_000_000 + 2):
            yield b" " * 1_000_000

    for path, check in (
        ("/inference", lambda b: "larger than" in b["detail"]),
        ("/v1/chat/completions", lambda b: b["error"]["code"] == "payload_too_large"),
        ("/v1/messages", lambda b: b["error"]["type"] == "request_too_large"),
    ):
        response = client.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413 and check(response.json()), (path, response.text)


def test_a_trailing_slash_is_not_redirected_to_the_clients_host(server):
    with server.client(None, headers={"Host": "evil.example"}) as anonymous:
        response = anonymous.get("/datasets/", follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers


# -- reads of values stored before the boundary checked them ---------------------------------------------------


def test_history_with_a_stored_lone_surrogate_still_renders(server, admin):
    key = new_account(admin, "unicode-legacy-history")
    account_id = server.services.accounts.authenticate(key).account.id
    bad = NewInference(
        account_id=account_id,
        api_key_id=None,
        surface="native",
        model_id=DEMO,
        model_used=DEMO,
        task="extract",
        input={"text": "\ud800 Tim", "messages": [{"role": "user", "content": "x\udfff"}]},
        output={"k\udc00": ["\ud800"]},
        status="error",
        latency_ms=1.0,
        routing={"reason": "\ud800"},
    )
    with server.services.db.session() as session:
        record = iq.insert_inference(session, bad)
        iq.upsert_feedback(
            session,
            inference_id=record.id,
            account_id=account_id,
            verdict="incorrect",
            corrected_output={"a": "\udbff"},
            notes=None,
        )
    with server.client(key) as client:
        for params in ({}, {"task": "extract"}, {"offset": 0, "limit": 5}):
            page = client.get("/inferences", params=params)
            assert page.status_code == 200, page.text
            assert page.json()["inferences"][0]["input"]["text"] == f"{REPLACEMENT} Tim"
        one = client.get(f"/inferences/{record.id}")
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["input"]["messages"][0]["content"] == f"x{REPLACEMENT}"
        assert body["output"] == {f"k{REPLACEMENT}": [REPLACEMENT]}
        assert body["feedback"]["corrected_output"] == {"a": REPLACEMENT}


def test_a_stored_example_with_a_lone_surrogate_still_pages(server, admin):
    key = new_account(admin, "unicode-legacy-dataset")
    account_id = server.services.accounts.authenticate(key).account.id
    data = b'{"text": "\\ud800abc", "entities": [], "metadata": {"k\\udfff": "v"}}\n'
    rel = f"{account_id}/dsv_legacy.jsonl"
    server.services.datasets.files.write(rel, data, [(0, len(data) - 1)])
    new = dq.NewVersion(
        id="dsv_legacy",
        task_type="ner",
        status="ready",
        source="upload",
        path=rel,
        example_count=1,
        byte_size=len(data),
        label_stats={"per\ud800": 1},
    )
    with server.services.db.session() as session:
        dq.add_version(session, account_id, "legacy", new)
    with server.client(key) as client:
        page = client.get("/datasets/legacy/versions/1/examples")
        assert page.status_code == 200, page.text
        expected = {"text": f"{REPLACEMENT}abc", "entities": [], "metadata": {f"k{REPLACEMENT}": "v"}}
        assert page.json()["examples"] == [expected]
        assert client.get("/datasets").status_code == 200
        assert client.get("/datasets/legacy").json()["versions"][0]["label_stats"] == {f"per{REPLACEMENT}": 1}
        assert client.get("/datasets/legacy/versions/1/download").content == data  # the bytes as stored
