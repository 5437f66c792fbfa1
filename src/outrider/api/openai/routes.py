"""OpenAI-compatible routes: parse, call a service, render (JSON or SSE)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse

from outrider.api.deps import ChatCaller, CurrentPrincipal, EmbeddingsCaller, ServicesDep
from outrider.api.disconnect import unless_disconnected
from outrider.api.routed import routed_json, served_model
from outrider.core.ids import new_id
from outrider.services.recording import CallContext

from . import conversion as conv
from . import streaming
from .schemas import ChatCompletionRequest, CompletionRequest, EmbeddingsRequest, ResponsesRequest

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, who: ChatCaller, svc: ServicesDep):
    ctx = CallContext(who, "openai", body.model)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    if body.schema_ is not None:
        messages = conv.chat_messages(body.messages)
        outcome = await svc.extraction.extract_from_chat(ctx, body.model, body.schema_, messages)
        completion = conv.extraction_chat_completion(body.model, outcome.result, outcome.usage)
        if body.stream:
            return EventSourceResponse(streaming.extraction_chat_stream(completion, include_usage))
        return completion
    if body.stream:
        active = await svc.generation.start(ctx, conv.to_chat_request(body))
        events = streaming.chat_stream(active, served_model(active, body.model), include_usage, body.logprobs)
        return EventSourceResponse(streaming.routed(active, events))
    # A client that gives up stops the generation: recorded ``cancelled``, charged for what was produced.
    active = await unless_disconnected(request, svc.generation.run(ctx, conv.to_chat_request(body)))
    model, outcome = served_model(active, body.model), active.outcome()
    completion = conv.chat_completion(new_id("chatcmpl"), model, outcome.results, outcome.usage, body.logprobs)
    return routed_json(completion, active)


@router.post("/completions")
async def completions(body: CompletionRequest, http: Request, who: ChatCaller, svc: ServicesDep):
    ctx = CallContext(who, "openai", body.model)
    request = conv.to_completion_request(body)
    want_logprobs = body.logprobs is not None
    if body.stream:
        active = await svc.generation.start(ctx, request)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = streaming.completion_stream(active, served_model(active, body.model), include_usage, want_logprobs)
        return EventSourceResponse(streaming.routed(active, events))
    active = await unless_disconnected(http, svc.generation.run(ctx, request))
    model, outcome = served_model(active, body.model), active.outcome()
    echo = request.prompt if body.echo else None
    completion = conv.text_completion(new_id("cmpl"), model, outcome.results, outcome.usage, want_logprobs, echo)
    return routed_json(completion, active)


@router.post("/responses")
async def responses(body: ResponsesRequest, request: Request, who: ChatCaller, svc: ServicesDep):
    ctx = CallContext(who, "openai", body.model)
    if body.schema_ is not None:
        outcome = await svc.extraction.extract_from_chat(ctx, body.model, body.schema_, conv.responses_messages(body))
        completion = conv.extraction_chat_completion(body.model, outcome.result, outcome.usage)
        text = completion["choices"][0]["message"]["content"]
        return conv.response_object(new_id("resp"), body.model, text, outcome.usage, "completed")
    if body.stream:
        active = await svc.generation.start(ctx, conv.to_responses_request(body))
        events = streaming.responses_stream(active, served_model(active, body.model), tools=bool(body.tools))
        return EventSourceResponse(streaming.routed(active, events))
    active = await unless_disconnected(request, svc.generation.run(ctx, conv.to_responses_request(body)))
    model, outcome = served_model(active, body.model), active.outcome()
    result = outcome.result
    incomplete = "max_output_tokens" if result.finish_reason == "length" else None
    status = "incomplete" if incomplete else "completed"
    response = conv.response_object(
        new_id("resp"),
        model,
        result.text,
        outcome.usage,
        status,
        incomplete,
        tool_calls=result.tool_calls,
        params=active.request.params,
    )
    return routed_json(response, active)


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request, who: EmbeddingsCaller, svc: ServicesDep):
    ctx = CallContext(who, "openai", body.model, store=body.store)
    outcome = await unless_disconnected(request, svc.embeddings.embed(ctx, conv.to_embedding_request(body)))
    return JSONResponse(conv.embedding_list(body.model, outcome, body.encoding_format))


@router.get("/models")
async def list_models(who: CurrentPrincipal, svc: ServicesDep):
    return {"object": "list", "data": [conv.model_object(s) for s in await svc.catalog.models_for(who.account.id)]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, who: CurrentPrincipal, svc: ServicesDep):
    return conv.model_object(await svc.catalog.model_for(model_id, who.account.id, "GET /v1/models"))
