"""``GET /models/{id}/health`` over real HTTP: it needs a key, and another account's fine-tunes and
checkpoints are 404 to it (as a random id) and are never loaded for it.

Training is slow, so account A's fine-tune is registered the way the training worker leaves a finished job:
a complete ``training`` job (and one checkpoint) whose model folder is the session's real fine-tuned
``demo-extractor``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from outrider.storage.queries import jobs as jobs_q
from outrider.storage.queries import training as training_q
from tests.conftest import new_account


@pytest.fixture(scope="module")
def private_models(server, admin, demo_model_dir: Path) -> dict:
    """Account A's key, its fine-tune's job id and a checkpoint id."""
    raw = new_account(admin, "health-owner")
    with server.client(raw) as client:
        account_id = client.get("/me").json()["id"]
    training = server.services.training
    with server.services.db.session() as s:
        job = jobs_q.insert_job(
            s,
            account_id=account_id,
            kind="training",
            prefix="ft",
            payload={"model_name": "private-ner", "task_type": "ner", "training_type": "full"},
        )
        folder = training.root / job.id / "model"
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(demo_model_dir / "demo-extractor", target_is_directory=True)
        relative = f"{job.id}/model"
        jobs_q.finish_job(s, job.id, status="complete", result={"model_path": relative})
        checkpoint = training_q.insert_checkpoint(
            s, job_id=job.id, account_id=account_id, step=1, epoch=1, metrics={}, path=relative
        )
    return {"key": raw, "job": job.id, "checkpoint": checkpoint.id}


def loading_or_loaded(server, model_id: str) -> bool:
    registry = server.services.registry
    return model_id in registry._loaded or model_id in registry._loading or model_id in registry._adapters


def test_model_health_needs_a_key(server, private_models):
    with server.client(None) as anonymous:
        for model_id in ("outrider/gliner2-minilm-l6", "no/such", private_models["job"]):
            response = anonymous.get(f"/models/{model_id}/health")
            assert response.status_code == 401 and "missing API key" in response.json()["detail"]
    assert not loading_or_loaded(server, private_models["job"])


def test_another_accounts_fine_tune_and_checkpoint_are_404_and_never_loaded(server, admin, private_models):
    with server.client(new_account(admin, "health-outsider")) as other:
        unknown = other.get("/models/ft_0000000000000000/health")
        assert unknown.status_code == 404
        for model_id in (private_models["job"], private_models["checkpoint"]):
            response = other.get(f"/models/{model_id}/health")
            assert response.status_code == 404, response.text
            assert response.json()["detail"] == unknown.json()["detail"].replace("ft_0000000000000000", model_id)
            # A load starts (as a task, listed in ``_loading``) before health answers: none was started.
            assert not loading_or_loaded(server, model_id)
    # The owner's key sees them: the 404 above is about ownership, not a broken model.
    with server.client(private_models["key"]) as owner:
        for model_id in (private_models["job"], private_models["checkpoint"]):
            response = owner.get(f"/models/{model_id}/health")
            assert response.status_code == 200, response.text
            assert response.json()["status"] in ("loading", "ready")
        assert loading_or_loaded(server, private_models["job"])
