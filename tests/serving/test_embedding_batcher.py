"""The embedding micro-batcher: passes counted in texts, large requests spread over passes, results in order,
failures delivered, callers that left skipped."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from outrider.core.embeddings import EmbeddingRequest
from outrider.core.errors import InvalidRequest
from outrider.serving.embedding_batcher import EmbeddingBatcher


class RecordingEncoder:
    """A test double: a text's vector is [its length, its word count], and every pass is recorded."""

    dimensions = 2
    max_tokens = 256

    def __init__(self, delay: float = 0.02) -> None:
        self.passes: list[list[str]] = []
        self.delay = delay
        self.threads: set[str] = set()

    def encode(self, texts):
        self.threads.add(threading.current_thread().name)
        self.passes.append(list(texts))
        time.sleep(self.delay)
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return [[float(len(t)), float(len(t.split()))] for t in texts], [len(t.split()) + 2 for t in texts]


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1, thread_name_prefix="model") as pool:
        yield pool


def request(*texts: str, dimensions: int | None = None) -> EmbeddingRequest:
    return EmbeddingRequest(tuple(texts), dimensions)


async def test_concurrent_requests_share_passes_of_at_most_max_batch_texts(executor):
    encoder = RecordingEncoder()
    batcher = EmbeddingBatcher(encoder, executor, max_batch=4, max_wait_s=0.05)
    texts = [f"text number {i}" for i in range(10)]
    results = await asyncio.gather(*(batcher.embed(request(t)) for t in texts))
    assert [r.vectors for r in results] == [[[float(len(t)), 3.0]] for t in texts]
    assert [r.prompt_tokens for r in results] == [5] * 10
    assert [len(p) for p in encoder.passes] == [4, 4, 2]
    assert encoder.threads == {"model_0"}  # never the event loop's thread


async def test_a_large_request_is_spread_over_passes_and_shares_its_tail(executor):
    encoder = RecordingEncoder()
    batcher = EmbeddingBatcher(encoder, executor, max_batch=4, max_wait_s=0.05)
    big = [f"w{i}" for i in range(10)]
    large, small = await asyncio.gather(batcher.embed(request(*big)), batcher.embed(request("a b", "c d e")))
    assert large.vectors == [[float(len(t)), 1.0] for t in big] and large.prompt_tokens == 30
    assert small.vectors == [[3.0, 2.0], [5.0, 3.0]] and small.prompt_tokens == 9
    assert encoder.passes == [big[:4], big[4:8], [*big[8:], "a b", "c d e"]]


async def test_a_failed_pass_fails_its_requests_only_and_the_batcher_goes_on(executor):
    batcher = EmbeddingBatcher(RecordingEncoder(), executor, max_batch=2, max_wait_s=0.05)
    outcomes = await asyncio.gather(
        batcher.embed(request("boom")), batcher.embed(request("fine")), return_exceptions=True
    )
    assert isinstance(outcomes[0], RuntimeError) and isinstance(outcomes[1], RuntimeError)
    assert (await batcher.embed(request("later"))).vectors == [[5.0, 1.0]]


async def test_a_caller_that_left_is_not_embedded(executor):
    encoder = RecordingEncoder(delay=0.1)
    batcher = EmbeddingBatcher(encoder, executor, max_batch=2, max_wait_s=0.0)
    first = asyncio.ensure_future(batcher.embed(request("first")))
    await asyncio.sleep(0.02)  # its pass is running
    gone = asyncio.ensure_future(batcher.embed(request(*[f"gone {i}" for i in range(6)])))
    await asyncio.sleep(0)
    gone.cancel()
    assert (await first).vectors == [[5.0, 1.0]]
    assert (await batcher.embed(request("next"))).vectors == [[4.0, 1.0]]
    assert not any("gone" in t for p in encoder.passes for t in p)


async def test_other_dimensions_are_refused_before_queueing(executor):
    encoder = RecordingEncoder()
    batcher = EmbeddingBatcher(encoder, executor, max_batch=2, max_wait_s=0.0)
    with pytest.raises(InvalidRequest, match="2-dimensional") as refused:
        await batcher.embed(request("x", dimensions=3))
    assert refused.value.param == "dimensions" and encoder.passes == []
    assert (await batcher.embed(request("x", dimensions=2))).vectors == [[1.0, 1.0]]


async def test_callers_coming_back_are_held_together_in_full_passes(executor):
    encoder = RecordingEncoder(delay=0.05)
    batcher = EmbeddingBatcher(encoder, executor, max_batch=8, max_wait_s=0.001)

    async def client(index: int) -> None:
        for turn in range(3):
            await batcher.embed(request(f"client {index} turn {turn}"))
            await asyncio.sleep(0.002 * index)  # callers come back staggered, well past max_wait

    await asyncio.gather(*(client(i) for i in range(8)))
    assert [len(p) for p in encoder.passes] == [8, 8, 8]


async def test_a_lone_caller_is_never_held(executor):
    encoder = RecordingEncoder(delay=0.01)
    batcher = EmbeddingBatcher(encoder, executor, max_batch=8, max_wait_s=0.001)
    for turn in range(4):
        await batcher.embed(request(f"turn {turn}"))
        assert batcher._hold_until == 0.0  # its next request starts a pass after max_wait, as without holding
    assert [len(p) for p in encoder.passes] == [1, 1, 1, 1]
    await asyncio.gather(batcher.embed(request("a")), batcher.embed(request("b")))
    assert batcher._hold_until > 0.0  # two callers: held for each other next time
