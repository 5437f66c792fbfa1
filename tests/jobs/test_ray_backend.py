"""Training jobs as Ray tasks on a real local Ray cluster that the test starts (``ray start --head`` on
127.0.0.1, its own temporary folder, one CPU, a 100 MB object store, no dashboard) and stops afterwards.

One server with ``OUTRIDER_JOB_BACKEND=ray``: a small training job runs in a Ray worker process (not the
server's), reports progress and checkpoints through the shared database and data directory, and stops on
request with its checkpoint served; a second one, whose Ray worker is killed, fails with the reason.
Outside CI the module is skipped when Ray is missing; under CI that is a failure (the test command installs
the ``ray`` extra).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from outrider.storage.queries import jobs as q
from tests.api.test_training import (
    JOBS,
    LABELS,
    PROBE,
    finished,
    long_job,
    ner_examples,
    trainer_pids,
    upload,
    wait_finished,
    wait_until,
)
from tests.conftest import free_port, make_settings, start_server

try:
    import ray
except ImportError:  # pragma: no cover - the test command installs the ray extra
    ray = None
    if os.environ.get("CI"):
        raise
    pytest.skip("ray is not installed (uv sync --extra ray); CI fails instead", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A one-node Ray cluster of our own on loopback; its processes are ours alone and stopped at the end."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--temp-dir={temp_dir}",
        "--num-cpus=1",
        "--num-gpus=0",
        "--object-store-memory=100000000",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    # The memory monitor would kill workers when the shared CI machine is busy; this test kills its own.
    env = {**os.environ, "RAY_memory_monitor_refresh_ms": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while not _cluster_up(address, env):
            if head.poll() is not None or time.time() > deadline:
                stderr = head.stderr.read().decode()[-3000:] if head.stderr else ""
                raise RuntimeError(f"ray head did not start: {stderr}")
            time.sleep(1)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops the node's processes on SIGTERM
        try:
            head.wait(timeout=10)
        except subprocess.TimeoutExpired:  # what is left of the node: its whole session is ours
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _cluster_up(address: str, env: dict[str, str]) -> bool:
    status = subprocess.run(
        [str(Path(sys.executable).with_name("ray")), "status", f"--address={address}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return status.returncode == 0


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory, base_models_dir, ray_head):
    settings = make_settings(
        tmp_path_factory.mktemp("ray-data"),
        base_models_dir,
        job_backend="ray",
        ray_address=ray_head,
        rate_limits={"inference": "100000/minute", "training": "100000/minute"},
        training_stop_grace_s=60.0,  # a stopped trainer saves its checkpoint even on a busy CI machine
        job_heartbeat_s=1.0,
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(ray_server):
    with ray_server.client() as client:
        upload(client, "few-ner", "ner", ner_examples(8))
        yield client


def ray_location(server, job_id: str) -> dict:
    """Where the job's Ray task runs, as its record says (the runner writes it before the handler starts)."""
    with server.services.db.session() as s:
        return q.get_job(s, job_id).progress["ray"]


def test_a_training_job_runs_on_ray_reports_progress_and_stops_with_its_checkpoints(ray_server, admin):
    job = long_job(admin, "on-ray")
    running, seen = wait_until(admin, job["id"], lambda j: j["progress"]["step"] >= 1 or finished(j))
    assert running["status"] == "running", running
    where = ray_location(ray_server, job["id"])
    # A Ray worker process runs it, not the server: Ray names its process after the task.
    assert where["node_id"] and where["task_id"] and where["pid"] != os.getpid()
    assert Path(f"/proc/{where['pid']}/cmdline").read_bytes().startswith(b"ray::outrider-training")
    assert running["progress"]["step"] >= 1 and running["progress"]["total_steps"] > running["progress"]["step"]

    assert admin.post(f"{JOBS}/{job['id']}/stop").status_code == 200
    final = wait_finished(admin, job["id"], timeout=120)
    assert final["status"] == "stopped" and final["stop_reason"] == "stopped on request", final
    checkpoints = admin.get(f"{JOBS}/{job['id']}/checkpoints").json()["checkpoints"]
    assert checkpoints and checkpoints[-1]["step"] == final["progress"]["step"]  # saved when it stopped
    assert "step" in admin.get(f"{JOBS}/{job['id']}/logs").text  # the job's log, written on the Ray node
    # The checkpoint reached the data directory the API serves from.
    body = {"model_id": checkpoints[-1]["id"], "text": PROBE, "schema": {"entities": LABELS}}
    assert admin.post("/inference", json=body).status_code == 200
    assert seen[0] in ("requested", "running") and "running" in seen


def test_a_killed_ray_worker_fails_the_job_with_the_reason(ray_server, admin):
    job = long_job(admin, "ray-killed")
    running, _ = wait_until(admin, job["id"], lambda j: j["progress"]["step"] >= 1 or finished(j))
    assert running["status"] == "running", running
    os.kill(ray_location(ray_server, job["id"])["pid"], signal.SIGKILL)
    final = wait_finished(admin, job["id"], timeout=90)
    assert final["status"] == "failed", final
    assert "the Ray worker running this job died" in final["error"], final["error"]
    deadline = time.time() + 30  # the trainer follows its parent (PR_SET_PDEATHSIG)
    while trainer_pids(job["id"]) and time.time() < deadline:
        time.sleep(0.5)
    assert not trainer_pids(job["id"])
    # Delete removes what the Ray node wrote: the record and the job's folder in the shared data directory.
    folder = ray_server.settings.data_dir / "training" / job["id"]
    assert folder.is_dir()
    deleted = admin.delete(f"{JOBS}/{job['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert admin.get(f"{JOBS}/{job['id']}").status_code == 404 and not folder.exists()
