"""`outrider worker` as a real process: killed with SIGKILL in the middle of a generation job, it leaves the
examples it wrote readable, and the next worker to start fails the job with the reason and closes the
version as `partial`."""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from outrider.datasets.formats import validate_example
from tests.conftest import make_settings, start_server

LABELS = ["positive", "negative"]
JOB = {"task_type": "classification", "dataset_name": "killed", "num_examples": 200, "labels": LABELS}


def spawn_worker(settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "OUTRIDER_DATA_DIR": str(settings.data_dir),
        "OUTRIDER_BASE_MODELS_DIR": str(settings.base_models_dir),
        "OUTRIDER_ENVIRONMENT": "test",
        "OUTRIDER_JOB_HEARTBEAT_S": "0.5",
    }
    command = [sys.executable, "-m", "outrider", "worker"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def poll(client, job_id, done, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/generate/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting: {job}")


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_the_examples_written_so_far(tmp_path, base_models_dir):
    settings = make_settings(tmp_path, base_models_dir, embedded_worker=False)
    server = start_server(settings)  # the API only: jobs run in the worker processes below
    try:
        with server.client() as client:
            job_id = client.post("/generate", json=JOB).json()["job_id"]
            worker = spawn_worker(settings)
            try:
                job = poll(
                    client, job_id, lambda j: j["num_examples"] > 0 or j["status"] not in ("queued", "running"), 1500
                )
            finally:
                worker.kill()
                _, stderr = worker.communicate(timeout=30)
            assert job["status"] == "running", (job, stderr[-3000:])

            # Dead worker, nobody has noticed yet: the version is still being written, and readable.
            page = client.get("/datasets/killed/versions/1/examples", params={"limit": 1000}).json()
            written = page["total"]
            assert page["status"] == "building" and 0 < written < JOB["num_examples"]
            assert all(validate_example("classification", e, labels=LABELS) is None for e in page["examples"])
            assert client.get(f"/generate/jobs/{job_id}").json()["status"] == "running"

            restarted = spawn_worker(settings)  # recovers abandoned jobs when it starts
            try:
                failed = poll(client, job_id, lambda j: j["status"] != "running", 120)
            finally:
                restarted.terminate()
                restarted.communicate(timeout=60)
            assert failed["status"] == "failed" and "died" in failed["error"], failed
            assert failed["num_examples"] == written

            version = client.get("/datasets/killed/versions/1").json()
            assert version["status"] == "partial" and version["example_count"] == written
            body = client.get("/datasets/killed/versions/1/download").content
            assert hashlib.sha256(body).hexdigest() == version["sha256"] and len(body) == version["byte_size"]
            assert [json.loads(line) for line in body.splitlines()] == page["examples"]
    finally:
        server.stop()
