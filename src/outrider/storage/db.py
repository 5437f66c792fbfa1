"""Engine, sessions and migrations. SQLite runs in WAL mode; PostgreSQL works through the same code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """Owns the engine and hands out sessions; one per process, built from settings."""

    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        connect_args = {"check_same_thread": False, "timeout": 10} if is_sqlite else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not is_sqlite)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # One thread for the per-call write transactions (call records, credit reservations), each batching
        # the calls that arrived meanwhile: one at a time, they never wait on each other's SQLite write lock
        # inside this process, and handing work to it costs less than to a shared pool.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outrider-db-writer")

    def migrate(self) -> None:
        """Apply every pending Alembic migration (idempotent; runs at start-up)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    async def in_writer(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a write transaction) on the writer thread and wait for it."""
        return await asyncio.get_running_loop().run_in_executor(self.writer, work)

    def dispose(self) -> None:
        self.writer.shutdown(wait=True)  # what was handed to the writer is written first
        self.engine.dispose()
