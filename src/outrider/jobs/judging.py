"""The worker's judge queue: records sampled when they were written (``storage/queries/judging``) are judged
here, in batches, by ``JudgeService.judge_queued``, never inside the request that made them.

Each turn claims up to ``judge_batch_size`` due entries (a compare-and-set per entry, so workers sharing the
database never judge one record twice at once) and judges them one after the other. An entry leaves the queue
once its record is judged, or its judge failed for good: an unusable answer, a judge model that is gone, no
credit left, or the last of ``judge_max_attempts`` tries. An upstream error or a rate limit is tried again after
``judge_retry_after_s``, doubled for each later try; the error of each try is on the record (``llmaj_error``)
meanwhile. An entry claimed by a worker that died is due again once its lease (``judge_lease_s``) is over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from outrider.config import Settings
from outrider.jobs.registry import JobHandlers
from outrider.services.judging import JudgeService
from outrider.storage.db import Database
from outrider.storage.queries import judging as q
from outrider.storage.queries import now
from outrider.storage.records import QueuedJudgement

log = logging.getLogger(__name__)

JUDGE_QUEUE = "judge-queue"


@dataclass(frozen=True)
class JudgeQueueDeps:
    settings: Settings
    db: Database
    judging: JudgeService


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The wait before the try after ``attempts`` failed ones."""
    return timedelta(seconds=settings.judge_retry_after_s * 2 ** (attempts - 1))


async def drain_judge_queue(deps: JudgeQueueDeps) -> bool:
    """Judge one batch of due records; True when the batch was full (more may be due)."""
    settings = deps.settings

    def claim() -> list[QueuedJudgement]:
        with deps.db.session() as s:
            lease_until = now() + timedelta(seconds=settings.judge_lease_s)
            return q.claim_due(s, limit=settings.judge_batch_size, lease_until=lease_until)

    claimed = await deps.db.in_writer(claim)
    for queued in claimed:
        try:
            attempt = await deps.judging.judge_queued(queued)
        except Exception:  # a bug, not a judge's failure: log it and drop the entry rather than retry it forever
            log.exception("judging %s failed unexpectedly; it leaves the queue", queued.inference_id)
            attempt = None
        again = (
            attempt is not None
            and attempt.failure is not None
            and attempt.retryable
            and queued.attempts < settings.judge_max_attempts
        )
        if attempt is not None and attempt.failure is not None:
            log.info("judging %s failed (try %d): %s", queued.inference_id, queued.attempts, attempt.failure.message)

        def settle(queued: QueuedJudgement = queued, again: bool = again) -> None:
            with deps.db.session() as s:
                if again:
                    q.retry_later(s, queued.inference_id, now() + retry_delay(settings, queued.attempts))
                else:
                    q.dequeue(s, queued.inference_id)

        await deps.db.in_writer(settle)
    return len(claimed) >= settings.judge_batch_size


def register(handlers: JobHandlers, deps: JudgeQueueDeps) -> None:
    handlers.every(JUDGE_QUEUE, deps.settings.judge_poll_interval_s, partial(drain_judge_queue, deps))


__all__ = ["JUDGE_QUEUE", "JudgeQueueDeps", "drain_judge_queue", "register", "retry_delay"]
