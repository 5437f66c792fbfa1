"""Micro-batching for extraction: concurrent requests to one model share a forward pass.

Requests queue up; a single collector task per model starts a pass as soon as ``max_batch`` texts are
waiting or the oldest request has waited ``max_wait`` seconds, whichever comes first. While a pass runs
in the model thread the next batch fills, so under load passes run back to back at full batch size.
The event loop never runs model code: passes run in the shared model executor.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from outrider.backends.base import EncoderModel


@dataclass
class _Job:
    texts: list[str]
    prepared: list[Any]
    threshold: float | None  # None: the model's own defaults
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


J = TypeVar("J")  # a queued job: has ``enqueued`` (perf_counter seconds)


@dataclass(frozen=True)
class BatchOutput:
    results: list[dict]
    token_counts: list[int]


class MicroBatchQueue(ABC, Generic[J]):
    """The queue and collector task every micro-batcher shares: jobs wait in arrival order, and one task per
    model starts a pass (``_next_pass``) once ``max_batch`` texts wait or the oldest job waited ``max_wait_s``."""

    def __init__(self, *, max_batch: int, max_wait_s: float, on_batch: Callable[[int], None] | None = None) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: deque[J] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.passes = 0  # forward passes run (observable in tests and metrics)
        self.on_batch = on_batch  # told the number of texts of each pass (metrics)

    def _submit(self, job: J) -> None:
        self._queue.append(job)
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._collect())

    @property
    def waiting(self) -> int:
        """Texts queued for a pass that has not started."""
        return self._waiting_texts()

    @abstractmethod
    def _waiting_texts(self) -> int:
        """Texts queued and not yet handed to a pass."""

    @abstractmethod
    async def _next_pass(self) -> None:
        """Take the next batch off the queue and run it."""

    def _deadline(self) -> float:
        """When the next pass starts at the latest: the oldest request's arrival plus ``max_wait_s``."""
        return self._queue[0].enqueued + self.max_wait_s

    def _target(self) -> int:
        """How many waiting texts start the next pass before its deadline."""
        return self.max_batch

    async def _collect(self) -> None:
        while self._queue:
            # Wait for a full batch or for the oldest request's deadline.
            deadline = self._deadline()
            while self._waiting_texts() < self._target():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            await self._next_pass()


class ExtractionBatcher(MicroBatchQueue[_Job]):
    def __init__(
        self,
        model: EncoderModel,
        executor: Executor,
        *,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch)
        self.model = model
        self.executor = executor

    async def extract(self, texts: list[str], prepared: list[Any], threshold: float | None) -> BatchOutput:
        job = _Job(texts, prepared, threshold, asyncio.get_running_loop().create_future())
        self._submit(job)
        return await job.future

    def _waiting_texts(self) -> int:
        return sum(len(job.texts) for job in self._queue)

    async def _next_pass(self) -> None:
        batch = [self._queue.popleft()]
        size = len(batch[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= self.max_batch:
            job = self._queue.popleft()
            batch.append(job)
            size += len(job.texts)
        await self._run(batch)

    async def _run(self, batch: list[_Job]) -> None:
        # One pass per threshold value (the library takes one default threshold per call).
        groups: dict[float | None, list[_Job]] = {}
        for job in batch:
            groups.setdefault(job.threshold, []).append(job)
        loop = asyncio.get_running_loop()
        for threshold, jobs in groups.items():
            texts = [t for job in jobs for t in job.texts]
            prepared = [p for job in jobs for p in job.prepared]
            try:
                results, counts = await loop.run_in_executor(self.executor, self._forward, texts, prepared, threshold)
            except Exception as exc:  # delivered to every waiting request, never kills the collector
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.passes += 1
            if self.on_batch is not None:
                self.on_batch(len(texts))
            start = 0
            for job in jobs:
                end = start + len(job.texts)
                if not job.future.done():  # the caller may have gone away
                    job.future.set_result(BatchOutput(results[start:end], counts[start:end]))
                start = end

    def _forward(self, texts: list[str], prepared: list[Any], threshold: float | None) -> tuple[list[dict], list[int]]:
        return self.model.extract(texts, prepared, threshold), self.model.count_tokens(texts)
