"""Dashboard pages over plain HTTP (no browser): pages need a session (a key is not enough), an ended session
redirects and clears its cookies, pages are rendered from the caller's own data and escaped, viewers get no
write forms, the CSV export matches the usage API, and no page shows in the OpenAPI schema."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import ADMIN_KEY, new_account
from tests.sessions import add_user, sign_in

PAGES = ["/ui/", "/ui/keys", "/ui/usage", "/ui/usage.csv", "/ui/models", "/ui/playground", "/ui/history"]
PAGES += ["/ui/datasets", "/ui/training", "/ui/history/inf_x", "/ui/datasets/x", "/ui/training/ft_x"]
PAGES += ["/ui/users", "/ui/generation/job_x"]


@pytest.fixture(scope="module")
def owner(server, admin):
    """An owner of a fresh account, signed in (the account's key made the user)."""
    key = new_account(admin, "dashboard-pages")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as keyed:
        user = add_user(keyed, "owner")
    client = sign_in(server.url, user["username"])
    yield client, key
    client.close()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_without_a_session_redirects_to_sign_in_even_with_a_key(server, path):
    for headers in ({}, {"X-API-Key": ADMIN_KEY}):
        response = httpx.get(server.url + path, headers=headers, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/ui/login?" + urlencode({"next": path}), path


def test_the_sign_in_page_and_static_files_need_no_session(server):
    login = httpx.get(server.url + "/ui/login")
    assert login.status_code == 200 and 'id="login-form"' in login.text and 'for="login-password"' in login.text
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY"
    script = httpx.get(server.url + "/ui/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and "uPlot" in script.text
    assert httpx.get(server.url + "/ui/static/vendor/uplot/LICENSE").status_code == 200


def test_an_ended_session_redirects_and_clears_its_cookies(server, admin):
    user = add_user(admin, "member")
    client = sign_in(server.url, user["username"])
    assert client.get("/ui/keys").status_code == 200
    stale = dict(client.cookies)
    assert client.post("/auth/logout").status_code == 204
    with httpx.Client(base_url=server.url, cookies=stale) as replay:
        response = replay.get("/ui/keys", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login?next=%2Fui%2Fkeys"
    assert any(c.startswith("outrider_session=") and "Max-Age=0" in c for c in response.headers.get_list("set-cookie"))


def test_the_sign_in_page_sends_someone_signed_in_to_the_overview(owner):
    client, _ = owner
    response = client.get("/ui/login", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    assert client.get("/ui/usage", params={"since": "2026-01-01"}).status_code == 200


def test_pages_show_the_accounts_own_keys_escaped(owner, admin):
    client, _ = owner
    created = client.post("/keys", json={"name": "<script>alert(1)</script>"})
    assert created.status_code == 201, created.text
    response = client.get("/ui/keys")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"  # a page with key prefixes is not cached
    page = response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert created.json()["prefix"] in page and created.json()["key"] not in page
    admin_keys = admin.get("/keys").json()["keys"]
    assert all(k["prefix"] not in page for k in admin_keys)  # another account's keys are not listed


def test_a_viewer_gets_no_write_forms(server, owner):
    client, _ = owner
    viewer = add_user(client, "viewer")
    seen = sign_in(server.url, viewer["username"])
    assert 'id="key-form"' not in seen.get("/ui/keys").text
    assert 'id="upload-form"' not in seen.get("/ui/datasets").text
    assert 'id="training-form"' not in seen.get("/ui/training").text
    assert 'id="generate-form"' not in seen.get("/ui/datasets").text
    seen.close()
    assert 'id="key-form"' in client.get("/ui/keys").text


def test_only_owners_see_the_users_page(server, owner):
    client, _ = owner
    member = add_user(client, "member")
    page = client.get("/ui/users")
    assert page.status_code == 200 and 'href="/ui/users"' in page.text
    assert member["username"] in page.text and 'id="user-form"' in page.text
    for role in ("member", "viewer"):
        seen = sign_in(server.url, add_user(client, role)["username"])
        refused = seen.get("/ui/users")
        assert refused.status_code == 403 and "needs the owner role" in refused.text
        assert member["username"] not in refused.text
        assert 'href="/ui/users"' not in seen.get("/ui/keys").text  # not in the navigation either
        seen.close()


def test_the_key_edit_form_is_filled_from_the_keys_as_the_api_shows_them(owner):
    client, _ = owner
    created = client.post("/keys", json={"name": "limited", "rpm_limit": 7, "optimize_mode": "latency"}).json()
    page = client.get("/ui/keys").text
    assert 'id="edit-form"' in page and "7 req/min" in page
    embedded = page.split('id="keys-data">', 1)[1].split("</script>", 1)[0]
    shown = next(k for k in json.loads(embedded) if k["id"] == created["id"])
    listed = {k["id"]: k for k in client.get("/keys").json()["keys"]}
    assert shown == listed[created["id"]]
    assert "key" not in shown and "hash" not in embedded  # never the raw key


def test_usage_page_and_csv_agree_with_the_usage_api(server, owner):
    client, key = owner
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=300) as keyed:
        for text in ("Anna works for Sony.", "Tim lives in Oslo."):
            body = {"model_id": "demo-extractor", "text": text, "schema": {"entities": ["person"]}}
            answer = keyed.post("/inference", json=body)
            assert answer.status_code == 200, answer.text
    api = client.get("/usage").json()
    exported = client.get("/ui/usage.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["id"] for r in rows] == [u["id"] for u in api["data"]] and len(rows) == 2
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(api["totals"]["cost_usd"])
    page = client.get("/ui/usage").text
    assert 'id="usage-requests">2<' in page
    balance = client.get("/credits").json()["balance_usd"]
    assert f'id="credit-balance">${balance:,.6f}'.rstrip("0") in page and "+$10.00" in page  # the grant
    assert client.get("/ui/usage.csv", params={"model_id": "nothing"}).text.count("\n") == 1
    overview = client.get("/ui/", params={"period": "day"}).text
    assert 'id="stat-requests">2<' in overview


def test_unknown_records_are_a_404_page_and_bad_filters_are_ignored(owner):
    client, _ = owner
    for path in ("/ui/history/inf_unknown", "/ui/datasets/unknown", "/ui/training/ft_unknown", "/ui/generation/job_x"):
        response = client.get(path)
        assert response.status_code == 404 and 'role="alert"' in response.text
    assert client.get("/ui/history", params={"since": "not a date"}).status_code == 200
    assert client.get("/ui/", params={"period": "century"}).status_code == 200


def test_no_dashboard_route_is_in_the_openapi_schema(server):
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]
