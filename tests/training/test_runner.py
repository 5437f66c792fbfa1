"""The trainer process on its own: its event stream, a clean stop on request, and how it reports failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from outrider.training.runner import SPEC_FILE, STOP_FILE, TRAIN_FILE, VAL_FILE
from tests.conftest import SMOL

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def write_job(job_dir: Path, spec: dict, train: list[dict], val: list[dict]) -> Path:
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / SPEC_FILE).write_text(json.dumps(spec))
    for name, records in ((TRAIN_FILE, train), (VAL_FILE, val)):
        (job_dir / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    return job_dir


def start(job_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "outrider.training.runner", str(job_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )


def chats(count: int) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": f"{i}."}]}
        for i in range(count)
    ]


def decoder_spec(base_models_dir: Path, epochs: int) -> dict:
    from outrider.backends.builtin import base_model_dir
    from outrider.config import build_settings

    settings = build_settings(data_dir=base_models_dir.parent / "runner-data", base_models_dir=base_models_dir)
    return {
        "job_id": "ft_runner_test",
        "family": "decoder",
        "task_type": "decoder",
        "labels": [],
        "base": {"id": SMOL, "path": str(base_model_dir(settings, SMOL)), "build": SMOL},
        "training_type": "lora",
        "hyperparameters": {"nr_epochs": epochs, "batch_size": 2, "seed": 0},
        "threads": 1,
    }


def test_library_output_never_reaches_the_event_stream():
    code = (
        "from outrider.training.runner import take_stdout\n"
        "events = take_stdout()\n"
        "print('a library talking')\n"
        "events.emit('progress', step=1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"event": "progress", "step": 1}]
    assert "a library talking" in done.stderr


def test_a_failing_trainer_reports_an_error_event_and_exits_1(tmp_path):
    spec = {
        "job_id": "ft_broken",
        "family": "decoder",
        "task_type": "decoder",
        "labels": [],
        "base": {"id": "nowhere", "path": str(tmp_path / "no-such-model"), "build": None},
        "training_type": "lora",
        "hyperparameters": {"nr_epochs": 1},
        "threads": 1,
    }
    job_dir = write_job(tmp_path / "job", spec, chats(2), [])
    out, err = start(job_dir).communicate(timeout=180)
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "error" and "no-such-model" in events[-1]["message"]
    assert "Traceback" in err


@pytest.mark.parametrize("how", ["stop-file", "sigterm"])
def test_a_stop_request_saves_a_checkpoint_and_exits_cleanly(tmp_path, base_models_dir, how):
    job_dir = write_job(tmp_path / "job", decoder_spec(base_models_dir, epochs=50), chats(8), chats(2))
    process = start(job_dir)
    events = []
    for line in process.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "progress":
            break
    assert [e["event"] for e in events] == ["started", "progress"]
    assert events[0]["total_steps"] == 200 and events[1]["step"] == 1
    asked = time.time()
    if how == "stop-file":
        (job_dir / STOP_FILE).touch()
    else:
        process.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=60) == 0
    assert time.time() - asked < 30
    kinds = [e["event"] for e in rest]
    assert kinds[-1] == "done" and "checkpoint" in kinds
    done = rest[-1]
    assert done["stopped"] is True and done["steps"] < 200
    checkpoint = next(e for e in rest if e["event"] == "checkpoint")
    assert done["model_path"] == checkpoint["path"]
    folder = job_dir / checkpoint["path"]
    assert (folder / "adapter_config.json").exists() and (folder / "outrider.json").exists()
