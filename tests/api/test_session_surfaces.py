"""The session cookie on every surface (native, OpenAI and Anthropic through their SDKs, datasets, training,
keys, credits), with each role's rights, in each surface's envelope."""

from contextlib import closing

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, SMOL, new_account
from tests.sessions import add_user, sign_in

DEMO_CALL = {
    "model_id": "demo-extractor",
    "text": "David Kim works for Sony in Berlin.",
    "schema": {"entities": ["person"]},
}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
JSONL = (
    b'{"text": "Tim Cook runs Apple.", "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook"}]}\n'
)


@pytest.fixture(scope="module")
def team(server, admin):
    """An account with an owner, a member and a viewer, each signed in."""
    with server.client(new_account(admin, "session-team")) as key_client:
        account_id = key_client.get("/me").json()["id"]
    users = {role: add_user(admin, role, account_id) for role in ("owner", "member", "viewer")}
    browsers = {role: sign_in(server.url, user["username"]) for role, user in users.items()}
    yield {"account_id": account_id, "users": users, **browsers}
    for browser in browsers.values():
        browser.close()


def cookie_headers(browser: httpx.Client, url: str, changes: dict) -> dict:
    """What a signed-in page sends: the cookies, the CSRF header and its origin (``changes``: None drops one)."""
    session, csrf = browser.cookies["outrider_session"], browser.cookies["outrider_csrf"]
    headers = {"Cookie": f"outrider_session={session}; outrider_csrf={csrf}", "X-CSRF-Token": csrf, "Origin": url}
    return {name: value for name, value in {**headers, **changes}.items() if value is not None}


def drop_api_key(request: httpx.Request) -> None:
    request.headers.pop("authorization", None)  # the OpenAI SDK always sends its api_key


def openai_client(server, browser, **changes) -> openai.OpenAI:
    http_client = httpx.Client(event_hooks={"request": [drop_api_key]})
    headers = cookie_headers(browser, server.url, changes)
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="unused", default_headers=headers, http_client=http_client, max_retries=0
    )


def anthropic_client(server, browser, **changes) -> anthropic.Anthropic:
    omitted = {"X-Api-Key": anthropic.Omit(), "Authorization": anthropic.Omit()}  # it sends either
    headers = {**omitted, **cookie_headers(browser, server.url, changes)}
    return anthropic.Anthropic(base_url=server.url, api_key="unused", default_headers=headers, max_retries=0)


def test_native_inference_history_and_feedback_by_role(team):
    member, viewer = team["member"], team["viewer"]
    response = member.post("/inference", json=DEMO_CALL)
    assert response.status_code == 200, response.text
    inference_id = response.json()["inference_id"]
    record = viewer.get(f"/inferences/{inference_id}")  # a viewer reads the account's history
    assert record.status_code == 200 and record.json()["surface"] == "native"
    refused = viewer.post("/inference", json=DEMO_CALL)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert viewer.post(f"/inferences/{inference_id}/feedback", json={"verdict": "correct"}).status_code == 403
    assert member.post(f"/inferences/{inference_id}/feedback", json={"verdict": "correct"}).status_code == 200
    assert viewer.get(f"/inferences/{inference_id}").json()["feedback"]["verdict"] == "correct"


def test_openai_sdk_with_the_cookie(server, team):
    member = openai_client(server, team["member"])
    completion = member.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=4, temperature=0)
    assert completion.usage.completion_tokens > 0
    assert SMOL in [m.id for m in openai_client(server, team["viewer"]).models.list().data]
    with pytest.raises(openai.PermissionDeniedError) as viewer_refused:
        openai_client(server, team["viewer"]).chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=4)
    assert viewer_refused.value.body["type"] == "permission_error" and "viewer" in viewer_refused.value.body["message"]
    with pytest.raises(openai.PermissionDeniedError) as no_csrf:
        openai_client(server, team["member"], **{"X-CSRF-Token": None}).chat.completions.create(
            model=SMOL, messages=QUESTION, max_tokens=4
        )
    assert no_csrf.value.body["code"] == "csrf_failed"
    forged = {"Cookie": "outrider_session=eyJhbGciOiJIUzI1NiJ9.e30.forged"}
    with pytest.raises(openai.AuthenticationError) as bad:
        openai_client(server, team["member"], **forged).models.list()
    assert bad.value.body["code"] == "invalid_session" and bad.value.body["type"] == "authentication_error"


def test_anthropic_sdk_with_the_cookie(server, team):
    member = anthropic_client(server, team["member"])
    message = member.messages.create(model=SMOL, max_tokens=4, messages=QUESTION)
    assert message.usage.output_tokens > 0
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        anthropic_client(server, team["viewer"]).messages.create(model=SMOL, max_tokens=4, messages=QUESTION)
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "permission_error", "message": "this user is a viewer: it can read but not change anything"},
    }
    with pytest.raises(anthropic.PermissionDeniedError) as cross_site:
        anthropic_client(server, team["member"], Origin="https://evil.example").messages.create(
            model=SMOL, max_tokens=4, messages=QUESTION
        )
    assert cross_site.value.body["error"]["type"] == "permission_error"


def test_datasets_and_training_by_role(team):
    member, viewer = team["member"], team["viewer"]
    created = member.post("/datasets", params={"name": "cookie-set", "task_type": "ner"}, content=JSONL)
    assert created.status_code == 201, created.text
    assert [d["name"] for d in viewer.get("/datasets").json()["datasets"]] == ["cookie-set"]
    assert viewer.get("/datasets/cookie-set/versions/1/examples").status_code == 200
    assert viewer.post("/datasets", params={"name": "v", "task_type": "ner"}, content=JSONL).status_code == 403
    assert viewer.delete("/datasets/cookie-set").status_code == 403
    assert viewer.get("/felix/training-jobs").status_code == 200
    job = {"name": "cookie-job", "base_model": "outrider/gliner2-minilm-l6", "datasets": [{"name": "cookie-set"}]}
    assert viewer.post("/felix/training-jobs", json=job).status_code == 403
    # The member gets past authentication and its role: the body is what is refused (an unknown field).
    assert member.post("/felix/training-jobs", json={**job, "no_such_field": 1}).status_code == 422
    assert member.delete("/datasets/cookie-set").status_code == 200


def test_keys_act_as_their_user_and_members_manage_only_their_own(server, team):
    owner, member = team["owner"], team["member"]
    owners_key = owner.post("/keys", json={"name": "owner's"}).json()
    made = member.post("/keys", json={"name": "member's"})
    assert made.status_code == 201 and made.json()["user_id"] == team["users"]["member"]["id"]
    assert [k["id"] for k in member.get("/keys").json()["keys"]] == [made.json()["id"]]
    assert {owners_key["id"], made.json()["id"]} <= {k["id"] for k in owner.get("/keys").json()["keys"]}
    assert member.delete(f"/keys/{owners_key['id']}").status_code == 404
    assert member.patch(f"/keys/{owners_key['id']}", json={"name": "mine now"}).status_code == 404
    assert team["viewer"].get("/keys").json()["keys"] == []
    with server.client(made.json()["key"]) as members_key:
        assert members_key.get("/auth/me").json()["role"] == "member"
        assert members_key.post("/users", json={"username": "sneaky", "role": "owner"}).status_code == 403
        assert members_key.post("/inference", json=DEMO_CALL).status_code == 200
        # The member becomes a viewer: its key now only reads, and its session has ended.
        demoted = owner.patch(f"/users/{team['users']['member']['id']}", json={"role": "viewer"})
        assert demoted.status_code == 200
        assert members_key.post("/inference", json=DEMO_CALL).status_code == 403
        assert member.get("/auth/me").status_code == 401
        assert owner.patch(f"/users/{team['users']['member']['id']}", json={"role": "member"}).status_code == 200
        assert members_key.post("/inference", json=DEMO_CALL).status_code == 200
    team["member"] = sign_in(server.url, team["users"]["member"]["username"])


def test_credits_and_usage_with_the_cookie(server, admin, team):
    assert team["member"].post("/inference", json=DEMO_CALL).status_code == 200
    for role in ("owner", "member", "viewer"):
        credits = team[role].get("/credits")
        assert credits.status_code == 200 and credits.json()["account_id"] == team["account_id"]
    usage = team["viewer"].get("/usage").json()
    assert usage["totals"]["requests"] >= 1 and all(u["api_key_id"] is None for u in usage["data"][:1])
    assert team["owner"].get("/credits/transactions").json()["total"] >= 1
    grant = {"account_id": team["account_id"], "amount_usd": 1}
    assert team["owner"].post("/credits/grants", json=grant).status_code == 403  # not an admin account
    admin_member = add_user(admin, "member")  # of the admin account
    with closing(sign_in(server.url, admin_member["username"])) as client:
        refused = client.post("/credits/grants", json=grant)
        assert refused.status_code == 403 and "owner" in refused.json()["detail"]
        assert client.post("/accounts", json={"name": "by-a-member"}).status_code == 403
    admin_user = [u for u in admin.get("/users").json()["users"] if u["username"] == "admin"]
    assert admin_user and admin_user[0]["role"] == "owner"
    with httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN_KEY}) as key_client:
        assert key_client.post("/credits/grants", json=grant).status_code == 201  # the bootstrap key: an owner
