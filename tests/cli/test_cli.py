"""The ``outrider`` command line: help, local key/account management, serve, infer."""

import json
import os
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from outrider.cli.main import app
from tests.conftest import free_port

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "keys", "accounts", "infer"):
        assert command in result.output
    assert "--port" in runner.invoke(app, ["serve", "--help"]).output


def test_accounts_and_keys_are_managed_against_the_local_database(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    created = runner.invoke(app, ["accounts", "create", "team-a", *data])
    assert created.exit_code == 0, created.output
    raw = created.stdout.strip().splitlines()[-1]
    assert raw.startswith("ork_")
    assert "team-a" in runner.invoke(app, ["accounts", "list", *data]).output
    issued = runner.invoke(app, ["keys", "create", "--account", "team-a", "--name", "laptop", *data])
    assert issued.exit_code == 0 and issued.stdout.strip().startswith("ork_")
    listing = runner.invoke(app, ["keys", "list", *data]).output
    assert "laptop" in listing and issued.stdout.strip() not in listing  # prefixes only
    key_id = next(line.split()[0] for line in listing.splitlines() if "laptop" in line)
    assert runner.invoke(app, ["keys", "revoke", key_id, *data]).exit_code == 0
    assert "revoked" in next(
        line for line in runner.invoke(app, ["keys", "list", *data]).output.splitlines() if "laptop" in line
    )
    assert runner.invoke(app, ["keys", "create", "--account", "nobody", *data]).exit_code == 1
    # The API's naming rules hold here too: a clear message and exit 1, no traceback.
    unsafe = runner.invoke(app, ["accounts", "create", "../../evil", *data])
    assert unsafe.exit_code == 1 and "name must be" in unsafe.output and "Traceback" not in unsafe.output
    assert runner.invoke(app, ["accounts", "create", "team-a", *data]).exit_code == 1  # taken


def test_credits_are_granted_and_shown_from_the_shell(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["accounts", "create", "team-c", *data]).exit_code == 0
    granted = runner.invoke(app, ["credits", "grant", "team-c", "2.5", "--description", "pilot", *data])
    assert granted.exit_code == 0, granted.output
    assert "$2.500000" in runner.invoke(app, ["credits", "show", "team-c", *data]).output
    assert runner.invoke(app, ["credits", "grant", "team-c", "0", *data]).exit_code == 1
    assert runner.invoke(app, ["credits", "show", "nobody", *data]).exit_code == 1
    assert "unlimited" in runner.invoke(app, ["credits", "show", "admin", *data]).output


def test_infer_calls_a_running_server(server):
    result = runner.invoke(
        app,
        [
            "infer",
            "-m",
            "demo-extractor",
            "-t",
            "David Kim works for Sony in Berlin.",
            "-e",
            "person,company",
            "--url",
            server.url,
        ],
        env={"OUTRIDER_API_KEY": "ork_test_admin_key_0123456789abcdef"},
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["type"] == "encoder" and "person" in body["result"]["entities"]


def test_serve_starts_prints_the_admin_key_and_password_once_and_keeps_them_across_restarts(tmp_path, base_models_dir):
    port = free_port()
    env = {**os.environ, "OUTRIDER_DATA_DIR": str(tmp_path), "OUTRIDER_BASE_MODELS_DIR": str(base_models_dir)}
    env.pop("OUTRIDER_ADMIN_API_KEY", None)
    env.pop("OUTRIDER_ADMIN_PASSWORD", None)
    command = [sys.executable, "-m", "outrider", "serve", "--port", str(port)]

    def boot() -> tuple[subprocess.Popen, float]:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return process, time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.1)
        process.kill()
        raise AssertionError(process.stderr.read())

    process, startup_s = boot()
    try:
        assert startup_s < 30  # models load lazily: starting does not load them
        response = httpx.get(f"http://127.0.0.1:{port}/health")
        assert response.json()["status"] == "ok"
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    key, password = out.strip().splitlines()[:2]
    assert key.startswith("ork_") and len(password) >= 20
    process, _ = boot()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/me", headers={"X-API-Key": key}).status_code == 200
        login = {"username": "admin", "password": password}
        assert httpx.post(f"http://127.0.0.1:{port}/auth/login", json=login).json()["role"] == "owner"
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "ork_" not in out and password not in out  # shown once, on the first start only


def test_serve_refuses_several_api_processes_on_what_cannot_be_shared(tmp_path, monkeypatch):
    for name in ("OUTRIDER_DATABASE_URL", "OUTRIDER_REDIS_URL", "OUTRIDER_RATE_LIMIT_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    refused = runner.invoke(app, ["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    message = " ".join(refused.output.split())
    assert "cannot serve from 2 API processes" in message
    for cause in ("SQLite", "OUTRIDER_RATE_LIMIT_STORAGE", "OUTRIDER_REDIS_URL", "OUTRIDER_EMBEDDED_WORKER=false"):
        assert cause in message
    # Shared store, counters and broadcast, but still an embedded worker in each process: refused for that alone.
    monkeypatch.setenv("OUTRIDER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("OUTRIDER_RATE_LIMIT_STORAGE", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("OUTRIDER_REDIS_URL", "redis://127.0.0.1:1/0")
    alone = runner.invoke(app, ["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert alone.exit_code == 2 and "SQLite" not in alone.output and "OUTRIDER_EMBEDDED_WORKER" in alone.output


async def test_a_key_revoked_from_the_shell_is_announced_to_the_api_processes(tmp_path, redis_server, monkeypatch):
    import asyncio

    from outrider.services.broadcast import RedisBroadcast
    from tests.waiting import wait_until_async

    monkeypatch.setenv("OUTRIDER_REDIS_URL", redis_server.url)
    data = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["accounts", "create", "team-r", *data]).exit_code == 0
    listing = runner.invoke(app, ["keys", "list", *data]).output
    key_id = next(line.split()[0] for line in listing.splitlines() if " default " in line)  # team-r's first key
    api_process = RedisBroadcast(redis_server.url)  # what every `outrider serve` listens to
    heard: list[dict] = []
    api_process.on("key", heard.append)
    await api_process.start()
    try:
        revoked = await asyncio.to_thread(runner.invoke, app, ["keys", "revoke", key_id, *data])
        assert revoked.exit_code == 0, revoked.output
        await wait_until_async(lambda: heard, what="the revocation to be announced")
    finally:
        await api_process.stop()
    assert [change["id"] for change in heard] == [key_id]
