"""Signing in over real HTTP in tests: a browser-like client holding the session cookies."""

from __future__ import annotations

import uuid

import httpx

PASSWORD = "correct horse battery staple"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sign_in(url: str, login: str, password: str = PASSWORD) -> httpx.Client:
    """A client signed in as ``login``: cookies in its jar, and the CSRF header and Origin a page would send."""
    client = httpx.Client(base_url=url, timeout=300)
    response = client.post("/auth/login", json={"username": login, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = client.cookies["outrider_csrf"]
    client.headers["Origin"] = url
    return client


def add_user(owner: httpx.Client, role: str, account_id: str | None = None, password: str = PASSWORD) -> dict:
    """A new user (a unique username) made by ``owner`` through the API."""
    body = {"username": unique(role), "role": role, "password": password}
    if account_id is not None:
        body["account_id"] = account_id
    response = owner.post("/users", json=body)
    assert response.status_code == 201, response.text
    return response.json()
