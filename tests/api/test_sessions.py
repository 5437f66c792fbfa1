"""Sign-in sessions over real HTTP: cookies, sign-out and password changes that end them, CSRF and origin
checks, tampered / expired / renewed tokens, the sign-in throttle and constant-time refusals."""

import statistics
import time

import httpx
import jwt
import pytest

from tests.conftest import ADMIN_KEY, make_settings, start_server
from tests.sessions import PASSWORD, add_user, sign_in

ADMIN_PASSWORD = "the admin's own password"
TRUSTED = "https://dash.example"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, base_models_dir):
    settings = make_settings(
        tmp_path_factory.mktemp("sessions"),
        base_models_dir,
        admin_password=ADMIN_PASSWORD,
        login_failures_per_user=3,
        login_window_s=600,
        session_trusted_origins=[TRUSTED],
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def owner(srv):
    client = sign_in(srv.url, "admin", ADMIN_PASSWORD)
    yield client
    client.close()


def claims_of(srv, token: str) -> dict:
    return jwt.decode(token, srv.settings.secret_key, algorithms=["HS256"], issuer="outrider")


def forged(srv, claims: dict, secret: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret or srv.settings.secret_key, algorithm=algorithm)


def with_session(srv, token: str, csrf: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=srv.url, timeout=60, headers={"Origin": srv.url})
    client.cookies.set("outrider_session", token, domain="127.0.0.1")  # where the server's own would go
    if csrf is not None:
        client.cookies.set("outrider_csrf", csrf, domain="127.0.0.1")
        client.headers["X-CSRF-Token"] = csrf
    return client


def test_sign_in_sets_an_httponly_lax_session_cookie_and_a_readable_csrf_cookie(srv):
    with httpx.Client(base_url=srv.url) as client:
        response = client.post("/auth/login", json={"username": "ADMIN", "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
        session, csrf = cookies["outrider_session"].lower(), cookies["outrider_csrf"].lower()
        for cookie in (session, csrf):
            assert "samesite=lax" in cookie and "path=/" in cookie and "max-age=43200" in cookie
            assert "secure" not in cookie  # plain http on loopback
        assert "httponly" in session and "httponly" not in csrf
        body = response.json()
        assert body["user"]["username"] == "admin" and body["role"] == "owner" and body["account"]["is_admin"]
        assert body["csrf_token"] == client.cookies["outrider_csrf"]
        claims = claims_of(srv, client.cookies["outrider_session"])
        assert claims["sub"] == body["user"]["id"] and claims["exp"] - claims["iat"] == 43200
        me = client.get("/auth/me").json()
        assert me["user"]["id"] == body["user"]["id"] and me["expires_at"] is not None and me["csrf_token"] is None
        assert client.get("/me").json()["name"] == "admin"  # every key-authenticated endpoint takes the cookie


def test_cookies_are_secure_when_the_request_came_over_https(srv):
    # uvicorn trusts X-Forwarded-Proto from loopback (a TLS-terminating proxy in front of the server).
    with httpx.Client(base_url=srv.url, headers={"X-Forwarded-Proto": "https"}) as client:
        response = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert response.status_code == 200
        assert all("secure" in c.lower() for c in response.headers.get_list("set-cookie"))


def test_email_sign_in_and_malformed_bodies(srv, owner):
    created = owner.post("/users", json={"username": "grace", "email": "Grace@Example.org", "password": PASSWORD})
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "grace@example.org" and created.json()["role"] == "member"
    with httpx.Client(base_url=srv.url) as client:
        assert client.post("/auth/login", json={"email": "GRACE@example.org", "password": PASSWORD}).status_code == 200
        both = {"username": "grace", "email": "grace@example.org", "password": PASSWORD}
        for body in (both, {"password": PASSWORD}, {"username": "grace"}, {"username": "grace", "password": 5}):
            assert client.post("/auth/login", json=body).status_code == 422
        invalid = b'{"username": "gr\\udc00ace", "password": "x"}'  # a lone surrogate
        response = client.post("/auth/login", content=invalid, headers={"content-type": "application/json"})
        assert response.status_code == 422


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(srv):
    user = add_user(srv.client(ADMIN_KEY), "member")
    browser = sign_in(srv.url, user["username"])
    token, csrf = browser.cookies["outrider_session"], browser.cookies["outrider_csrf"]
    with with_session(srv, token, csrf) as thief:
        assert thief.get("/auth/me").status_code == 200
        # Without the CSRF header a cross-site page cannot sign the user out either.
        assert browser.post("/auth/logout", headers={"X-CSRF-Token": ""}).status_code == 403
        assert thief.get("/auth/me").status_code == 200
        response = browser.post("/auth/logout")
        assert response.status_code == 204
        assert all("max-age=0" in c.lower() for c in response.headers.get_list("set-cookie"))
        refused = thief.get("/auth/me")
        assert refused.status_code == 401 and "ended" in refused.json()["detail"]
        assert thief.post("/keys", json={"name": "after logout"}).status_code == 401
    assert browser.post("/auth/logout").status_code == 204  # signing out twice is not an error


def test_a_password_change_ends_other_sessions_and_keeps_this_one(srv):
    user = add_user(srv.client(ADMIN_KEY), "viewer")  # a viewer may change its own password
    browser, other = sign_in(srv.url, user["username"]), sign_in(srv.url, user["username"])
    wrong = browser.post("/auth/password", json={"current_password": "nope-nope", "new_password": "n3w password!"})
    assert wrong.status_code == 401
    short = browser.post("/auth/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert short.status_code == 422
    changed = browser.post("/auth/password", json={"current_password": PASSWORD, "new_password": "n3w password!"})
    assert changed.status_code == 200, changed.text
    browser.headers["X-CSRF-Token"] = changed.json()["csrf_token"]
    assert browser.cookies["outrider_csrf"] == changed.json()["csrf_token"]
    assert browser.get("/auth/me").status_code == 200
    assert other.get("/auth/me").status_code == 401
    with httpx.Client(base_url=srv.url) as client:
        old = client.post("/auth/login", json={"username": user["username"], "password": PASSWORD})
        assert old.status_code == 401
    sign_in(srv.url, user["username"], "n3w password!").close()


def test_tampered_foreign_and_expired_tokens_are_401(srv, owner):
    token = owner.cookies["outrider_session"]
    claims = claims_of(srv, token)
    now = int(time.time())
    head, body, signature = token.split(".")
    tampered = [
        f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}",
        forged(srv, {**claims, "sub": "user_someone_else"}, secret="another secret entirely, 32+ chars"),
        forged(srv, {**claims, "ver": "0"}),  # a claim of the wrong type
        jwt.encode(claims, None, algorithm="none"),
        "not a token",
        "",
    ]
    for bad in tampered:
        with with_session(srv, bad) as client:
            response = client.get("/auth/me")
            assert response.status_code == 401, bad
            if bad:  # an empty cookie is no session at all: "missing API key"
                assert response.json()["detail"] == "invalid session token", bad
    expired = forged(srv, {**claims, "iat": now - 100, "exp": now - 1})
    with with_session(srv, expired) as client:
        response = client.get("/credits")
        assert response.status_code == 401 and "expired" in response.json()["detail"]
        assert any("max-age=0" in c.lower() for c in response.headers.get_list("set-cookie"))  # cleared


def test_a_session_past_half_its_life_is_renewed_but_never_past_its_maximum_age(srv, owner):
    claims = claims_of(srv, owner.cookies["outrider_session"])
    csrf = owner.cookies["outrider_csrf"]
    now = int(time.time())
    old = forged(srv, {**claims, "iat": now - 30_000, "exp": now + 13_200, "auth": now - 30_000})
    with with_session(srv, old, csrf) as client:
        response = client.get("/credits")
        assert response.status_code == 200
        renewed = claims_of(srv, client.cookies["outrider_session"])
        assert renewed["iat"] >= now and renewed["exp"] >= now + 43_000 and renewed["auth"] == now - 30_000
        assert renewed["csrf"] == claims["csrf"] and client.cookies["outrider_csrf"] == csrf
    fresh = forged(srv, {**claims, "iat": now - 10, "exp": now + 43_190})
    with with_session(srv, fresh, csrf) as client:
        assert client.get("/credits").headers.get("set-cookie") is None  # not yet half-way
    # Signed in almost a week ago: renewal would go past the 7-day maximum, so the token only runs out.
    aged = forged(srv, {**claims, "iat": now - 30_000, "exp": now + 100, "auth": now - 604_700})
    with with_session(srv, aged, csrf) as client:
        assert client.get("/credits").status_code == 200
        assert claims_of(srv, client.cookies["outrider_session"])["exp"] == now + 100


def test_cookie_signed_writes_need_the_csrf_header_and_the_same_origin(srv, owner):
    csrf, url = owner.cookies["outrider_csrf"], srv.url

    def create(headers: dict, **kwargs) -> httpx.Response:
        with httpx.Client(base_url=url, cookies=owner.cookies, headers=headers) as client:
            return client.post("/keys", **({"json": {"name": "csrf"}} | kwargs))

    refused = [
        {"Origin": url},  # no header
        {"Origin": url, "X-CSRF-Token": "guessed"},
        {"Origin": "http://evil.example", "X-CSRF-Token": csrf},
        {"Origin": "null", "X-CSRF-Token": csrf},
        {"X-CSRF-Token": csrf},  # neither Origin nor Referer
        {"Referer": "http://evil.example/page", "X-CSRF-Token": csrf},
        {"Origin": url.replace("127.0.0.1", "localhost"), "X-CSRF-Token": csrf},
    ]
    before = len(owner.get("/keys").json()["keys"])
    for headers in refused:
        response = create(headers)
        assert response.status_code == 403 and response.json()["detail"], headers
    # A cross-site HTML form posting with the cookie: refused before its body is even read.
    form = create({"Origin": "http://evil.example"}, data={"name": "form"}, json=None)
    assert form.status_code == 403
    assert len(owner.get("/keys").json()["keys"]) == before
    assert create({"Origin": url, "X-CSRF-Token": csrf}).status_code == 201
    assert create({"Referer": f"{url}/ui/keys", "X-CSRF-Token": csrf}).status_code == 201
    assert create({"Origin": TRUSTED, "X-CSRF-Token": csrf}).status_code == 201


def test_the_csrf_token_is_bound_to_its_session(srv, owner):
    """An attacker who plants its own CSRF cookie (and sends it as the header) still fails: the token's
    digest is signed into the victim's session token."""
    attacker = sign_in(srv.url, "admin", ADMIN_PASSWORD)
    planted = attacker.cookies["outrider_csrf"]
    with with_session(srv, owner.cookies["outrider_session"], planted) as client:
        assert client.post("/keys", json={"name": "planted"}).status_code == 403


def test_an_api_key_wins_over_the_cookie_and_needs_no_csrf_header(srv, owner):
    member = add_user(owner, "member")
    with httpx.Client(base_url=srv.url, cookies=owner.cookies, headers={"X-API-Key": ADMIN_KEY}) as client:
        assert client.post("/keys", json={"name": "by key"}).status_code == 201
    browser = sign_in(srv.url, member["username"])
    with httpx.Client(
        base_url=srv.url, cookies=browser.cookies, headers={"X-API-Key": "ork_wrong_key_0000000000"}
    ) as c:
        assert c.get("/auth/me").status_code == 401  # a bad key is not rescued by a cookie


def test_cross_site_sign_in_is_refused(srv):
    with httpx.Client(base_url=srv.url, headers={"Origin": "http://evil.example"}) as client:
        response = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert response.status_code == 403 and "outrider_session" not in client.cookies


def test_failed_sign_ins_are_throttled_per_user_and_cleared_by_a_success(srv, owner):
    user, other = add_user(owner, "member"), add_user(owner, "member")

    def attempt(name: str, password: str) -> httpx.Response:
        with httpx.Client(base_url=srv.url) as client:
            return client.post("/auth/login", json={"username": name, "password": password})

    assert [attempt(user["username"], "wrong one!").status_code for _ in range(2)] == [401, 401]
    assert attempt(user["username"], PASSWORD).status_code == 200  # clears the count
    statuses = [attempt(user["username"], "wrong one!").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    throttled = attempt(user["username"], PASSWORD)  # even the right password waits now
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 600
    assert "too many sign-in attempts" in throttled.json()["detail"]
    assert attempt(user["username"].upper(), PASSWORD).status_code == 429  # the same name in any case
    assert attempt(other["username"], PASSWORD).status_code == 200
    assert [attempt("nobody-at-all", "x-x-x-x-x").status_code for _ in range(4)] == [401, 401, 401, 429]


def test_sign_in_attempts_are_throttled_per_address(tmp_path, base_models_dir):
    settings = make_settings(tmp_path, base_models_dir, admin_password=ADMIN_PASSWORD, login_attempts_per_address=4)
    running = start_server(settings)
    try:
        with httpx.Client(base_url=running.url) as client:
            names = ["a", "b", "c", "admin"]
            statuses = [
                client.post("/auth/login", json={"username": n, "password": "guess-guess"}).status_code for n in names
            ]
            assert statuses == [401, 401, 401, 401]
            response = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            assert response.status_code == 429 and "this address" in response.json()["detail"]
            assert int(response.headers["Retry-After"]) >= 1
    finally:
        running.stop()


def test_unknown_names_are_refused_as_slowly_and_as_vaguely_as_wrong_passwords(srv, owner):
    user = add_user(owner, "member")
    disabled = add_user(owner, "member")
    assert owner.patch(f"/users/{disabled['id']}", json={"disabled": True}).status_code == 200

    def timed(name: str, password: str) -> tuple[float, httpx.Response]:
        with httpx.Client(base_url=srv.url) as client:
            started = time.perf_counter()
            response = client.post("/auth/login", json={"username": name, "password": password})
            return time.perf_counter() - started, response

    wrong = [timed(user["username"], "wrong-password")[0] for _ in range(2)]
    unknown = []
    for i in range(2):
        elapsed, response = timed(f"no-such-user-{i}", "wrong-password")
        unknown.append(elapsed)
        assert response.status_code == 401 and response.json()["detail"] == "invalid username, email or password"
    refused = timed(disabled["username"], PASSWORD)[1]  # the right password of a disabled user
    assert refused.status_code == 401 and refused.json()["detail"] == "invalid username, email or password"
    # Both verify an argon2 hash (tens of milliseconds at least); a skipped check would answer in about 1 ms.
    assert statistics.median(unknown) > 0.4 * statistics.median(wrong)
