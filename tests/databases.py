"""A real, migrated database for unit tests of storage and services that need no server: the same engine,
pragmas and migrations as production, minus HTTP. ``db`` fixtures are parametrized over both stores: SQLite
in a temporary folder, and a fresh PostgreSQL database (a copy of one migrated template, so each test pays
for a ``CREATE DATABASE``, not for the migrations) on the session's throwaway server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from outrider.storage.db import Database
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.records import Account

BACKENDS = ("sqlite", "postgresql")


def database_url(request: pytest.FixtureRequest, folder: Path) -> str:
    """The URL of a new, migrated database for ``request``'s backend parameter (``sqlite`` without one)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        return f"sqlite:///{folder / 'outrider.db'}"
    template = request.getfixturevalue("postgres_template")
    return request.getfixturevalue("postgres").create_database(template=template)


@contextmanager
def migrated_database(folder: Path, url: str | None = None) -> Iterator[Database]:
    db = Database(url or f"sqlite:///{folder / 'outrider.db'}")
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


def make_account(db: Database, name: str, **kw: object) -> Account:
    with db.session() as s:
        return accounts_q.create_account(s, name, **kw)
