"""``outrider users``: add, set-password and list against the local database, and what a server makes of it."""

import httpx
from typer.testing import CliRunner

from outrider.cli.main import app
from tests.conftest import make_settings, start_server

runner = CliRunner()


def test_users_are_added_listed_and_repassworded(tmp_path, base_models_dir):
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(app, ["users", "add", "Ada", "--role", "viewer", "--email", "ada@example.org", *data])
    assert added.exit_code == 0, added.output
    generated = added.stdout.strip().splitlines()[-1]
    assert len(generated) >= 20 and " " not in generated
    piped = runner.invoke(app, ["users", "add", "bob", "--password-stdin", *data], input="bob's password\n")
    assert piped.exit_code == 0, piped.output
    assert "bob's password" not in piped.stdout
    listing = runner.invoke(app, ["users", "list", *data]).stdout
    lines = {line.split()[1]: line for line in listing.splitlines()}
    assert set(lines) == {"admin", "ada", "bob"}  # the first start's owner, and the two added
    assert "viewer" in lines["ada"] and "ada@example.org" in lines["ada"] and "owner" in lines["admin"]
    assert "member" in lines["bob"] and "active" in lines["bob"]
    assert runner.invoke(app, ["users", "list", "--account", "admin", *data]).stdout == listing

    settings = make_settings(tmp_path, base_models_dir)
    running = start_server(settings)
    try:
        with httpx.Client(base_url=running.url) as client:
            login = {"username": "ada@example.org", "password": generated}
            assert client.post("/auth/login", json=login).json()["role"] == "viewer"
            reset = runner.invoke(app, ["users", "set-password", "ADA", "--password-stdin", *data], input="new one!!\n")
            assert reset.exit_code == 0, reset.output
            assert client.get("/auth/me").status_code == 401  # its sessions ended
            assert client.post("/auth/login", json=login).status_code == 401
            assert client.post("/auth/login", json={"username": "ada", "password": "new one!!"}).status_code == 200
            bob = {"username": "bob", "password": "bob's password"}
            assert client.post("/auth/login", json=bob).json()["role"] == "member"
    finally:
        running.stop()


def test_users_commands_refuse_what_they_cannot_do(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["users", "add", "x", "--account", "nope", *data]).exit_code == 1
    assert runner.invoke(app, ["users", "add", "x", "--role", "admin", *data]).exit_code == 1
    assert runner.invoke(app, ["users", "add", "../x", *data]).exit_code == 1
    assert runner.invoke(app, ["users", "add", "admin", *data]).exit_code == 1  # taken by the first start
    short = runner.invoke(app, ["users", "add", "y", "--password-stdin", *data], input="short\n")
    assert short.exit_code == 1 and "8" in short.output
    assert runner.invoke(app, ["users", "set-password", "nobody", *data]).exit_code == 1
    assert runner.invoke(app, ["users", "list", "--account", "nope", *data]).exit_code == 1
    generated = runner.invoke(app, ["users", "set-password", "admin", *data])
    assert generated.exit_code == 0 and len(generated.stdout.strip()) >= 20
