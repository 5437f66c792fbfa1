"""Anthropic-compatible routes: parse, call a service, render (JSON or the event stream)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse

from outrider.api.deps import rate_limited, services
from outrider.api.disconnect import unless_disconnected
from outrider.app_state import Services
from outrider.core.ids import new_id
from outrider.services.accounts import Principal
from outrider.services.recording import CallContext

from . import conversion as conv
from . import streaming
from .schemas import MessagesRequest

router = APIRouter(prefix="/v1", tags=["anthropic"])


@router.post("/messages")
async def create_message(
    body: MessagesRequest,
    request: Request,
    who: Principal = Depends(rate_limited("chat")),
    svc: Services = Depends(services),
):
    ctx = CallContext(who, "anthropic", body.model)
    message_id = new_id("msg")
    if body.schema_ is not None:
        outcome = await svc.extraction.extract_from_chat(ctx, body.model, body.schema_, conv.to_messages(body))
        message = conv.extraction_message(message_id, body.model, outcome.result, outcome.usage)
        return EventSourceResponse(streaming.extraction_stream(message)) if body.stream else message
    if body.stream:
        active = await svc.generation.start(ctx, conv.to_request(body))
        model = active.routing.model if active.routing is not None else body.model
        return EventSourceResponse(streaming.routed(active, streaming.message_stream(active, message_id, model)))
    # A client that gives up stops the generation: recorded ``cancelled``, charged for what was produced.
    active = await unless_disconnected(request, svc.generation.run(ctx, conv.to_request(body)))
    model = active.routing.model if active.routing is not None else body.model
    outcome = active.outcome()
    message = conv.message(message_id, model, outcome.result, outcome.usage)
    if active.routing is None:
        return JSONResponse(message)  # plain JSON already: no second pass through FastAPI's encoder
    # Non-streamed routed messages carry the decision as a field and the chosen model as a header.
    message["routing"] = active.routing.to_event()
    return JSONResponse(message, headers={"X-Outrider-Route": active.routing.model})
