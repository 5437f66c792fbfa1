import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from outrider.serving.batcher import ExtractionBatcher


class RecordingEncoder:
    """A test double: echoes texts and records every forward pass it is asked to run."""

    def __init__(self, delay: float = 0.02) -> None:
        self.passes: list[list[str]] = []
        self.delay = delay
        self.threads: set[str] = set()

    def prepare(self, schema):
        return schema

    def extract(self, texts, prepared, threshold):
        self.threads.add(threading.current_thread().name)
        self.passes.append(list(texts))
        time.sleep(self.delay)
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return [{"text": t, "threshold": threshold} for t in texts]

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1, thread_name_prefix="model") as pool:
        yield pool


async def test_concurrent_requests_share_passes_and_get_their_own_results(executor):
    model = RecordingEncoder()
    batcher = ExtractionBatcher(model, executor, max_batch=16, max_wait_s=0.01)
    outputs = await asyncio.gather(*(batcher.extract([f"text {i}"], [None], 0.5) for i in range(40)))
    assert [o.results[0]["text"] for o in outputs] == [f"text {i}" for i in range(40)]
    assert [o.token_counts for o in outputs] == [[2]] * 40
    assert len(model.passes) < 40 / 4  # batched, not one pass per request
    assert max(len(p) for p in model.passes) <= 16
    assert model.threads == {"model_0"}  # model work never ran on the event loop thread


async def test_a_lone_request_waits_at_most_max_wait(executor):
    batcher = ExtractionBatcher(RecordingEncoder(delay=0), executor, max_batch=64, max_wait_s=0.05)
    started = time.perf_counter()
    await batcher.extract(["only"], [None], 0.5)
    assert time.perf_counter() - started < 0.5


async def test_a_request_larger_than_max_batch_runs_whole(executor):
    model = RecordingEncoder(delay=0)
    batcher = ExtractionBatcher(model, executor, max_batch=4, max_wait_s=0.001)
    output = await batcher.extract([f"t{i}" for i in range(10)], [None] * 10, 0.5)
    assert len(output.results) == 10


async def test_different_thresholds_run_separately(executor):
    model = RecordingEncoder()
    batcher = ExtractionBatcher(model, executor, max_batch=8, max_wait_s=0.05)
    a, b = await asyncio.gather(batcher.extract(["a"], [None], 0.3), batcher.extract(["b"], [None], 0.7))
    assert a.results[0]["threshold"] == 0.3 and b.results[0]["threshold"] == 0.7


async def test_a_failing_pass_fails_its_requests_and_the_batcher_keeps_serving(executor):
    batcher = ExtractionBatcher(RecordingEncoder(), executor, max_batch=8, max_wait_s=0.01)
    results = await asyncio.gather(
        batcher.extract(["boom"], [None], 0.5), batcher.extract(["fine"], [None], 0.5), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)  # same pass
    later = await batcher.extract(["fine again"], [None], 0.5)
    assert later.results[0]["text"] == "fine again"
