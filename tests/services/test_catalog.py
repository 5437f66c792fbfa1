"""ModelCatalog against a real database and model folders: which model an id names, for whom (another account's
trained model is the same 404 as an unknown id), inside which key pool, whether it can serve now, and that what
reads the database or the disk runs off the event loop (tests/api/test_routing.py counts a routed call's
resolutions over HTTP)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from outrider.backends.base import Availability, ModelSpec
from outrider.backends.registry import ModelRegistry
from outrider.config import build_settings
from outrider.core.errors import InvalidRequest, ModelNotFound, PermissionDenied
from outrider.services.accounts import AccountService, Principal
from outrider.services.catalog import ModelCatalog, can_serve
from outrider.services.training import JOB_PREFIX, TRAINING_JOB_KIND
from outrider.storage.queries import jobs as jobs_q
from outrider.storage.queries import training as training_q


def spec(model_id: str, kind: str = "decoder", **kw: object) -> ModelSpec:
    return ModelSpec(id=model_id, kind=kind, source="test", description="", load=object, **kw)


@dataclass
class World:
    catalog: ModelCatalog
    accounts: AccountService
    owner: Principal
    other: Principal
    job_id: str
    checkpoint_id: str


@pytest.fixture
def world(tmp_path, db) -> Iterator[World]:
    settings = build_settings(data_dir=tmp_path / "data")
    accounts = AccountService(db, initial_credit_micro_usd=0)
    owner = accounts.authenticate(accounts.create_account("owner")[1].raw_key)
    other = accounts.authenticate(accounts.create_account("other")[1].raw_key)
    with ThreadPoolExecutor(1) as executor:
        registry = ModelRegistry(settings, executor)
        registry.add(spec("base-llm"))
        registry.add(spec("extractor", kind="encoder"))
        catalog = ModelCatalog(settings, db, registry, job_kind=TRAINING_JOB_KIND, job_prefix=JOB_PREFIX)
        # A finished fine-tune as the training worker leaves it: a complete job, a checkpoint, a model folder.
        with db.session() as s:
            job = jobs_q.insert_job(
                s, account_id=owner.account.id, kind=TRAINING_JOB_KIND, prefix=JOB_PREFIX, payload={"model_name": "m"}
            )
            folder = catalog.training_root / job.id / "model"
            folder.mkdir(parents=True)
            (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
            relative = f"{job.id}/model"
            jobs_q.finish_job(s, job.id, status="complete", result={"model_path": relative})
            checkpoint = training_q.insert_checkpoint(
                s, job_id=job.id, account_id=owner.account.id, step=1, epoch=1, metrics={}, path=relative
            )
        yield World(catalog, accounts, owner, other, job.id, checkpoint.id)


async def test_trained_models_are_their_accounts_alone(world):
    catalog = world.catalog
    for model_id in (world.job_id, world.checkpoint_id):
        mine = await catalog.model_for(model_id, world.owner.account.id)
        assert mine.training_job_id == world.job_id and mine.owned_by == world.owner.account.id
        assert mine.source == "trained" and mine.kind == "decoder"
        # To another account it is exactly an unknown id: same status, message and param.
        with pytest.raises(ModelNotFound) as unknown:
            await catalog.for_call(world.other, "ft_0000000000000000", "decoder", param="model")
        with pytest.raises(ModelNotFound) as foreign:
            await catalog.for_call(world.other, model_id, "decoder", param="model")
        assert foreign.value.message == unknown.value.message.replace("ft_0000000000000000", model_id)
        assert foreign.value.param == unknown.value.param == "model"
        assert await catalog.visible(model_id, world.other.account.id) is None
    listed = {s.id for s in await catalog.models_for(world.owner.account.id)}
    assert {"base-llm", "extractor", world.job_id} <= listed and world.checkpoint_id not in listed
    assert world.job_id not in {s.id for s in await catalog.models_for(world.other.account.id)}


async def test_a_call_stays_in_the_keys_pool_and_its_family(world):
    pooled = world.accounts.issue_key(world.owner.account.id, name="pooled", model_pool=["extractor"])
    who = world.accounts.authenticate(pooled.raw_key)
    assert (await world.catalog.for_call(who, "extractor", "encoder", param="model_id")).id == "extractor"
    with pytest.raises(PermissionDenied, match="model pool"):
        await world.catalog.for_call(who, "base-llm", "decoder", param="model")
    with pytest.raises(InvalidRequest, match="is an encoder model: send a 'schema'"):
        await world.catalog.for_call(who, "extractor", "decoder", param="model")


async def test_what_reads_the_database_or_the_disk_runs_off_the_event_loop(world):
    loop_thread = threading.get_ident()
    seen: list[tuple[str, int]] = []
    world.catalog.add_source(lambda model_id: seen.append((model_id, threading.get_ident())))
    assert await world.catalog.find("nothing-by-this-name") is None
    assert seen and all(thread != loop_thread for _, thread in seen)  # looked for in a worker thread
    seen.clear()
    await world.catalog.resolve("base-llm")
    await world.catalog.resolve(world.job_id)  # read from the database once...
    await world.catalog.resolve(world.job_id)  # ...then answered from memory
    assert seen == []  # found before the last source: it is never asked


async def test_a_deleted_job_is_forgotten(world):
    catalog = world.catalog
    assert await catalog.find(world.checkpoint_id) is not None
    with catalog.db.session() as s:
        training_q.delete_job(s, world.job_id)
    assert await catalog.find(world.checkpoint_id) is not None  # kept in memory until told
    catalog.forget([world.job_id, world.checkpoint_id])
    assert await catalog.find(world.checkpoint_id) is None and await catalog.find(world.job_id) is None


class Monitor:
    def __init__(self, available: bool) -> None:
        self.available = available

    def is_available(self) -> bool:
        return self.available


async def test_availability_is_one_function(world):
    gone = spec("gone", check=lambda: Availability(False, "deleted"))
    open_circuit = spec("open", monitor=Monitor(False), check=lambda: Availability(True))
    closed_circuit = spec("closed", monitor=Monitor(True))
    assert [can_serve(s) for s in (spec("here"), gone, open_circuit, closed_circuit)] == [True, False, False, True]
    assert [s.id for s in await world.catalog.serving([gone, closed_circuit, spec("here")])] == ["closed", "here"]
