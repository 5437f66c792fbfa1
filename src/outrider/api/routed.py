"""How the compatible surfaces (OpenAI, Anthropic) show a ``model: "auto"`` routing decision, in one place.

Non-streamed: a ``routing`` field on the body and the chosen model in an ``X-Outrider-Route`` header.
Streamed: the decision is the stream's first event, before any token; each surface frames that event its own way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import JSONResponse

from outrider.services.generation import ActiveGeneration


def served_model(active: ActiveGeneration, requested: str) -> str:
    """The model named in responses: the one routing chose for ``model: "auto"``, else the one asked for."""
    return active.routing.model if active.routing is not None else requested


def routed_json(body: dict[str, Any], active: ActiveGeneration) -> JSONResponse:
    """A non-streamed response, with the routing decision when there was one. The body is plain JSON already:
    rendered directly, not through FastAPI's encoder (which walks every value again, a tenth of a millisecond on
    the gateway's path)."""
    if active.routing is None:
        return JSONResponse(body)
    body["routing"] = active.routing.to_event()
    return JSONResponse(body, headers={"X-Outrider-Route": active.routing.model})


async def routed_stream(
    active: ActiveGeneration, events: AsyncIterator[str], decision_event: Callable[[dict[str, Any]], str]
) -> AsyncIterator[str]:
    """``events``, preceded by the routing decision (framed by ``decision_event``) when there was one."""
    try:
        if active.routing is not None:
            yield decision_event(active.routing.to_event())
        async for event in events:
            yield event
    finally:
        await events.aclose()  # a client that went away cancels the generation at once
