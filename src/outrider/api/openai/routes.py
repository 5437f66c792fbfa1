"""OpenAI-compatible routes: parse, call a service, render (JSON or SSE)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse

from outrider.api.deps import principal, rate_limited, services
from outrider.app_state import Services
from outrider.core.ids import new_id
from outrider.services.accounts import Principal
from outrider.services.recording import CallContext

from . import conversion as conv
from . import streaming
from .schemas import ChatCompletionRequest, CompletionRequest, ResponsesRequest

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest, who: Principal = Depends(rate_limited("chat")), svc: Services = Depends(services)
):
    ctx = CallContext(who, "openai", body.model)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    if body.schema_ is not None:
        messages = conv.chat_messages(body.messages)
        outcome = await svc.extraction.extract_from_chat(ctx, body.model, body.schema_, messages)
        completion = conv.extraction_chat_completion(body.model, outcome.result, outcome.usage)
        if body.stream:
            return EventSourceResponse(streaming.extraction_chat_stream(completion, include_usage))
        return completion
    active = await svc.generation.start(ctx, conv.to_chat_request(body))
    if body.stream:
        return EventSourceResponse(streaming.chat_stream(active, body.model, include_usage, body.logprobs))
    outcome = await active.collect()
    return conv.chat_completion(new_id("chatcmpl"), body.model, outcome.results, outcome.usage, body.logprobs)


@router.post("/completions")
async def completions(
    body: CompletionRequest, who: Principal = Depends(rate_limited("chat")), svc: Services = Depends(services)
):
    ctx = CallContext(who, "openai", body.model)
    request = conv.to_completion_request(body)
    active = await svc.generation.start(ctx, request)
    want_logprobs = body.logprobs is not None
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(streaming.completion_stream(active, body.model, include_usage, want_logprobs))
    outcome = await active.collect()
    echo = request.prompt if body.echo else None
    return conv.text_completion(new_id("cmpl"), body.model, outcome.results, outcome.usage, want_logprobs, echo)


@router.post("/responses")
async def responses(
    body: ResponsesRequest, who: Principal = Depends(rate_limited("chat")), svc: Services = Depends(services)
):
    ctx = CallContext(who, "openai", body.model)
    if body.schema_ is not None:
        outcome = await svc.extraction.extract_from_chat(ctx, body.model, body.schema_, conv.responses_messages(body))
        completion = conv.extraction_chat_completion(body.model, outcome.result, outcome.usage)
        text = completion["choices"][0]["message"]["content"]
        return conv.response_object(new_id("resp"), body.model, text, outcome.usage, "completed")
    active = await svc.generation.start(ctx, conv.to_responses_request(body))
    if body.stream:
        return EventSourceResponse(streaming.responses_stream(active, body.model))
    outcome = await active.collect()
    incomplete = "max_output_tokens" if outcome.result.finish_reason == "length" else None
    status = "incomplete" if incomplete else "completed"
    return conv.response_object(new_id("resp"), body.model, outcome.result.text, outcome.usage, status, incomplete)


@router.get("/models")
async def list_models(_: Principal = Depends(principal), svc: Services = Depends(services)):
    await asyncio.to_thread(svc.registry.scan_model_dirs)
    return {"object": "list", "data": [conv.model_object(spec) for spec in svc.registry.specs()]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, _: Principal = Depends(principal), svc: Services = Depends(services)):
    return conv.model_object(svc.registry.resolve(model_id))
