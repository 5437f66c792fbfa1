"""`outrider datasets push/pull/list/delete` and `outrider generate` against a running server."""

import threading
import time

import httpx
from typer.testing import CliRunner

from outrider.cli.main import app
from tests.conftest import ADMIN_KEY, make_settings, start_server

runner = CliRunner()
ENV = {"OUTRIDER_API_KEY": ADMIN_KEY}
JSONL = b'{"text": "Great kettle", "label": "positive"}\n{"text":"Broke in a week","label":"negative"}\n'


def cli(server, *args: str):
    return runner.invoke(app, [*args, "--url", server.url], env=ENV)


def test_push_list_pull_and_delete(server, tmp_path):
    source = tmp_path / "reviews.jsonl"
    source.write_bytes(JSONL)
    pushed = cli(server, "datasets", "push", str(source), "--name", "cli-reviews", "--task-type", "classification")
    assert pushed.exit_code == 0, pushed.output
    assert "cli-reviews v1: 2 classification examples" in pushed.output
    conll = cli(server, "datasets", "push", "/work/shared/data/wnut17/dev.conll", "--name", "cli-wnut-dev")
    assert conll.exit_code == 0 and "1009 ner examples" in conll.output
    listing = cli(server, "datasets", "list")
    assert "cli-reviews" in listing.output and "cli-wnut-dev" in listing.output
    target = tmp_path / "pulled.jsonl"
    pulled = cli(server, "datasets", "pull", "cli-reviews", "-o", str(target))
    assert pulled.exit_code == 0 and target.read_bytes() == JSONL
    missing = cli(server, "datasets", "pull", "nope", "-o", str(tmp_path / "x"))
    assert missing.exit_code == 1 and "404" in missing.output
    assert cli(server, "datasets", "delete", "cli-reviews").exit_code == 0
    assert "cli-reviews" not in cli(server, "datasets", "list").output
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "no label"}\n')
    refused = cli(server, "datasets", "push", str(bad), "--name", "bad", "--task-type", "classification")
    assert refused.exit_code == 1 and "line 1: label" in refused.output


def test_generate_follows_the_job_until_it_ends(tmp_path, base_models_dir):
    queue_only = start_server(make_settings(tmp_path, base_models_dir, embedded_worker=False))
    try:

        def stop_when_queued() -> None:
            with queue_only.client() as client:
                for _ in range(200):
                    jobs = client.get("/generate/jobs").json()["jobs"]
                    if jobs:
                        client.post(f"/generate/jobs/{jobs[0]['job_id']}/stop")
                        return
                    time.sleep(0.05)

        stopper = threading.Thread(target=stop_when_queued)
        stopper.start()
        result = cli(queue_only, "generate", "-t", "ner", "-d", "cli-gen", "-n", "5", "-l", "person,company")
        stopper.join()
        assert result.exit_code == 0, result.output
        assert "stopped: 0 examples in cli-gen" in result.output
        no_wait = cli(queue_only, "generate", "-t", "ner", "-d", "cli-gen", "-n", "5", "-l", "person", "--no-wait")
        job_id = no_wait.stdout.strip().splitlines()[-1]
        assert job_id.startswith("gen_")
        status = httpx.get(f"{queue_only.url}/generate/jobs/{job_id}", headers={"X-API-Key": ADMIN_KEY}).json()
        assert status["status"] == "queued"
    finally:
        queue_only.stop()


def test_worker_command_is_available():
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0 and "--concurrency" in result.output
