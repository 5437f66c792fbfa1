import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from outrider.backends.base import Availability, ModelSpec
from outrider.backends.registry import ModelRegistry
from outrider.config import build_settings
from outrider.core.errors import ModelNotFound, ModelUnavailable
from tests.waiting import wait_until_async


class Loads:
    def __init__(self):
        self.count = 0

    def __call__(self):
        self.count += 1
        time.sleep(0.05)
        return object()


def spec(model_id, load, kind="decoder", **kw):
    return ModelSpec(id=model_id, kind=kind, source="test", description="", load=load, **kw)


@pytest.fixture
def registry(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        yield ModelRegistry(build_settings(data_dir=tmp_path, model_cache_size=2), pool)


def test_unknown_ids_are_model_not_found(registry):
    with pytest.raises(ModelNotFound):
        registry.resolve("nope")


async def test_models_load_lazily_once_and_the_cache_is_bounded(registry):
    loads = {name: Loads() for name in "abc"}
    for name, load in loads.items():
        registry.add(spec(name, load))
    assert all(load.count == 0 for load in loads.values())  # nothing loaded at declaration
    await asyncio.gather(*(registry.get(registry.resolve("a")) for _ in range(5)))
    assert loads["a"].count == 1  # concurrent first requests share one load
    await registry.get(registry.resolve("b"))
    await registry.get(registry.resolve("c"))
    assert registry.loaded_ids() == ["b", "c"]  # LRU bound of 2 evicted "a"
    assert (await registry.health(registry.resolve("b")))[0] == "ready"


async def test_unavailable_models_fail_fast_with_a_reason(registry):
    registry.add(spec("hub/x", Loads(), check=lambda: Availability(False, "not cached and offline")))
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="not cached"):
        await registry.get(registry.resolve("hub/x"))
    assert time.perf_counter() - started < 1
    assert await registry.health(registry.resolve("hub/x")) == ("unavailable", "not cached and offline")


async def test_polling_health_warms_a_model(registry):
    load = Loads()
    cold = spec("cold", load)
    registry.add(cold)
    assert await registry.health(cold) == ("loading", None)
    assert await registry.health(cold) == ("loading", None)  # one load, not one per poll

    async def ready() -> bool:
        return await registry.health(cold) == ("ready", None)

    await wait_until_async(ready, what="the polled model to be ready")
    assert load.count == 1


def test_models_saved_after_start_up_are_found(registry):
    folder = registry.settings.saved_models_dir / "saved-later"
    assert registry.declared("saved-later") is None
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    assert registry.resolve("saved-later").kind == "decoder" and registry.declared("saved-later") is not None


def test_hub_models_are_unavailable_offline_without_waiting(tmp_path):
    from outrider.backends.encoder_gliner import hub_availability

    started = time.perf_counter()
    availability = hub_availability("fastino/gliner2-base-v1", offline=True)
    assert not availability.available and "offline" in availability.reason
    assert time.perf_counter() - started < 2
