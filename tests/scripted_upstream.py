"""A small upstream server on loopback that misbehaves on purpose, in both wire formats.

The requested ``model`` picks the behaviour, on ``POST /v1/chat/completions``, ``/v1/completions``
(OpenAI format) and ``POST /v1/messages`` (Anthropic format):

    status-NNN       answer HTTP NNN with an error body (429 carries ``Retry-After: 7``)
    hang             accept the request and send nothing for a minute
    hang-midstream   send headers and one token, then nothing until the client goes away (counted in
                     ``disconnects``)
    error-midstream  one token, then an error event
    truncated        one token, then close the stream without finishing
    scripted         a complete stream of SCRIPTED_TEXT with usage (prompt 11, completion 3); in Anthropic
                     format, {"answer": "upstream"} when JSON was asked for (forced tool or output_config)
    no-usage         the same stream without any usage
    tools...         tool calls and answers to tool results: see ``tests/scripted_tools.py``
    cached           ``scripted`` with prompt-cache usage: OpenAI format 8 of the 11 prompt tokens read from the
                     cache (``prompt_tokens_details.cached_tokens``); Anthropic format input_tokens 3,
                     cache_read_input_tokens 6, cache_creation_input_tokens 2 (in message_start when streamed)

A request without ``stream: true`` gets the JSON answer instead: ``scripted`` and ``no-usage`` the whole
text (with and without usage), ``error-midstream`` a 500, ``truncated`` a body cut short, ``hang-midstream``
headers then nothing until the client goes away; ``status-NNN`` and ``hang`` as above.

``POST /v1/embeddings`` answers ``scripted`` with vectors made from each input (``scripted_vector``; the
request's ``dimensions``, default 4) and usage (one token per word), ``no-usage`` with the same vectors as base64
float32 and no usage; ``status-NNN`` and ``hang`` as above.

``GET /v1/models`` lists the models and answers ``models_status`` (settable) so health probes can fail.
Each request's body and headers are kept in ``requests``; ``probes`` counts model-list calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import GENEROUS_LIMITS, RunningServer, free_port, make_settings, start_server
from tests.scripted_tools import TOOL_MODELS, serve_tools

SCRIPTED_TEXT = ["Hello", " upstream", " world"]


def scripted_vector(text: str, dimensions: int = 4) -> list[float]:
    """The scripted upstream's embedding of ``text``: exact in float32."""
    return [float(len(text) + j) / 4 for j in range(dimensions)]


MODELS = [
    "status-500",
    "status-503",
    "hang",
    "hang-midstream",
    "error-midstream",
    "truncated",
    "scripted",
    "no-usage",
    "cached",
    *TOOL_MODELS,
]
OPENAI_USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
OPENAI_CACHED_USAGE = {**OPENAI_USAGE, "prompt_tokens_details": {"cached_tokens": 8}}
ANTHROPIC_CACHED_USAGE = {"input_tokens": 3, "cache_read_input_tokens": 6, "cache_creation_input_tokens": 2}


def openai_usage(model: str) -> dict[str, Any] | None:
    return {"no-usage": None, "cached": OPENAI_CACHED_USAGE}.get(model, OPENAI_USAGE)


@dataclass
class ScriptedUpstream:
    url: str = ""
    models_status: int = 200
    probes: int = 0
    disconnects: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    runner: web.AppRunner | None = None

    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    # -- handlers -----------------------------------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        self.probes += 1
        if self.models_status != 200:
            return web.json_response({"error": {"message": "models are down"}}, status=self.models_status)
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})

    async def openai(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, anthropic=False)

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, anthropic=True)

    async def _serve(
        self, request: web.Request, anthropic: bool, body: dict[str, Any] | None = None
    ) -> web.StreamResponse:
        if body is None:
            body = await request.json()
            self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        model = body.get("model", "")
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            headers = {"Retry-After": "7"} if status == 429 else None
            message = f"scripted failure {status}"
            error = (
                {"type": "error", "error": {"type": "api_error", "message": message}}
                if anthropic
                else {"error": {"message": message, "type": "server_error"}}
            )
            return web.json_response(error, status=status, headers=headers)
        if model == "hang":
            await asyncio.sleep(60)
        if model in TOOL_MODELS:
            return await serve_tools(request, model, body, anthropic)
        if not body.get("stream"):
            return await self._serve_whole(request, model, body, anthropic)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        events = self._anthropic_events(model, body) if anthropic else self._openai_events(model, request.path)
        cut = 3 if anthropic else 1  # the index of the event after the first token
        for index, event in enumerate(events):
            if index == cut and model == "hang-midstream":
                await self._wait_for_disconnect(request)
                return response
            if index == cut and model == "truncated":
                return response
            await response.write(event.encode())
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        model = body.get("model", "")
        if model.startswith("status-") or model == "hang":
            return await self._serve(request, anthropic=False, body=body)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        vectors = [scripted_vector(text, body.get("dimensions") or 4) for text in texts]
        if model == "no-usage":
            data = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
            return web.json_response({"object": "list", "data": [{"embedding": e} for e in data], "model": model})
        items = [{"object": "embedding", "index": i, "embedding": v} for i, v in reversed(list(enumerate(vectors)))]
        tokens = sum(len(text.split()) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": items, "model": model, "usage": usage})

    async def _serve_whole(
        self, request: web.Request, model: str, body: dict[str, Any], anthropic: bool
    ) -> web.StreamResponse:
        if model == "error-midstream":
            return web.json_response({"error": {"message": "scripted failure"}}, status=500)
        answer = json.dumps(
            self._anthropic_message(model, body) if anthropic else self._openai_whole(model, request.path)
        )
        if model in ("truncated", "hang-midstream"):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(answer) + 100  # promises more than it sends
            await response.prepare(request)
            await response.write(answer[:10].encode())
            if model == "hang-midstream":
                await self._wait_for_disconnect(request)
            else:
                request.transport.close()
            return response
        return web.Response(text=answer, content_type="application/json")

    def _openai_whole(self, model: str, path: str) -> dict[str, Any]:
        text = "".join(SCRIPTED_TEXT)
        chat = path.endswith("chat/completions")
        choice = {"index": 0, "finish_reason": "length"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        usage = openai_usage(model)
        return {
            "id": "x",
            "object": "chat.completion" if chat else "text_completion",
            "model": model,
            "choices": [choice],
            "usage": usage,
        }

    def _anthropic_message(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        tool = bool(body.get("tool_choice"))
        if tool:
            content = [{"type": "tool_use", "id": "t", "name": "json_output", "input": {"answer": "upstream"}}]
        else:
            text = '{"answer": "upstream"}' if body.get("output_config") else "".join(SCRIPTED_TEXT)
            content = [{"type": "text", "text": text}]
        message = {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": model,
            "stop_reason": "tool_use" if tool else "max_tokens",
            "stop_sequence": None,
        }
        if model == "cached":
            message["usage"] = {**ANTHROPIC_CACHED_USAGE, "output_tokens": 3}
        elif model != "no-usage":
            message["usage"] = {"input_tokens": 11, "output_tokens": 3}
        return message

    async def _wait_for_disconnect(self, request: web.Request) -> None:
        for _ in range(1200):
            if request.transport is None or request.transport.is_closing():
                self.disconnects += 1
                return
            await asyncio.sleep(0.05)

    def _openai_events(self, model: str, path: str) -> list[str]:
        chat = path.endswith("chat/completions")

        def chunk(text: str | None, finish: str | None = None, usage: dict | None = None) -> str:
            choice = {"index": 0, "finish_reason": finish}
            if chat:
                choice["delta"] = {"content": text} if text is not None else {}
            else:
                choice["text"] = text or ""
            return "data: " + json.dumps({"id": "x", "model": model, "choices": [choice], "usage": usage}) + "\n\n"

        first = [chunk(SCRIPTED_TEXT[0]), chunk(SCRIPTED_TEXT[1])]
        if model == "error-midstream":
            return [*first, 'data: {"error": {"message": "scripted mid-stream failure"}}\n\n']
        events = [*first, chunk(SCRIPTED_TEXT[2]), chunk(None, "length")]
        usage = openai_usage(model)
        if usage is not None:
            events.append("data: " + json.dumps({"id": "x", "model": model, "choices": [], "usage": usage}) + "\n\n")
        return [*events, "data: [DONE]\n\n"]

    def _anthropic_events(self, model: str, body: dict[str, Any]) -> list[str]:
        def event(kind: str, **fields: Any) -> str:
            return f"event: {kind}\ndata: " + json.dumps({"type": kind, **fields}) + "\n\n"

        start_usage = ANTHROPIC_CACHED_USAGE if model == "cached" else {"input_tokens": 11}
        start = event(
            "message_start",
            message={
                "id": "m",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "usage": {**start_usage, "output_tokens": 1},
            },
        )
        tool = bool(body.get("tool_choice"))
        block = (
            {"type": "tool_use", "id": "t", "name": "json_output", "input": {}}
            if tool
            else {"type": "text", "text": ""}
        )
        delta = (
            (lambda t: {"type": "input_json_delta", "partial_json": t})
            if tool
            else (lambda t: {"type": "text_delta", "text": t})
        )
        # A forced tool streams its input; structured outputs (output_config) stream JSON as text.
        pieces = ['{"answer": ', '"upstream"', "}"] if tool or body.get("output_config") else SCRIPTED_TEXT
        events = [
            start,
            event("content_block_start", index=0, content_block=block),
            event("content_block_delta", index=0, delta=delta(pieces[0])),
        ]
        if model == "error-midstream":
            return [*events, event("error", error={"type": "overloaded_error", "message": "scripted overload"})]
        events += [event("content_block_delta", index=0, delta=delta(p)) for p in pieces[1:]]
        usage = {"output_tokens": 3}
        stop = "tool_use" if tool else "max_tokens"
        events += [
            event("content_block_stop", index=0),
            event("message_delta", delta={"stop_reason": stop, "stop_sequence": None}, usage=usage),
            event("message_stop"),
        ]
        return events

    # -- running ------------------------------------------------------------------------------------------
    def start(self) -> ScriptedUpstream:
        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.openai)
        app.router.add_post("/v1/completions", self.openai)
        app.router.add_post("/v1/messages", self.anthropic)
        app.router.add_post("/v1/embeddings", self.embeddings)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.runner = web.AppRunner(app, shutdown_timeout=0.1)
            self.loop.run_until_complete(self.runner.setup())
            self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", port).start())
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self.loop is not None and self.runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)

    async def _shutdown(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
        hanging = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in hanging:  # handlers still sleeping in a "hang" behaviour
            task.cancel()
        await asyncio.gather(*hanging, return_exceptions=True)


def start_gateway_for(
    folder: Path, base_models_dir: Path, providers: list[dict[str, Any]], **settings: Any
) -> RunningServer:
    """An Outrider server whose providers file (written into ``folder``) declares ``providers``."""
    path = folder / "providers.json"
    path.write_text(json.dumps({"providers": providers}))
    settings.setdefault("rate_limits", GENEROUS_LIMITS)
    return start_server(make_settings(folder, base_models_dir, providers_file=path, **settings))
