"""Anthropic-compatible routes: parse, call a service, render (JSON or the event stream)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.sse import EventSourceResponse

from outrider.api.deps import ChatCaller, ServicesDep
from outrider.api.disconnect import unless_disconnected
from outrider.api.routed import routed_json, served_model
from outrider.core.ids import new_id
from outrider.services.recording import CallContext

from . import conversion as conv
from . import streaming
from .schemas import MessagesRequest

router = APIRouter(prefix="/v1", tags=["anthropic"])


@router.post("/messages")
async def create_message(body: MessagesRequest, request: Request, who: ChatCaller, svc: ServicesDep):
    ctx = CallContext(who, "anthropic", body.model)
    message_id = new_id("msg")
    if body.schema_ is not None:
        outcome = await svc.extraction.extract_from_chat(ctx, body.model, body.schema_, conv.to_messages(body))
        message = conv.extraction_message(message_id, body.model, outcome.result, outcome.usage)
        return EventSourceResponse(streaming.extraction_stream(message)) if body.stream else message
    if body.stream:
        active = await svc.generation.start(ctx, conv.to_request(body))
        events = streaming.message_stream(active, message_id, served_model(active, body.model), bool(body.tools))
        return EventSourceResponse(streaming.routed(active, events))
    # A client that gives up stops the generation: recorded ``cancelled``, charged for what was produced.
    active = await unless_disconnected(request, svc.generation.run(ctx, conv.to_request(body)))
    model, outcome = served_model(active, body.model), active.outcome()
    return routed_json(conv.message(message_id, model, outcome.result, outcome.usage), active)
