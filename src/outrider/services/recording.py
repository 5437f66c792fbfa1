"""Writes inference history records: one per call (unless ``store`` is false), failures included."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from outrider.backends.base import ModelSpec
from outrider.core.errors import OutriderError
from outrider.core.ids import new_id
from outrider.core.usage import Usage
from outrider.services.accounts import Principal
from outrider.storage.db import Database
from outrider.storage.queries import inferences as q
from outrider.storage.records import NewInference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    """Who called, through which surface, and whether to keep a record."""

    principal: Principal
    surface: str
    model_id: str
    store: bool = True
    project_id: str | None = None


class Recorder:
    """Group commit: records that arrive while a write is running are written together in the next
    transaction, and each caller returns only once its own record is committed (durable before the
    response is sent, without one commit per request under load)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: set[asyncio.Task] = set()
        self._queue: list[tuple[str, NewInference, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []

            def write(rows: list[tuple[str, NewInference, asyncio.Future]] = batch) -> None:
                with self.db.session() as s:
                    for inference_id, new, _ in rows:
                        q.insert_inference(s, new, inference_id=inference_id)

            try:
                await asyncio.to_thread(write)
            except Exception as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def record(
        self,
        ctx: CallContext,
        spec: ModelSpec,
        task: str,
        record_input: Any,
        output: Any,
        latency_ms: float,
        usage: Usage,
        *,
        error: OutriderError | None = None,
        status: str | None = None,
    ) -> str | None:
        if not ctx.store:
            return None
        new = NewInference(
            account_id=ctx.principal.account.id,
            api_key_id=ctx.principal.key.id,
            surface=ctx.surface,
            model_id=ctx.model_id,
            model_used=spec.id,
            task=task,
            input=record_input,
            output=output,
            status=status or ("error" if error else "success"),
            error_type=error.code if error else None,
            error_message=error.message if error else None,
            latency_ms=round(latency_ms, 3),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_micro_usd=usage.cost_micro_usd,
            project_id=ctx.project_id,
            training_job_id=spec.training_job_id,
        )
        inference_id = new_id("inf")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((inference_id, new, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await future
        return inference_id

    async def record_failure(
        self, ctx: CallContext, spec: ModelSpec, task: str, record_input: Any, latency_ms: float, error: OutriderError
    ) -> None:
        try:
            await self.record(ctx, spec, task, record_input, None, latency_ms, Usage(0, 0), error=error)
        except Exception:  # the original error matters more than a failed history write
            log.exception("could not record a failed inference")

    def track(self, coroutine: Any) -> None:
        """Run a recording coroutine from a context that cannot await it (a stream torn down by a client
        disconnect); the task is kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
