"""/health stays liveness; /health/ready answers 200 when the database, its migrations and the embedded worker
are fine, and 503 naming the failing part when one is not, over real HTTP, each part broken for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from outrider.storage.db import Database
from tests.conftest import RunningServer, make_settings, start_server
from tests.waiting import wait_until


def ready(server: RunningServer) -> httpx.Response:
    return httpx.get(f"{server.url}/health/ready")  # no key: load balancers probe it


@pytest.fixture(scope="module")
def fragile(tmp_path_factory, base_models_dir) -> Iterator[RunningServer]:
    """A server of its own: the tests below break its parts."""
    running = start_server(make_settings(tmp_path_factory.mktemp("fragile"), base_models_dir, ready_timeout_s=2))
    yield running
    running.stop()


def test_ready_when_every_part_is(server):
    response = ready(server)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "migrations": "ok",
        "worker": "ok",
    }
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_a_server_without_an_embedded_worker_skips_that_check(tmp_path_factory, base_models_dir):
    running = start_server(make_settings(tmp_path_factory.mktemp("no-worker"), base_models_dir, embedded_worker=False))
    try:
        body = ready(running).json()
    finally:
        running.stop()
    assert body["status"] == "ready" and body["checks"]["worker"]["status"] == "skipped"


@contextmanager
def unreachable_database(db: Database, folder: Path) -> Iterator[None]:
    """The server's database swapped for one that cannot be opened (a file in a folder that does not exist)."""
    working = db.engine, db._sessions
    db.engine = create_engine(f"sqlite:///{folder}/missing-folder/outrider.db")
    db._sessions = sessionmaker(db.engine)
    try:
        yield
    finally:
        db.engine.dispose()
        db.engine, db._sessions = working


def test_a_database_that_fails_its_query_is_not_ready(fragile, tmp_path):
    with unreachable_database(fragile.services.db, tmp_path):
        response = ready(fragile)
        # A request that needs the database fails with the plain 500, which still carries its request id.
        headers = {"X-API-Key": "ork_never_seen_key_0123456789abcdef", "X-Request-ID": "during-outage"}
        failed = httpx.get(f"{fragile.url}/me", headers=headers)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready" and body["failing"] == ["database"]
    assert body["checks"]["database"]["detail"] == "query failed: OperationalError"
    assert body["checks"]["migrations"]["status"] == "skipped"
    assert failed.status_code == 500 and failed.json() == {"detail": "internal server error"}
    assert failed.headers["x-request-id"] == "during-outage"
    assert httpx.get(f"{fragile.url}/health").status_code == 200  # still alive
    assert ready(fragile).status_code == 200


def test_a_database_behind_the_code_s_migrations_is_not_ready(fragile):
    engine = fragile.services.db.engine
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        response = ready(fragile)
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["migrations"]
    assert body["checks"]["migrations"]["detail"] == f"the database is at revision older, this version needs {head}"
    assert ready(fragile).status_code == 200


def test_a_dead_worker_is_not_ready(fragile):
    """Last in this module: the worker is not restarted."""
    (worker,) = fragile.services.jobs.local_workers
    claim_loop = worker._tasks[0]
    claim_loop.get_loop().call_soon_threadsafe(claim_loop.cancel)
    wait_until(claim_loop.done, what="the claim loop to end")
    response = ready(fragile)
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert body["checks"]["worker"]["detail"] == "the worker's claim loop ended"
    assert body["checks"]["database"]["status"] == "ok"
