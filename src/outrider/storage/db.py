"""Engine, sessions and migrations. SQLite runs in WAL mode; PostgreSQL works through the same code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from outrider.core.text import loads_repaired

if TYPE_CHECKING:
    from outrider.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")
MIGRATION_LOCK_KEY = 0x0F7121DE  # PostgreSQL advisory lock held while migrating
# A pooled server connection idle for longer than this is pinged before use (see ``_ping_when_idle``).
PING_AFTER_IDLE_S = 5.0


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _make_private(url: str) -> None:
    """Create the SQLite file 0600 before SQLite would (with the umask's mode, typically 0644): it holds key
    hashes and every account's records. SQLite gives its -wal, -shm and -journal files the database file's
    mode; existing ones are tightened too (an older install's)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite reports that itself
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # an empty file is an empty database to SQLite
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(f"{path}{suffix}", 0o600)


def _note_checkin(_dbapi_connection, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_when_idle(dbapi_connection, record: ConnectionPoolEntry, _proxy) -> None:
    """Pessimistic disconnect handling for connections that sat idle: a database restart, a failover or a
    firewall's idle timeout leaves them dead, and the pool replaces one that fails this ping (it retries the
    checkout on ``DisconnectionError``). SQLAlchemy's ``pool_pre_ping`` pings on every checkout instead: a
    round trip per transaction that cost the metered gateway path on PostgreSQL about a tenth of its time.
    A connection that dies while busy fails its statement; the engine then invalidates the pool, and the
    writer's batches retry once (``GroupCommit``)."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        raise DisconnectionError("a pooled connection failed its ping after sitting idle") from exc


class Database:
    """Owns the engine and hands out sessions; one per process, built from settings."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10, pool_timeout_s: float = 30.0) -> None:
        """``pool_size``, ``max_overflow`` and ``pool_timeout_s`` size the connection pool of a server database
        (PostgreSQL); SQLite keeps SQLAlchemy's own pool for files."""
        self.url = url
        is_sqlite = url.startswith("sqlite")
        if is_sqlite:
            _make_private(url)
        connect_args = {"check_same_thread": False, "timeout": 10} if is_sqlite else {}
        pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout_s}
        if is_sqlite:
            pool = {}
        self.engine: Engine = create_engine(
            url,
            connect_args=connect_args,
            **pool,
            # JSON columns read back with any lone surrogate (stored before request text was checked) repaired
            # to U+FFFD: one bad row must not make every later read of it fail to render.
            json_deserializer=loads_repaired,
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine, "checkin", _note_checkin)
            event.listen(self.engine, "checkout", _ping_when_idle)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # One thread for the per-call write transactions (call records, credit reservations), each batching
        # the calls that arrived meanwhile: one at a time, they never wait on each other's SQLite write lock
        # inside this process, and handing work to it costs less than to a shared pool.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outrider-db-writer")
        # A server database locks rows, not the file: credit reservations get a thread of their own there, so a
        # call's reservation does not queue behind the records being written (each a few network round trips).
        self.reservation_writer = (
            self.writer if is_sqlite else ThreadPoolExecutor(max_workers=1, thread_name_prefix="outrider-db-reserver")
        )
        self._head: str | None = None  # the migrations' head revision, read once

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.resolved_database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout_s=settings.database_pool_timeout_s,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def migrate(self) -> None:
        """Apply every pending Alembic migration (idempotent; runs at start-up)."""
        config = self._alembic_config()
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # API processes starting together on one database: one migrates, the others wait for its
                # commit (the lock is the transaction's) and then find nothing left to do.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        """One round trip to the database (``SELECT 1`` on a pooled connection); raises when it fails."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def migration_revisions(self) -> tuple[str | None, str | None]:
        """(the revision the database is at, the newest revision this code ships)."""
        if self._head is None:
            self._head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision(), self._head

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    async def in_writer(self, work: Callable[[], T], *, reservations: bool = False) -> T:
        """Run ``work`` (a write transaction) on the writer thread (``reservations``: the one of credit
        reservations) and wait for it."""
        executor = self.reservation_writer if reservations else self.writer
        return await asyncio.get_running_loop().run_in_executor(executor, work)

    def dispose(self) -> None:
        self.reservation_writer.shutdown(wait=True)
        self.writer.shutdown(wait=True)  # what was handed to the writer is written first
        self.engine.dispose()
