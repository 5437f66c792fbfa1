"""Writes what every call leaves behind, in one transaction per group of calls: its usage record (always),
its inference history record (unless ``store`` is false), and its charge (settling the credit hold).
Failures are recorded too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from outrider.backends.base import ModelSpec
from outrider.core.errors import OutriderError
from outrider.core.ids import new_id
from outrider.core.usage import Usage
from outrider.services.accounts import Principal
from outrider.services.billing import Hold, charge_kind
from outrider.services.judge_configs import SamplingCache
from outrider.storage.db import Database
from outrider.storage.group_commit import GroupCommit
from outrider.storage.queries import billing as billing_q
from outrider.storage.queries import inferences as q
from outrider.storage.queries import judging as judging_q
from outrider.storage.records import NewInference, NewUsage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    """Who called, through which surface, and whether to keep a record."""

    principal: Principal
    surface: str
    model_id: str
    store: bool = True
    project_id: str | None = None
    routing: dict | None = None  # the routing decision, when the caller asked for model "auto"
    job_id: str | None = None  # the job the call is made for (a generation job's teacher calls): what it charges


@dataclass
class _Pending:
    inference_id: str | None
    inference: NewInference | None
    usage: NewUsage
    hold: Hold | None
    reference_id: str | None = None  # of the charge: the job the call was made for, else the inference


TokenMeter = Callable[[Principal, int], Awaitable[None]]
# (model that served, surface, task, status, usage, latency in ms): told of every recorded call (metrics).
CallObserver = Callable[[str, str, str, str, Usage, float], None]


class Recorder:
    """Group commit: records that arrive while a write is running are written together in the next
    transaction, and each caller returns only once its own record is committed (durable before the
    response is sent, without one commit per request under load)."""

    def __init__(
        self,
        db: Database,
        token_meter: TokenMeter | None = None,
        observer: CallObserver | None = None,
        sampling: SamplingCache | None = None,
    ) -> None:
        """``sampling``: the judge configurations the records are sampled with (read with each group without)."""
        self.db = db
        self.token_meter = token_meter
        self.observer = observer
        self.sampling = sampling
        self._pending: set[asyncio.Task] = set()
        self._commits: GroupCommit[_Pending, None] = GroupCommit(db, self._write, on_failure=self._release_holds)

    def _write(self, session: Session, items: list[_Pending]) -> list[None]:
        q.insert_inferences(session, [(i.inference_id, i.inference) for i in items if i.inference is not None])
        # The judge's sample is drawn here, when the record is written; the worker judges it later.
        judged = [
            (i.inference_id, i.inference.account_id, i.inference.project_id)
            for i in items
            if i.inference is not None and i.inference_id is not None and i.inference.status == "success"
        ]
        if judged:
            accounts = {account_id for _, account_id, _ in judged}
            configs = self.sampling.configs(session, accounts) if self.sampling is not None else None
            judging_q.enqueue_sampled(session, judged, configs)
        billing_q.insert_usages(session, [item.usage for item in items])
        billing_q.settle_many(
            session,
            [
                billing_q.Settlement(
                    item.hold.account_id,
                    reserved=item.hold.amount,
                    cost=item.usage.cost_micro_usd,
                    kind=charge_kind(item.usage.surface),
                    reference_id=item.reference_id,
                    api_key_id=item.usage.api_key_id,
                    model_id=item.usage.model_id,
                )
                for item in items
                if item.hold is not None
            ],
        )
        return [None] * len(items)

    async def _release_holds(self, batch: list[_Pending]) -> None:
        """The write failed (nothing was charged): free the reservations so the credit is not stuck."""
        held = [item.hold for item in batch if item.hold is not None]
        if not held:
            return

        def release() -> None:
            with self.db.session() as s:
                for hold in held:
                    billing_q.release(s, hold.account_id, hold.amount)

        try:
            await self.db.in_writer(release)
        except Exception:
            log.exception("could not release %d credit reservations", len(held))

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
        hold: Hold | None = None,
    ) -> str | None:
        """Write the call's usage (and charge), and its history record unless ``store`` is false. Returns
        the inference id (None when not stored) once the transaction has committed."""
        status = status or ("error" if error else "success")
        inference_id = new_id("inf") if ctx.store else None
        inference = None
        if ctx.store:
            inference = NewInference(
                account_id=ctx.principal.account.id,
                api_key_id=ctx.principal.key_id,
                surface=ctx.surface,
                model_id=ctx.model_id,
                model_used=spec.id,
                task=task,
                input=record_input,
                output=output,
                status=status,
                error_type=error.code if error else None,
                error_message=error.message if error else None,
                latency_ms=round(latency_ms, 3),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                cost_micro_usd=usage.cost_micro_usd,
                project_id=ctx.project_id,
                training_job_id=spec.training_job_id,
                routing=ctx.routing,
            )
        new_usage = NewUsage(
            account_id=ctx.principal.account.id,
            api_key_id=ctx.principal.key_id,
            inference_id=inference_id,
            surface=ctx.surface,
            model_id=ctx.model_id,
            model_used=spec.id,
            task=task,
            status=status,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_micro_usd=usage.cost_micro_usd,
            latency_ms=round(latency_ms, 3),
        )
        if hold is not None:
            hold.done = True  # settled by this write, or released if the write fails
        reference_id = ctx.job_id or inference_id
        if self.observer is not None:
            self.observer(spec.id, ctx.surface, task, status, usage, latency_ms)
        await self._commits.submit(_Pending(inference_id, inference, new_usage, hold, reference_id))
        if self.token_meter is not None and usage.total_tokens:
            await self.token_meter(ctx.principal, usage.total_tokens)
        return inference_id

    async def record_failure(
        self,
        ctx: CallContext,
        spec: ModelSpec,
        task: str,
        record_input: Any,
        latency_ms: float,
        error: OutriderError,
        hold: Hold | None = None,
    ) -> None:
        try:
            await self.record(ctx, spec, task, record_input, None, latency_ms, Usage(0, 0), error=error, hold=hold)
        except Exception:  # the original error matters more than a failed history write
            log.exception("could not record a failed inference")

    def track(self, coroutine: Any) -> None:
        """Run a recording coroutine from a context that cannot await it (a stream torn down by a client
        disconnect); the task is kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
