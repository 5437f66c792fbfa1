"""What the Ray job backend asks Ray for, and what it hands a Ray node: per-kind resources from
``OUTRIDER_RAY_JOB_RESOURCES``, a GPU for training when ``OUTRIDER_DEVICE`` names CUDA, settings a node
can rebuild (absolute paths, the same database, no worker of its own), and the reasons a lost task
fails its job with. The end-to-end path on a real cluster is ``test_ray_backend.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from outrider.config import Settings
from outrider.jobs.ray_backend import settings_for_node, task_options


def test_each_kind_asks_for_its_resources_and_is_never_retried():
    settings = Settings(
        ray_job_resources={"training": {"num_cpus": 4, "num_gpus": 1, "memory_mb": 2048}, "generation": {"num_cpus": 2}}
    )
    training = task_options(settings, "training")
    assert training["num_cpus"] == 4 and training["num_gpus"] == 1 and training["memory"] == 2048 * 1024 * 1024
    assert training["max_retries"] == 0 and training["retry_exceptions"] is False
    generation = task_options(settings, "generation")
    assert generation["num_cpus"] == 2 and generation["num_gpus"] == 0 and "memory" not in generation
    assert task_options(settings, "evaluation") | {"name": ""} == {
        "num_cpus": 1,
        "num_gpus": 0,
        "max_retries": 0,
        "retry_exceptions": False,
        "name": "",
    }


def test_training_asks_for_a_gpu_when_the_device_names_cuda_unless_told_otherwise():
    assert task_options(Settings(device="cuda"), "training")["num_gpus"] == 1
    assert task_options(Settings(device="cuda:1"), "generation")["num_gpus"] == 0
    assert task_options(Settings(device="auto"), "training")["num_gpus"] == 0
    told = Settings(device="cuda", ray_job_resources={"training": {"num_gpus": 0.5}})
    assert task_options(told, "training")["num_gpus"] == 0.5


@pytest.mark.parametrize(
    ("resources", "problem"),
    [({"training": {"gpus": 1}}, "unknown resource 'gpus'"), ({"training": {"num_cpus": -1}}, "must be >= 0")],
)
def test_bad_resource_requests_are_refused_when_settings_are_built(resources, problem):
    with pytest.raises(ValueError, match=problem):
        Settings(ray_job_resources=resources)


def test_a_node_rebuilds_the_same_store_with_absolute_paths_and_no_worker_of_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("data"), model_dirs=[Path("models")], device="auto", job_backend="ray")
    options = task_options(settings, "training")
    data = settings_for_node(settings, options)
    assert data["data_dir"] == str(tmp_path / "data") and data["model_dirs"] == [str(tmp_path / "models")]
    assert data["database_url"] == f"sqlite:///{tmp_path / 'data' / 'outrider.db'}"
    assert data["embedded_worker"] is False and data["job_backend"] == "local"
    os.chdir("/")  # a Ray worker's working directory is Ray's own
    rebuilt = Settings(**data)
    assert rebuilt.resolved_database_url == data["database_url"]  # not relative to the new directory
    assert rebuilt.data_dir == tmp_path / "data"
    # A GPU the task asked for is the node's cuda:0; a kind without one never takes a GPU there.
    gpu = settings_for_node(Settings(device="auto"), {"num_gpus": 1})
    assert gpu["device"] == "cuda"
    assert settings_for_node(Settings(device="cuda:3"), {"num_gpus": 1})["device"] == "cuda"  # Ray's granted GPU
    assert settings_for_node(Settings(device="cuda"), {"num_gpus": 0})["device"] == "cpu"


def test_lost_tasks_fail_their_jobs_with_what_ray_said():
    rex = pytest.importorskip("ray.exceptions")
    from outrider.jobs.ray_backend import describe_ray_failure

    assert describe_ray_failure(rex.WorkerCrashedError()).startswith("the Ray worker running this job died: ")
    assert describe_ray_failure(rex.TaskCancelledError()) == "the Ray task running this job was cancelled"
    assert describe_ray_failure(rex.RaySystemError("gcs down")).startswith("Ray could not run this job: ")


def test_the_ray_backend_without_ray_installed_is_a_clear_start_up_error(monkeypatch):
    from outrider.jobs.ray_backend import RayUnavailable, require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the extra
    with pytest.raises(RayUnavailable, match=r"needs the ray extra: pip install 'outrider\[ray\]'"):
        require_ray()
