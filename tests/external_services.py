"""Throwaway PostgreSQL and Redis servers on loopback, in temporary folders, for the tests that run on them.

``scripts/install-services`` installs Debian's ``postgresql`` and ``redis-server`` when missing (CI runs as
root). Where a binary is still missing the tests that need it are skipped with the reason, except under CI
(``CI`` set), where they fail. PostgreSQL refuses to run as root: as root, its folder is handed to ``nobody``
and ``initdb`` / ``pg_ctl`` run as that user (``runuser``). Both servers are stopped when the session ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port


def unavailable(reason: str) -> None:
    """Skip a test that needs a missing service, or fail it under CI (where scripts/test installs them)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: scripts/install-services should have installed it)")
    pytest.skip(reason)


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, or Debian's /usr/lib/postgresql/N/bin (newest)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """One PostgreSQL cluster (trust authentication on 127.0.0.1 only, fsync off: it is thrown away)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="outrider-pg-"))
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            self._as_user = ["runuser", "-u", "nobody", "--"]
        self._databases = 0

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_user, *command], check=True, capture_output=True, cwd=self.folder, timeout=120)

    def start(self) -> PostgresServer:
        data = self.folder / "data"
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder} -F -c max_connections=300"
        log = self.folder / "postgres.log"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """One redis-server with no persistence, in its own folder."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.folder = Path(tempfile.mkdtemp(prefix="outrider-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL is not installed (no pg_ctl/initdb): run scripts/install-services as root")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed: uv sync (the dev group holds the postgres extra)")
    return PostgresServer(bin_dir).start()


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed: run scripts/install-services as root")
    try:
        import redis  # noqa: F401
    except ImportError:
        unavailable("the redis client is not installed: uv sync (the dev group holds the redis extra)")
    return RedisServer(binary).start()
