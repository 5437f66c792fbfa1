"""Stop a non-streamed call's work when its client goes away.

Streamed responses already stop: Starlette's streaming response waits on the ASGI ``receive()`` for
``http.disconnect`` and cancels the body iterator, which cancels the generation (``ActiveGeneration.chunks``
stops the model's streams and records the call ``cancelled`` with what was produced, charging only that).
A plain JSON response has no such listener: a client that gave up would leave the model generating until
``max_tokens`` and be charged for all of it. ``unless_disconnected`` gives non-streamed calls the same
listener: one task blocked on ``receive()`` (no polling), which cancels the call's task on disconnect. The
cancellation then takes the same path as a stream's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.types import Receive

from outrider.core.errors import ClientDisconnected

T = TypeVar("T")


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task) -> bool:
    """Cancel ``task`` when the client disconnects; True when it did."""
    # The body was read before the route ran, so the only message left for this request is the disconnect
    # (uvicorn answers it at once when the client is already gone).
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a server whose receive() cannot be waited on here: the call just runs to the end
        return False
    task.cancel()
    return True


def _client_left(watcher: asyncio.Task[bool]) -> bool:
    # The watcher ends in the same step as its cancel(), so it is done by the time the cancellation lands.
    return watcher.done() and not watcher.cancelled() and watcher.result()


async def unless_disconnected(request: Request, call: Awaitable[T]) -> T:
    """Await ``call``; if the client disconnects first, cancel it and raise ``ClientDisconnected`` (a 499
    nobody reads). Only for non-streamed responses: a streamed one listens for the disconnect itself."""
    current = asyncio.current_task()
    assert current is not None
    watcher = asyncio.create_task(_cancel_on_disconnect(request.receive, current))
    try:
        result = await call
    except asyncio.CancelledError:
        # Ours only if the watcher asked for it and nothing else (a server shutdown) cancelled this task too.
        if _client_left(watcher) and current.uncancel() == 0:
            raise ClientDisconnected("the client disconnected before the response was ready") from None
        raise
    finally:
        watcher.cancel()
    if _client_left(watcher) and current.cancelling():  # the call swallowed the cancellation and finished anyway
        current.uncancel()
    return result
