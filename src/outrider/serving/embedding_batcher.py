"""Micro-batching for local embedding models: concurrent requests share forward passes.

Like extraction's batcher (``batcher.py``), one collector task per model starts a pass as soon as ``max_batch``
texts wait or the oldest request has waited ``max_wait`` seconds. Unlike it, a pass is counted in texts, not
requests: a request with more texts than ``max_batch`` is spread over several passes (its tail shares a pass with
the next requests), so the memory of one pass is bounded however many texts a request sends. Passes run in the
shared model executor, never on the event loop; the batcher is the ``EmbeddingModel`` that the service calls.

Concurrent callers are held together: after a pass that served several texts (or left texts waiting), the next pass
waits for as many texts as that pass and its waiters (at most ``max_batch``), for at most half that pass's duration.
Without it, closed-loop clients settle into two groups whose passes alternate half full (the waiters start a pass
at once, while the callers just answered are still on their way back), and a pass costs nearly the same at half
the size on a busy CPU (docs/benchmarks.md, embeddings). A lone caller is never held: its pass served one text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from outrider.backends.base import SentenceEncoder
from outrider.core.embeddings import EmbeddingRequest, EmbeddingResult
from outrider.core.errors import InvalidRequest
from outrider.serving.batcher import MicroBatchQueue

HOLD_FRACTION = 0.5  # of the last pass's duration: the longest the next pass waits for its callers to come back


@dataclass
class _Job:
    texts: tuple[str, ...]
    future: asyncio.Future[EmbeddingResult]
    vectors: list[list[float]] = field(default_factory=list)
    tokens: int = 0
    sent: int = 0  # texts handed to a pass so far
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class _Slice:
    job: _Job
    start: int
    end: int


class EmbeddingBatcher(MicroBatchQueue[_Job]):
    def __init__(
        self,
        encoder: SentenceEncoder,
        executor: Executor,
        *,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch)
        self.encoder = encoder
        self.executor = executor
        self._expected = 0  # texts the last pass's callers and waiters are expected to bring to the next one
        self._hold_until = 0.0  # perf_counter time until which the next pass waits for them

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        size = self.encoder.dimensions
        if request.dimensions is not None and request.dimensions != size:
            raise InvalidRequest(
                f"this model produces {size}-dimensional vectors and cannot shorten them; omit 'dimensions' "
                f"or send {size}",
                param="dimensions",
            )
        job = _Job(request.texts, asyncio.get_running_loop().create_future())
        self._submit(job)
        return await job.future

    def _waiting_texts(self) -> int:
        return sum(len(job.texts) - job.sent for job in self._queue if not job.future.done())

    def _holding(self) -> bool:
        return time.perf_counter() < self._hold_until

    def _deadline(self) -> float:
        deadline = super()._deadline()
        return max(deadline, self._hold_until) if self._holding() else deadline

    def _target(self) -> int:
        return min(self.max_batch, self._expected) if self._holding() else self.max_batch

    async def _next_pass(self) -> None:
        slices = self._take()
        if slices:
            await self._run(slices)

    def _take(self) -> list[_Slice]:
        """Up to ``max_batch`` texts from the oldest requests; a request whose caller went away is dropped."""
        slices: list[_Slice] = []
        room = self.max_batch
        while self._queue and room:
            job = self._queue[0]
            if job.future.done():
                self._queue.popleft()
                continue
            count = min(room, len(job.texts) - job.sent)
            slices.append(_Slice(job, job.sent, job.sent + count))
            job.sent += count
            room -= count
            if job.sent == len(job.texts):
                self._queue.popleft()
        return slices

    async def _run(self, slices: list[_Slice]) -> None:
        texts = [text for piece in slices for text in piece.job.texts[piece.start : piece.end]]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            vectors, counts = await loop.run_in_executor(self.executor, self.encoder.encode, texts)
        except Exception as exc:  # delivered to every request in the pass, never kills the collector
            for piece in slices:
                if not piece.job.future.done():
                    piece.job.future.set_exception(exc)
            return
        self.passes += 1
        if self.on_batch is not None:
            self.on_batch(len(texts))
        finished, waiting = time.perf_counter(), self._waiting_texts()
        if len(texts) > 1 or waiting:
            self._expected = len(texts) + waiting
            self._hold_until = finished + HOLD_FRACTION * (finished - started)
        else:
            self._hold_until = 0.0
        start = 0
        for piece in slices:
            job, end = piece.job, start + piece.end - piece.start
            job.vectors.extend(vectors[start:end])
            job.tokens += sum(counts[start:end])
            start = end
            if len(job.vectors) == len(job.texts) and not job.future.done():
                job.future.set_result(EmbeddingResult(job.vectors, job.tokens))
