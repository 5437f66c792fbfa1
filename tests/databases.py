"""A real, migrated SQLite database in a temporary folder, for unit tests of storage and services that need no
server: the same engine, pragmas and migrations as production, minus HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from outrider.storage.db import Database
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.records import Account


@contextmanager
def migrated_database(folder: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{folder / 'outrider.db'}")
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


def make_account(db: Database, name: str, **kw: object) -> Account:
    with db.session() as s:
        return accounts_q.create_account(s, name, **kw)
