"""``outrider train`` against the real test server: a small job followed to the end, and a refused one."""

import re

from typer.testing import CliRunner

from outrider.cli.main import app
from tests.api.test_training import MINILM, ner_examples, upload
from tests.conftest import ADMIN_KEY

runner = CliRunner()


def test_train_follows_the_job_with_progress_and_prints_its_metrics(server, admin):
    upload(admin, "cli-ner", "ner", ner_examples(12))
    result = runner.invoke(
        app,
        [
            "train",
            "-n",
            "cli-model",
            "-b",
            MINILM,
            "-d",
            "cli-ner:1",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--validation-fraction",
            "0.25",
            "--url",
            server.url,
            "--api-key",
            ADMIN_KEY,
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"step (\d+)/\1 ", result.output) and "epoch 1/1" in result.output
    assert "f1" in result.output and "precision" in result.output and "per label" in result.output
    job_id = re.search(r"model id: (ft_\w+)", result.output).group(1)
    job = admin.get(f"/felix/training-jobs/{job_id}").json()
    assert job["status"] == "complete" and job["model_name"] == "cli-model"
    assert job["datasets"] == [{"name": "cli-ner", "version": 1, "examples": 12}]


def test_train_reports_a_refused_job_and_fails(server):
    result = runner.invoke(
        app, ["train", "-n", "m", "-b", "no-such-base", "-d", "cli-ner", "--url", server.url, "--api-key", ADMIN_KEY]
    )
    assert result.exit_code == 1
    assert "422" in result.output and MINILM in result.output
