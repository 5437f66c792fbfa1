"""Micro-batching for extraction: concurrent requests to one model share a forward pass.

Requests queue up; a single collector task per model starts a pass as soon as ``max_batch`` texts are
waiting or the oldest request has waited ``max_wait`` seconds, whichever comes first. While a pass runs
in the model thread the next batch fills, so under load passes run back to back at full batch size.
The event loop never runs model code: passes run in the shared model executor.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from outrider.backends.base import EncoderModel


@dataclass
class _Job:
    texts: list[str]
    prepared: list[Any]
    threshold: float | None  # None: the model's own defaults
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchOutput:
    results: list[dict]
    token_counts: list[int]


class ExtractionBatcher:
    def __init__(self, model: EncoderModel, executor: Executor, *, max_batch: int, max_wait_s: float) -> None:
        self.model = model
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.passes = 0  # forward passes run (observable in tests and metrics)

    async def extract(self, texts: list[str], prepared: list[Any], threshold: float | None) -> BatchOutput:
        loop = asyncio.get_running_loop()
        job = _Job(texts, prepared, threshold, loop.create_future())
        self._queue.append(job)
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._collect())
        return await job.future

    def _waiting_texts(self) -> int:
        return sum(len(job.texts) for job in self._queue)

    async def _collect(self) -> None:
        while self._queue:
            # Wait for a full batch or for the oldest request's deadline.
            deadline = self._queue[0].enqueued + self.max_wait_s
            while self._waiting_texts() < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
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
            start = 0
            for job in jobs:
                end = start + len(job.texts)
                if not job.future.done():  # the caller may have gone away
                    job.future.set_result(BatchOutput(results[start:end], counts[start:end]))
                start = end

    def _forward(self, texts: list[str], prepared: list[Any], threshold: float | None) -> tuple[list[dict], list[int]]:
        return self.model.extract(texts, prepared, threshold), self.model.count_tokens(texts)
