"""Fine-tuning jobs over real HTTP: small real runs of the MiniLM GLiNER2 base and SmolLM2, LoRA and full.

One server of its own (training priced, a short stop grace). The trained models are built once per module
by fixtures and shared: an encoder LoRA job (whose logs are streamed while it runs), a full fine-tune that
continues from its checkpoint, and a decoder LoRA job. Jobs that are stopped, killed or deleted mid-run
train on a few examples for many epochs, so that they are surely still running when that happens.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import threading
import time
import zipfile
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, SMOL, make_settings, new_account, start_server

MINILM = "outrider/gliner2-minilm-l6"
JOBS = "/felix/training-jobs"
LABELS = ["person", "company", "location"]
PEOPLE = ["Tim Cook", "Anna Schmidt", "David Kim", "Maria Lopez", "John Smith", "Yuki Tanaka", "Omar Haddad"]
COMPANIES = ["Apple", "Siemens", "Sony", "Google", "Netflix", "Toyota", "Nokia"]
CITIES = ["Berlin", "Tokyo", "Paris", "Madrid", "Boston", "Seoul", "Oslo"]
TEMPLATES = [
    "{person} works for {company} in {location}.",
    "{company} hired {person} in {location} last year.",
    "{person} moved to {location} to join {company}.",
    "In {location}, {person} met the team from {company}.",
]
PROBE = "Anna Schmidt works for Sony in Oslo."
COLORS = ["red", "blue", "green", "yellow", "black", "white", "pink", "gray", "brown", "orange", "purple", "silver"]


def ner_examples(count: int) -> list[dict]:
    examples = []
    for i in range(count):
        values = {
            "person": PEOPLE[i % len(PEOPLE)],
            "company": COMPANIES[(i * 3 + 1) % len(COMPANIES)],
            "location": CITIES[(i * 5 + 2) % len(CITIES)],
        }
        template = TEMPLATES[i % len(TEMPLATES)]
        text = template.format(**values)
        entities = []
        for label, value in values.items():
            if "{" + label + "}" not in template:
                continue
            start = text.index(value)
            entities.append({"start": start, "end": start + len(value), "label": label, "text": value})
        examples.append({"text": text, "entities": entities})
    return examples


def chat_examples(count: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What color is box {i}?"},
                {"role": "assistant", "content": f"Box {i} is {COLORS[i % len(COLORS)]}."},
            ]
        }
        for i in range(count)
    ]


def upload(client: httpx.Client, name: str, task_type: str, examples: list[dict]) -> None:
    body = "".join(json.dumps(e) + "\n" for e in examples).encode()
    response = client.post("/datasets", params={"name": name, "task_type": task_type}, content=body)
    assert response.status_code == 201, response.text


def create(client: httpx.Client, **body) -> dict:
    response = client.post(JOBS, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "requested"
    return response.json()


def wait_until(client: httpx.Client, job_id: str, done, timeout: float = 600) -> tuple[dict, list[str]]:
    """Poll the job until ``done(job)``; returns it and the statuses seen, in order."""
    seen: list[str] = []
    deadline = time.time() + timeout
    while True:
        job = client.get(f"{JOBS}/{job_id}").json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if done(job):
            return job, seen
        assert time.time() < deadline, f"job {job_id} still {job['status']} after {timeout} s: {job}"
        time.sleep(0.25)


def finished(job: dict) -> bool:
    return job["status"] in ("complete", "failed", "stopped")


def wait_finished(client: httpx.Client, job_id: str, timeout: float = 600) -> dict:
    return wait_until(client, job_id, finished, timeout)[0]


def trainer_pids(job_id: str) -> list[int]:
    """Trainer processes of a job, found by their command line (``... runner DATA_DIR/training/<job id>``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"outrider.training.runner" in command and any(part.endswith(job_id.encode()) for part in command):
                pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def training_server(tmp_path_factory, base_models_dir):
    settings = make_settings(
        tmp_path_factory.mktemp("training-data"),
        base_models_dir,
        rate_limits={"inference": "100000/minute", "chat": "100000/minute", "training": "100000/minute"},
        training_price_per_hour_usd=36.0,  # one cent a second: an account with two cents runs out quickly
        training_stop_grace_s=10.0,
        job_heartbeat_s=1.0,
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(training_server):
    with training_server.client() as client:
        upload(client, "tiny-ner", "ner", ner_examples(24))
        upload(client, "few-ner", "ner", ner_examples(8))
        upload(client, "tiny-chat", "decoder", chat_examples(12))
        yield client


@pytest.fixture(scope="module")
def encoder_lora(admin):
    """An encoder LoRA job whose log is streamed while it runs: (job, statuses seen, log lines with times)."""
    job = create(
        admin,
        model_name="tiny-ner-lora",
        base_model=MINILM,
        datasets=[{"name": "tiny-ner"}],
        nr_epochs=2,
        batch_size=4,
        validation_fraction=0.25,
        early_stopping_patience=1,  # after the first epoch, which is always the best so far: both epochs run
        head_learning_rate=1.5e-2,
        entity_label_renaming=0.0,
    )
    lines: list[tuple[float, str]] = []

    def follow() -> None:
        with httpx.stream("GET", f"{admin.base_url}{JOBS}/{job['id']}/logs", headers=admin.headers, timeout=600) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            for line in r.iter_lines():
                lines.append((time.time(), line))

    reader = threading.Thread(target=follow)
    reader.start()
    final, seen = wait_until(admin, job["id"], finished)
    finished_at = time.time()
    reader.join(timeout=30)
    assert not reader.is_alive(), "the log stream did not end with the job"
    return final, seen, lines, finished_at


@pytest.fixture(scope="module")
def encoder_checkpoint(admin, encoder_lora) -> dict:
    job = encoder_lora[0]
    return admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"][-1]


@pytest.fixture(scope="module")
def encoder_continued(admin, encoder_checkpoint):
    """A full fine-tune that continues from the LoRA job's last checkpoint."""
    job = create(
        admin,
        model_name="tiny-ner-full",
        base_model=encoder_checkpoint["id"],
        datasets=[{"name": "tiny-ner"}],
        training_type="full",
        nr_epochs=1,
        batch_size=4,
    )
    return wait_finished(admin, job["id"])


@pytest.fixture(scope="module")
def decoder_lora(admin):
    job = create(
        admin,
        model_name="tiny-chat-lora",
        base_model=SMOL,
        datasets=[{"name": "tiny-chat"}],
        nr_epochs=2,
        batch_size=4,
        learning_rate=1e-3,
        validation_fraction=0.2,
    )
    return wait_finished(admin, job["id"])


# -- validation ------------------------------------------------------------------------------------------


def test_base_model_is_required_and_must_be_an_accepted_id(admin):
    for body in ({}, {"base_model": "no-such-model"}, {"base_model": "demo-extractor"}, {"base_model": "ckpt_none"}):
        response = admin.post(JOBS, json={"model_name": "m", "datasets": [{"name": "tiny-ner"}], **body})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert MINILM in detail and SMOL in detail and "checkpoint" in detail, detail


def test_the_dataset_task_must_fit_the_base(admin):
    for base, dataset, needs in ((SMOL, "tiny-ner", "encoder"), (MINILM, "tiny-chat", "decoder")):
        response = admin.post(JOBS, json={"model_name": "m", "base_model": base, "datasets": [{"name": dataset}]})
        assert response.status_code == 422, response.text
        assert "task mismatch" in response.json()["detail"] and needs in response.json()["detail"]


def test_encoder_hyperparameters_are_refused_for_decoder_jobs(admin):
    for name, value in (("head_learning_rate", 1e-3), ("entity_label_renaming", 0.0), ("early_stopping_patience", 1)):
        body = {"model_name": "m", "base_model": SMOL, "datasets": [{"name": "tiny-chat"}], name: value}
        response = admin.post(JOBS, json=body)
        assert response.status_code == 422, response.text
        assert name in response.json()["detail"] and "encoder" in response.json()["detail"]


def test_unknown_and_empty_datasets_are_refused(training_server, admin):
    me = admin.get("/me").json()
    # A version a generation job opened and never filled: it exists, with no examples.
    asyncio.run(
        training_server.services.datasets.open_append(
            me["id"], "empty-ner", "ner", source="generation", job_id=None, labels=None
        )
    )
    cases = {
        "no-such-dataset": [{"name": "no-such-dataset"}],
        "version 7": [{"name": "tiny-ner", "version": 7}],
        "no examples": [{"name": "empty-ner"}],
        "at least one": [],
    }
    for expected, datasets in cases.items():
        response = admin.post(JOBS, json={"model_name": "m", "base_model": MINILM, "datasets": datasets})
        assert response.status_code == 422, response.text
        assert expected in response.json()["detail"], response.json()
    bad = admin.post(
        JOBS,
        json={"model_name": "m", "base_model": MINILM, "datasets": [{"name": "tiny-ner"}], "training_type": "qlora"},
    )
    assert bad.status_code == 422


def field_errors(response: httpx.Response, field: str) -> list[dict]:
    """The native validation errors (FastAPI's list) that name ``field``."""
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [e for e in detail if field in e["loc"]]


def test_a_job_names_at_most_20_dataset_versions(admin):
    """Issue #15: 10,000 references to one dataset were accepted and expanded into 270,000 examples."""
    for datasets in ([{"name": "tiny-ner"}] * 10_000, [{"name": f"ds-{i}"} for i in range(21)]):
        response = admin.post(JOBS, json={"model_name": "m", "base_model": MINILM, "datasets": datasets})
        assert response.status_code == 422, response.text
        assert field_errors(response, "datasets"), response.json()


def test_a_dataset_version_named_twice_is_refused(admin):
    """Duplicates are judged after "latest" / no version is resolved: the latest named both ways is one version."""
    for datasets in (
        [{"name": "tiny-ner"}, {"name": "tiny-ner"}],
        [{"name": "tiny-ner"}, {"name": "tiny-ner", "version": 1}],
        [{"name": "tiny-ner", "version": "latest"}, {"name": "few-ner"}, {"name": "tiny-ner", "version": 1}],
    ):
        response = admin.post(JOBS, json={"model_name": "m", "base_model": MINILM, "datasets": datasets})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "datasets" in detail and "version 1 of dataset 'tiny-ner' is named more than once" in detail, detail


def test_a_seed_outside_0_to_2_32_is_refused(admin):
    """Issue #15: a seed of 2**64 was accepted and the job then failed ("Overflow when unpacking long long")."""
    for seed in (2**64, 2**32, -1):
        response = admin.post(
            JOBS, json={"model_name": "m", "base_model": MINILM, "datasets": [{"name": "tiny-ner"}], "seed": seed}
        )
        assert response.status_code == 422, response.text
        assert field_errors(response, "seed"), response.json()


def test_a_stop_while_the_training_data_is_prepared_ends_the_job_within_a_second_or_two(admin):
    """20 versions of a 5,000-example dataset: 100,000 examples take the worker many seconds to read, split and
    convert. A stop while it does must not wait for that (issue #15: a stop was ignored for about 30 s)."""
    body = "".join(json.dumps(e) + "\n" for e in ner_examples(5_000)).encode()
    for _ in range(20):
        response = admin.post("/datasets", params={"name": "big-ner", "task_type": "ner"}, content=body)
        assert response.status_code == 201, response.text
    datasets = [{"name": "big-ner", "version": v} for v in range(1, 21)]
    job = create(admin, model_name="never-trained", base_model=MINILM, datasets=datasets)
    # Running, and its data not prepared yet (train_examples is set once preparation ends).
    running, _ = wait_until(admin, job["id"], lambda j: j["status"] != "requested", timeout=120)
    assert running["status"] == "running" and running["train_examples"] is None, running
    asked = time.time()
    assert admin.post(f"{JOBS}/{job['id']}/stop").status_code == 200
    final = wait_finished(admin, job["id"], timeout=120)
    took = time.time() - asked
    assert final["status"] == "stopped", final
    assert final["train_examples"] is None, final  # stopped mid-preparation, not after it
    assert took < 3.0, f"the stop took {took:.1f} s"
    log = admin.get(f"{JOBS}/{job['id']}/logs", params={"follow": False}).text
    assert "stopped while preparing the training data" in log, log


# -- an encoder job from start to finish ----------------------------------------------------------------


def test_encoder_lora_job_runs_through_its_states_with_metrics(admin, encoder_lora):
    job, seen, _, _ = encoder_lora
    assert job["status"] == "complete", job
    assert seen[-1] == "complete" and set(seen) <= {"requested", "running", "complete"} and "running" in seen
    assert job["model_id"] == job["id"] and job["task_family"] == "encoder" and job["training_type"] == "lora"
    progress = job["progress"]
    assert progress["step"] == progress["total_steps"] > 0 and progress["epoch"] == 2
    assert isinstance(progress["loss"], float) and progress["checkpoints"] >= 1
    metrics = job["metrics"]
    for name in ("f1", "precision", "recall"):
        assert 0.0 <= metrics[name] <= 1.0
    assert set(metrics["per_label"]) == set(LABELS)
    assert job["train_examples"] == 18 and job["val_examples"] == 6
    assert job["timings"]["total_seconds"] > 0 and job["finished_at"] >= job["started_at"]


def test_logs_stream_while_the_job_runs_and_end_with_it(admin, encoder_lora):
    job, _, lines, finished_at = encoder_lora
    steps = [(at, line) for at, line in lines if re.search(r" step \d+/\d+ epoch ", line)]
    assert len(steps) == job["progress"]["total_steps"]
    assert steps[0][0] < finished_at - 0.5  # streamed as written, not delivered at the end
    assert any("checkpoint" in line for _, line in lines) and "job complete" in lines[-1][1]
    # Once finished, the whole log comes back and the response ends.
    replay = admin.get(f"{JOBS}/{job['id']}/logs").text.splitlines()
    assert replay == [line for _, line in lines]


def test_checkpoints_are_listed_with_their_metrics(admin, encoder_lora):
    job = encoder_lora[0]
    checkpoints = admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"]
    assert [c["epoch"] for c in checkpoints] == [1, 2]
    assert checkpoints[-1]["step"] == job["progress"]["step"]
    assert all(c["id"].startswith("ckpt_") and "f1" in c["metrics"] and c["created"] for c in checkpoints)


def test_job_and_checkpoint_ids_are_served_on_inference(training_server, admin, encoder_lora, encoder_checkpoint):
    job = encoder_lora[0]
    for model_id in (job["id"], encoder_checkpoint["id"]):
        response = admin.post("/inference", json={"model_id": model_id, "text": PROBE, "schema": {"entities": LABELS}})
        assert response.status_code == 200, response.text
        assert set(response.json()["result"]["entities"]) == set(LABELS)
        assert response.json()["model_used"] == model_id
    listed = {m["id"]: m for m in admin.get("/models").json()["data"]}
    assert listed[job["id"]]["source"] == "trained" and listed[job["id"]]["task_family"] == "encoder"
    history = admin.get("/inferences", params={"training_job_id": job["id"]}).json()
    assert history["total"] >= 2


def test_other_accounts_see_nothing_of_a_job(training_server, admin, encoder_lora, encoder_checkpoint):
    job = encoder_lora[0]
    with training_server.client(new_account(admin, "training-outsider")) as other:
        for path in ("", "/checkpoints", "/logs", "/download"):
            assert other.get(f"{JOBS}/{job['id']}{path}").status_code == 404
        assert other.post(f"{JOBS}/{job['id']}/stop").status_code == 404
        assert other.delete(f"{JOBS}/{job['id']}").status_code == 404
        for model_id in (job["id"], encoder_checkpoint["id"]):
            body = {"model_id": model_id, "text": PROBE, "schema": {"entities": LABELS}}
            assert other.post("/inference", json=body).status_code == 404
            assert other.get(f"/models/{model_id}").status_code == 404
        assert job["id"] not in {m["id"] for m in other.get("/models").json()["data"]}
        assert other.get(JOBS).json()["total"] == 0


def test_download_reloads_with_gliner2_alone_and_predicts_the_same(admin, encoder_lora, tmp_path):
    from gliner2 import AutoExtractor

    job = encoder_lora[0]
    response = admin.get(f"{JOBS}/{job['id']}/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "AutoExtractor.from_pretrained" in readme and job["id"] in readme
    model = AutoExtractor.from_pretrained(str(tmp_path))
    model.eval()
    local = model.extract_entities(PROBE, LABELS, threshold=0.3, include_confidence=True)["entities"]
    served = admin.post(
        "/inference",
        json={
            "model_id": job["id"],
            "text": PROBE,
            "schema": {"entities": LABELS},
            "threshold": 0.3,
            "include_confidence": True,
        },
    ).json()["result"]["entities"]
    texts = lambda found: {label: [e["text"] for e in items] for label, items in found.items()}  # noqa: E731
    assert texts(local) == texts(served)
    # an adapter runs on its base's PyTorch encoder (LoRA layers live in its modules), so fp32 exactly
    assert admin.get(f"/models/{job['id']}/health").json()["runtime"] == "torch"
    for label in LABELS:
        for mine, theirs in zip(local[label], served[label], strict=True):
            assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-4)


def test_onnx_download_holds_the_int8_encoder_and_a_readme_that_runs(admin, encoder_continued, tmp_path):
    """The zip with ``format=onnx``: the model, ``onnx/encoder-int8.onnx`` that passed its check, and a README
    whose code (run as written, outside Outrider) finds what the served model finds."""
    import subprocess
    import sys

    job = encoder_continued
    response = admin.get(f"{JOBS}/{job['id']}/download", params={"format": "onnx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith('-onnx.zip"')
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(tmp_path / "model")
    check = json.loads((tmp_path / "model" / "onnx" / "check.json").read_text())
    assert check["passed"] and check["mean_cosine"] >= 0.985
    readme = (tmp_path / "model" / "README.md").read_text()
    code = readme.split("## The int8 ONNX encoder", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code += f"\nprint(json.dumps(model.extract_entities({PROBE!r}, {LABELS!r}, threshold=0.5)))"
    ran = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    outside = json.loads(ran.stdout.strip().splitlines()[-1])["entities"]
    served = admin.post(
        "/inference",
        json={"model_id": job["id"], "text": PROBE, "schema": {"entities": LABELS}, "threshold": 0.5},
    ).json()["result"]["entities"]
    assert {k: sorted(v) for k, v in outside.items()} == {k: sorted(v) for k, v in served.items()}
    health = admin.get(f"/models/{job['id']}/health").json()
    assert health["status"] == "ready" and health["runtime"] == "onnx-int8"  # a full fine-tune: served in int8


def test_onnx_download_is_refused_for_decoders_and_unknown_formats(admin, decoder_lora):
    response = admin.get(f"{JOBS}/{decoder_lora['id']}/download", params={"format": "onnx"})
    assert response.status_code == 422 and "GLiNER2" in response.text
    assert admin.get(f"{JOBS}/{decoder_lora['id']}/download", params={"format": "gguf"}).status_code == 422


def test_the_final_model_is_the_best_epoch_and_serves_its_calibrated_thresholds(
    admin, encoder_lora, tmp_path, monkeypatch
):
    from gliner2 import AutoExtractor

    job = encoder_lora[0]
    assert job["hyperparameters"]["early_stopping_patience"] == 1
    checkpoints = admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"]
    best = max(checkpoints, key=lambda c: c["metrics"]["f1"])  # the first of equals: only a better F1 counts
    assert (job["best_epoch"], job["best_step"]) == (best["epoch"], best["step"])
    assert job["metrics"]["f1"] == best["metrics"]["f1"]
    assert job["early_stopped"] == (checkpoints[1]["metrics"]["f1"] <= checkpoints[0]["metrics"]["f1"])

    # the final model carries a decision threshold per entity type, chosen on the job's validation split
    zipped = admin.get(f"{JOBS}/{job['id']}/download").content
    zipfile.ZipFile(io.BytesIO(zipped)).extractall(tmp_path / "model")
    metadata = json.loads((tmp_path / "model" / "outrider.json").read_text())
    assert metadata["step"] == best["step"]
    # the job's encoder hyperparameters reached the trainer and are recorded with the model
    assert metadata["hyperparameters"]["entity_label_renaming"] == 0.0
    assert metadata["hyperparameters"]["rates"]["heads"] == 1.5e-2
    thresholds = metadata["calibration"]["label_thresholds"]
    assert set(thresholds) == set(LABELS) and all(0 < t < 1 for t in thresholds.values())

    texts = [PROBE, "Tim Cook moved to Paris to join Nokia.", "In Seoul, Omar Haddad met the team from Apple."]

    # the labels in the order the job trained them (the thresholds keep it): a model answers best in that order
    order = list(thresholds)

    def served(**extra) -> list[dict]:
        body = {"model_id": job["id"], "text": texts, "schema": {"entities": order}, "include_confidence": True}
        response = admin.post("/inference", json={**body, **extra})
        assert response.status_code == 200, response.text
        return [r["entities"] for r in response.json()["result"]]

    def below(found: list[dict]) -> list[tuple[str, float]]:
        return [
            (label, m["confidence"])
            for r in found
            for label in LABELS
            for m in r[label]
            if m["confidence"] < thresholds[label] - 1e-6
        ]

    assert below(served()) == []  # by default every type is cut at its own threshold
    assert below(served(threshold=0.01)) != []  # the request's threshold overrides them
    # gliner2 alone, the README's way, gives what the server gives by default
    namespace: dict = {"model": AutoExtractor.from_pretrained(str(tmp_path / "model")).eval()}
    monkeypatch.chdir(tmp_path)
    from outrider.training.zipped import NER_EXAMPLE

    exec(NER_EXAMPLE, namespace)  # builds the schema with the per-type thresholds (and prints an example)
    local = namespace["model"].batch_extract(texts, [namespace["schema"]] * len(texts), threshold=0.5)
    assert _texts([r["entities"] for r in local]) == _texts(served())


def _texts(found: list[dict]) -> list[dict]:
    return [{k: sorted(m if isinstance(m, str) else m["text"] for m in v) for k, v in r.items()} for r in found]


def test_a_checkpoint_id_as_base_model_continues_training_it(admin, encoder_continued, encoder_checkpoint):
    job = encoder_continued
    assert job["status"] == "complete", job
    assert job["base_model"] == encoder_checkpoint["id"] and job["training_type"] == "full"
    assert "f1" in job["metrics"]
    response = admin.post("/inference", json={"model_id": job["id"], "text": PROBE, "schema": {"entities": LABELS}})
    assert response.status_code == 200, response.text


def test_jobs_are_listed_newest_first_with_pagination(admin, encoder_lora, encoder_continued):
    everything = admin.get(JOBS, params={"limit": 500}).json()
    ids = [j["id"] for j in everything["jobs"]]
    assert everything["total"] == len(ids) >= 2
    assert ids.index(encoder_continued["id"]) < ids.index(encoder_lora[0]["id"])
    page = admin.get(JOBS, params={"limit": 1, "offset": 1}).json()
    assert [j["id"] for j in page["jobs"]] == ids[1:2] and page["limit"] == 1 and page["offset"] == 1


# -- decoders ---------------------------------------------------------------------------------------------


def test_decoder_lora_job_is_served_on_chat_completions_and_inference(training_server, admin, decoder_lora):
    job = decoder_lora
    assert job["status"] == "complete", job
    for name in ("exact_match", "f1", "precision", "recall"):
        assert 0.0 <= job["metrics"][name] <= 1.0
    checkpoint = admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"][-1]
    client = openai.OpenAI(base_url=f"{training_server.url}/v1", api_key=ADMIN_KEY, max_retries=0)
    question = [{"role": "user", "content": "What color is box 3?"}]
    answer = client.chat.completions.create(model=job["id"], messages=question, max_tokens=12, temperature=0)
    assert answer.model == job["id"] and answer.choices[0].message.content.startswith("Box 3 is")
    native = admin.post(
        "/inference",
        json={
            "model_id": checkpoint["id"],
            "task": "generate",
            "messages": question,
            "max_tokens": 12,
            "temperature": 0,
        },
    )
    assert native.status_code == 200, native.text
    assert native.json()["completion"] == answer.choices[0].message.content  # the last checkpoint is the model
    claude = anthropic.Anthropic(base_url=training_server.url, api_key=ADMIN_KEY, max_retries=0)
    message = claude.messages.create(
        model=checkpoint["id"], messages=question, max_tokens=12, extra_body={"temperature": 0}
    )
    assert message.model == checkpoint["id"] and message.content[0].text == native.json()["completion"]
    # the fine-tune is listed on the OpenAI surface for its account, and for nobody else
    assert job["id"] in {m.id for m in client.models.list()}
    assert client.models.retrieve(checkpoint["id"]).id == checkpoint["id"]
    outsider = openai.OpenAI(
        base_url=f"{training_server.url}/v1", api_key=new_account(admin, "openai-outsider"), max_retries=0
    )
    assert job["id"] not in {m.id for m in outsider.models.list()}
    with pytest.raises(openai.NotFoundError):
        outsider.models.retrieve(job["id"])


def test_decoder_download_is_a_peft_adapter_that_answers_the_same(training_server, admin, decoder_lora, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from outrider.backends.builtin import base_model_dir

    job = decoder_lora
    archive = zipfile.ZipFile(io.BytesIO(admin.get(f"{JOBS}/{job['id']}/download").content))
    archive.extractall(tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["base_model_name_or_path"] == SMOL
    assert "PeftModel.from_pretrained" in (tmp_path / "README.md").read_text()
    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir(training_server.settings, SMOL)))
    model = PeftModel.from_pretrained(base, str(tmp_path)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    question = [{"role": "user", "content": "What color is box 5?"}]
    ids = tokenizer.apply_chat_template(question, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    local = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    served = admin.post(
        "/inference",
        json={"model_id": job["id"], "task": "generate", "messages": question, "max_tokens": 12, "temperature": 0},
    ).json()["completion"]
    assert local == served.strip() and local.startswith("Box 5 is")


@pytest.mark.slow
def test_decoder_full_fine_tune_is_served(training_server, admin):
    job = create(
        admin,
        model_name="tiny-chat-full",
        base_model=SMOL,
        datasets=[{"name": "tiny-chat"}],
        training_type="full",
        nr_epochs=1,
        batch_size=4,
        learning_rate=5e-5,
        validation_fraction=0.2,
    )
    job = wait_finished(admin, job["id"])
    assert job["status"] == "complete", job
    assert job["training_type"] == "full" and "exact_match" in job["metrics"]
    client = openai.OpenAI(base_url=f"{training_server.url}/v1", api_key=ADMIN_KEY, max_retries=0)
    answer = client.chat.completions.create(
        model=job["id"], messages=[{"role": "user", "content": "What color is box 1?"}], max_tokens=8, temperature=0
    )
    assert answer.model == job["id"] and answer.choices[0].message.content


# -- stopping, crashing, deleting, running out of credit --------------------------------------------------


def long_job(client: httpx.Client, name: str, dataset: str = "few-ner") -> dict:
    """Eight examples for many epochs: still running whenever a test acts on it."""
    return create(
        client,
        model_name=name,
        base_model=MINILM,
        datasets=[{"name": dataset}],
        nr_epochs=100,
        batch_size=4,
        validation_fraction=0.25,
    )


@pytest.mark.slow
def test_stop_ends_the_job_within_seconds_and_keeps_its_checkpoints(admin):
    job = long_job(admin, "to-stop")
    wait_until(admin, job["id"], lambda j: j["progress"]["checkpoints"] >= 1 or finished(j))
    asked = time.time()
    stopped = admin.post(f"{JOBS}/{job['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["stop_requested"]
    final = wait_finished(admin, job["id"], timeout=60)
    assert final["status"] == "stopped" and final["stop_reason"] == "stopped on request"
    assert time.time() - asked < 15
    checkpoints = admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"]
    assert checkpoints and checkpoints[-1]["step"] == final["progress"]["step"]  # saved when it stopped
    assert not trainer_pids(job["id"])
    served = admin.post(
        "/inference", json={"model_id": checkpoints[-1]["id"], "text": PROBE, "schema": {"entities": LABELS}}
    )
    assert served.status_code == 200
    assert admin.get(f"{JOBS}/{job['id']}/download").status_code == 422  # no final weights: it was stopped
    one = admin.get(f"{JOBS}/{job['id']}/download", params={"checkpoint_id": checkpoints[0]["id"]})
    assert one.status_code == 200 and "README.md" in zipfile.ZipFile(io.BytesIO(one.content)).namelist()


@pytest.mark.slow
def test_a_killed_trainer_fails_the_job_and_the_server_keeps_serving(admin):
    job = long_job(admin, "to-kill")
    wait_until(admin, job["id"], lambda j: j["progress"]["step"] >= 1 or finished(j))
    pids = trainer_pids(job["id"])
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    final = wait_finished(admin, job["id"], timeout=60)
    assert final["status"] == "failed"
    assert "killed by signal 9 (SIGKILL)" in final["error"], final["error"]
    assert "killed by signal 9" in admin.get(f"{JOBS}/{job['id']}/logs").text
    assert admin.get("/health").json()["status"] == "ok"
    response = admin.post("/inference", json={"model_id": MINILM, "text": PROBE, "schema": {"entities": LABELS}})
    assert response.status_code == 200


@pytest.mark.slow
def test_deleting_a_running_job_stops_it_and_removes_everything(training_server, admin):
    job = long_job(admin, "to-delete")
    wait_until(admin, job["id"], lambda j: j["progress"]["checkpoints"] >= 1 or finished(j))
    checkpoint = admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"][0]
    response = admin.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 200 and response.json() == {
        "id": job["id"],
        "object": "training_job",
        "deleted": True,
    }
    assert admin.get(f"{JOBS}/{job['id']}").status_code == 404
    assert not (training_server.settings.data_dir / "training" / job["id"]).exists()
    assert not trainer_pids(job["id"])
    body = {"model_id": checkpoint["id"], "text": PROBE, "schema": {"entities": LABELS}}
    assert admin.post("/inference", json=body).status_code == 404


@pytest.mark.slow
def test_running_out_of_credit_stops_the_job_cleanly(training_server, admin):
    with training_server.client(new_account(admin, "training-poor", credit_usd=0.02)) as poor:
        upload(poor, "few-ner", "ner", ner_examples(8))
        job = long_job(poor, "unpaid")
        final = wait_finished(poor, job["id"], timeout=120)
        assert final["status"] == "stopped" and final["stop_reason"] == "insufficient credits", final
        credits = poor.get("/credits").json()
        assert credits["balance_micro_usd"] == 0
        charged = poor.get("/credits/transactions").json()
        assert any(t["kind"] == "training" and t["reference_id"] == job["id"] for t in charged["data"])
