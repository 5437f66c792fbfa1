"""Group commit: the per-call write transactions of many concurrent callers, batched.

Items submitted while a batch is being written go together in the next batch: one transaction on the
database's writer thread (``Database.writer``), so concurrent calls cost one commit instead of one each and
the hot writes of a process never wait on each other's SQLite write lock. Each caller's future gets its
own item's outcome, or the batch's exception (after ``on_failure`` has run). A batch whose connection was lost
(the database restarted, or dropped it) is rolled back and written once more on a fresh connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from outrider.storage.db import Database

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class GroupCommit(Generic[Item, Outcome]):
    def __init__(
        self,
        db: Database,
        write: Callable[[Session, list[Item]], list[Outcome]],
        *,
        on_failure: Callable[[list[Item]], Awaitable[None]] | None = None,
        drop_when_caller_gone: bool = False,
        reservations: bool = False,
    ) -> None:
        """``write`` runs a batch in one session and returns one outcome per item, in order.
        ``drop_when_caller_gone``: items submitted from an event loop that has since ended are not written
        (a credit reservation is wanted only while its caller waits; a call's record is wanted regardless)."""
        self.db = db
        self.write = write
        self.on_failure = on_failure
        self.drop_when_caller_gone = drop_when_caller_gone
        self.reservations = reservations  # written on the database's reservation thread
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    def submit(self, item: Item) -> asyncio.Future:
        """Queue ``item`` for the next batch; the future resolves once its batch has committed."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return future

    async def _write_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue, []
            if self.drop_when_caller_gone:
                batch = [(item, future) for item, future in batch if future.get_loop() is loop]
            items = [item for item, _ in batch]

            def work(items: list[Item] = items) -> list[Outcome]:
                try:
                    return self._write_once(items)
                except _ConnectionLost:
                    return self._write_once(items)  # the engine has replaced its dead connections

            try:
                outcomes = await self.db.in_writer(work, reservations=self.reservations)
            except Exception as exc:
                if self.on_failure is not None:
                    await self.on_failure(items)
                for _, future in batch:
                    _settle(future, exception=exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, result=outcome)

    def _write_once(self, items: list[Item]) -> list[Outcome]:
        with self.db.session() as session:
            try:
                return self.write(session, items)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise _ConnectionLost from exc
                raise
            # A failure in the commit itself (on leaving the block) is not retried: it may have committed.


class _ConnectionLost(Exception):
    """The batch's connection was found dead before its commit: nothing of it was written."""


def _settle(future: asyncio.Future, *, result: object = None, exception: BaseException | None = None) -> None:
    if future.done():
        return
    with contextlib.suppress(RuntimeError):  # the caller's event loop has ended: nobody is waiting
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
