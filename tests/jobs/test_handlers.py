"""The job kinds ``build_services`` registers: named by their services, run with what they were given."""

import pytest

from outrider.app_state import build_services
from outrider.services.data_generation import GENERATION_JOB_KIND
from outrider.services.training import TRAINING_JOB_KIND
from outrider.storage.queries import jobs as q
from tests.conftest import ADMIN_KEY, make_settings


@pytest.fixture
def svc(tmp_path, base_models_dir):
    services = build_services(make_settings(tmp_path, base_models_dir, embedded_worker=False))
    yield services
    services.close()


def test_each_kind_is_registered_under_its_services_name_with_a_recovery_hook(svc):
    from outrider.services.evaluations import EVALUATION_JOB_KIND

    kinds = [GENERATION_JOB_KIND, TRAINING_JOB_KIND, EVALUATION_JOB_KIND]
    assert sorted(svc.jobs.handlers.kinds()) == sorted(kinds)
    # generation and training leave files and half-built versions behind: their hooks close them. An
    # evaluation writes only to its job's result (each model's figures when done), so failing it is enough.
    for name in (GENERATION_JOB_KIND, TRAINING_JOB_KIND):
        kind = svc.jobs.handlers.get(name)
        assert kind is not None and kind.recover is not None
    assert svc.jobs.handlers.get(EVALUATION_JOB_KIND) is not None


def test_the_key_that_queued_a_job_is_found_for_its_account_only(svc):
    owner = svc.bootstrap.account.id
    key = svc.accounts.authenticate(ADMIN_KEY).key
    principal = svc.accounts.principal_of(owner, key.id)
    assert principal is not None and principal.account.id == owner and principal.key.id == key.id
    other, _ = svc.accounts.create_account("other")
    assert svc.accounts.principal_of(other.id, key.id) is None
    assert svc.accounts.principal_of(owner, "key_missing") is None


async def test_recovering_a_dead_generation_job_closes_its_version_as_partial(svc):
    owner = svc.bootstrap.account.id
    with svc.db.session() as s:
        job = q.insert_job(s, account_id=owner, kind=GENERATION_JOB_KIND, payload={}, prefix="gen")
    writer = await svc.datasets.open_append(owner, "people", "ner", source="generation", job_id=job.id, labels=None)
    example = {"text": "Ada wrote", "entities": [{"start": 0, "end": 3, "label": "person", "text": "Ada"}]}
    assert await writer.append([example]) == 1
    with svc.db.session() as s:
        q.set_result(s, job.id, {"dataset_version_id": writer.version.id})
        job = q.get_job(s, job.id)
    svc.jobs.handlers.get(GENERATION_JOB_KIND).recover(job)
    _, version = await svc.datasets.version(owner, "people", writer.version.version)
    assert version.status == "partial" and version.example_count == 1
