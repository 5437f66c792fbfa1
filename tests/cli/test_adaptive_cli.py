"""The adaptive loop from the shell against the real session server: `outrider deployments set|list|history|
rollback`, `outrider datasets from-inferences`, `outrider evaluations run|show|compare|list` and `outrider
inferences judge`, each checked through the API too."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from outrider.cli.main import app
from tests.api.test_evaluations import DEMO, MINILM
from tests.conftest import SMOL, new_account

runner = CliRunner()
TEXTS = ["Anna Schmidt works for Netflix in Boston.", "Tom Berg joined Sony in Oslo."]
CORRECTIONS = [
    {"entities": {"person": ["Anna Schmidt"], "company": ["Netflix"]}},
    {"entities": {"person": ["Tom Berg"], "company": ["Sony"]}},
]


@pytest.fixture(scope="module")
def shell(server, admin):
    """A fresh account: its key for the CLI and an API client to check what the commands did."""
    key = new_account(admin, "adaptive-cli")
    with server.client(key) as client:

        def cli(*args: str):
            result = runner.invoke(app, [*args, "--url", server.url, "--api-key", key])
            return result

        yield cli, client


def test_deployments_set_switch_history_and_rollback(shell):
    cli, client = shell
    created = cli("deployments", "set", "cli-ner", DEMO, "--note", "first")
    assert created.exit_code == 0, created.output
    assert "created @cli-ner -> demo-extractor" in created.output
    switched = cli("deployments", "set", "@cli-ner", MINILM)
    assert f"switched @cli-ner: {DEMO} -> {MINILM} (version 2)" in switched.output
    assert "already serves" in cli("deployments", "set", "cli-ner", MINILM).output
    assert client.get("/deployments/cli-ner").json()["target"] == MINILM
    listing = cli("deployments", "list")
    assert re.search(rf"@cli-ner\s+{re.escape(MINILM)}\s+v2", listing.output), listing.output
    rolled = cli("deployments", "rollback", "cli-ner", "--note", "base is worse")
    assert rolled.exit_code == 0 and f"rolled back @cli-ner: {MINILM} -> {DEMO}" in rolled.output
    assert client.get("/deployments/cli-ner").json()["target"] == DEMO
    history = cli("deployments", "history", "cli-ner").output.splitlines()
    assert history[0] == "@cli-ner serves demo-extractor (version 3)"
    assert [line.split()[2] for line in history[1:]] == ["rollback", "switch", "create"]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  rollback ", history[1]), history[1]
    assert "by key" in history[1] and "note: base is worse" in history[1] and "note: first" in history[3]
    refused = cli("deployments", "set", "cli-ner", "no-such-model")
    assert refused.exit_code == 1 and "404" in refused.output
    assert cli("deployments", "rollback", "nothing-here").exit_code == 1


def test_corrections_become_a_dataset_version_and_an_evaluation_compares_two_models(shell):
    cli, client = shell
    for text, correction in zip(TEXTS, CORRECTIONS, strict=True):
        answer = client.post(
            "/inference", json={"model_id": "@cli-ner", "text": text, "schema": {"entities": ["person", "company"]}}
        )
        assert answer.status_code == 200, answer.text
        feedback = {"verdict": "incorrect", "corrected_output": correction}
        assert client.post(f"/inferences/{answer.json()['inference_id']}/feedback", json=feedback).status_code == 200
    built = cli("datasets", "from-inferences", "cli-corrections", "--model-id", "@cli-ner", "-t", "ner")
    assert built.exit_code == 0, built.output
    assert "cli-corrections v1 (2 examples): 2 records, 2 added, 0 duplicates skipped, 0 unfit" in built.output
    again = cli("datasets", "from-inferences", "cli-corrections", "--model-id", "@cli-ner")
    assert "no new version: 2 records, 0 added, 2 duplicates skipped" in again.output

    ran = cli("evaluations", "run", "@cli-ner", MINILM, "-d", "cli-corrections")
    assert ran.exit_code == 0, ran.output
    evaluation_id = re.search(r"(eval_\w+): complete", ran.output).group(1)
    assert "@cli-ner -> demo-extractor" in ran.output and "per label: @cli-ner" in ran.output
    assert "paired bootstrap" in ran.output and "person" in ran.output and "company" in ran.output
    stored = client.get(f"/evaluations/{evaluation_id}").json()
    micro = stored["results"][0]["metrics"]["micro"]["f1"]
    assert f"micro f1 {micro:.4f}" in ran.output
    shown = cli("evaluations", "show", evaluation_id)
    assert shown.exit_code == 0 and f"micro f1 {micro:.4f}" in shown.output
    compared = cli("evaluations", "compare", evaluation_id, "--candidate", MINILM)
    difference = stored["comparisons"][0]["figures"]["micro_f1"]["difference"]
    assert compared.exit_code == 0 and f"{difference:+.4f}" in compared.output
    assert cli("evaluations", "compare", evaluation_id, "-c", "nope").exit_code == 1
    assert evaluation_id in cli("evaluations", "list").output
    assert cli("evaluations", "show", "eval_missing").exit_code == 1


def test_inferences_judge_puts_a_local_decoders_verdict_on_the_record(shell):
    cli, client = shell
    listed = client.get("/inferences", params={"model_id": "@cli-ner", "limit": 1}).json()["inferences"]
    inference_id = listed[0]["inference_id"]
    judged = cli("inferences", "judge", inference_id, "--judge-model", SMOL)
    assert judged.exit_code == 0, judged.output
    record = client.get(f"/inferences/{inference_id}").json()
    assert record["llmaj_verdict"] in ("pass", "fail", "uncertain")
    assert f"{inference_id}: {record['llmaj_verdict']} (score {record['llmaj_score']})" in judged.output
    assert cli("inferences", "judge", inference_id, "-j", DEMO).exit_code == 1  # an encoder cannot judge
