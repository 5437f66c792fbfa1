"""Generation: validate parameters, resolve the decoder, run n streams, account usage and cost, record.

Surfaces call ``start`` and then iterate ``chunks()`` (streaming), or ``run`` (start and ``collect()``: one
response). Either way the call is recorded once it ends, also when the client disconnects (a stream closed
mid-way, or ``run``'s task cancelled by ``api/disconnect.py``): then the streams are cancelled and what was
produced so far is what is recorded (and, with billing, charged), with status ``cancelled``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from outrider.backends.base import ModelSpec, open_streams
from outrider.config import Settings
from outrider.core.capabilities import VISION, capability_missing, missing_capabilities
from outrider.core.errors import BackendError, InvalidRequest, OutriderError
from outrider.core.images import check_images
from outrider.core.messages import ChatMessage, GenerationChunk, GenerationParams, GenerationResult, GenerationStream
from outrider.core.usage import Usage
from outrider.services.billing import BillingService, Hold, prompt_token_bound
from outrider.services.catalog import ModelCatalog
from outrider.services.recording import CallContext, Recorder
from outrider.services.routing import AUTO_MODEL, RoutingOptions, RoutingService

log = logging.getLogger(__name__)

MAX_CHOICES = 8
MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class GenerationRequest:
    model_id: str
    messages: list[ChatMessage] | None = None  # chat: rendered with the model's chat template
    prompt: str | None = None  # raw completion prompt
    params: GenerationParams = field(default_factory=GenerationParams)
    n: int = 1
    routing: RoutingOptions | None = None  # with model "auto": overrides of the key's pool and mode
    # What the model must be able to do (core/capabilities.py), computed by the surface's conversion.
    required_capabilities: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GenerationOutcome:
    inference_id: str | None
    model_id: str
    model_used: str
    results: list[GenerationResult]
    latency_ms: float
    usage: Usage
    routing: dict | None = None  # the routing decision's event, for model "auto"

    @property
    def result(self) -> GenerationResult:
        return self.results[0]


def check_params(request: GenerationRequest, settings: Settings) -> None:
    """Surface-neutral parameter checks; each error names the offending field."""
    p = request.params
    if request.messages is not None:
        if not request.messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        if request.messages[-1].role != "user":
            raise InvalidRequest("messages: the last message must come from the user", param="messages")
        check_images(request.messages, settings.max_images_per_request, settings.max_image_bytes)
    elif not request.prompt:
        raise InvalidRequest("prompt must not be empty", param="prompt")
    if not 1 <= p.max_tokens <= settings.max_new_tokens_limit:
        raise InvalidRequest(f"max_tokens must be between 1 and {settings.max_new_tokens_limit}", param="max_tokens")
    if not 0.0 <= p.temperature <= 2.0:
        raise InvalidRequest("temperature must be between 0 and 2", param="temperature")
    if not 0.0 < p.top_p <= 1.0:
        raise InvalidRequest("top_p must be in (0, 1]", param="top_p")
    if not 1 <= request.n <= MAX_CHOICES:
        raise InvalidRequest(f"n must be between 1 and {MAX_CHOICES}", param="n")
    if not 0 <= p.top_logprobs <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}", param="top_logprobs")
    if len(p.stop) > 4 or any(not s for s in p.stop):
        raise InvalidRequest("stop takes at most 4 non-empty strings", param="stop")


class ActiveGeneration:
    """n running streams of one call, merged; records the call when they end."""

    def __init__(
        self,
        recorder: Recorder,
        ctx: CallContext,
        spec: ModelSpec,
        request: GenerationRequest,
        streams: list[GenerationStream],
        hold: Hold | None = None,
    ) -> None:
        self.recorder = recorder
        self.hold = hold
        self.routing = None  # the RoutingDecision when the caller asked for model "auto"
        self.observer: Callable[[str, float], None] | None = None  # told each finished call's latency
        self.ctx = ctx
        self.spec = spec
        self.request = request
        self.streams = streams
        self.started = time.perf_counter()
        self.inference_id: str | None = None
        self.results: list[GenerationResult] = []
        self._finished = False

    @property
    def prompt_tokens(self) -> int:
        """Known before the first token for local models (0 when a backend cannot tell yet)."""
        return int(getattr(self.streams[0], "prompt_tokens", 0) or 0)

    @property
    def early_usage(self) -> Usage:
        """The prompt's usage as far as it is known before the first token (an Anthropic upstream reports its
        cache reads and writes then; others report them at the end, in ``usage``). No cost: not final."""
        stream = self.streams[0]
        read = int(getattr(stream, "cache_read_tokens", 0) or 0)
        write = int(getattr(stream, "cache_write_tokens", 0) or 0)
        return Usage(self.prompt_tokens, 0, 0, read, write)

    @property
    def usage(self) -> Usage:
        # The prompt is processed once per choice but billed once, as OpenAI does for n > 1.
        first = self.results[0] if self.results else None
        prompt = first.prompt_tokens if first else 0
        read, write = (first.cache_read_tokens, first.cache_write_tokens) if first else (0, 0)
        completion = sum(r.completion_tokens for r in self.results)
        cost = self.spec.price.cost_micro_usd(prompt, completion, read, write)
        if self.hold is not None:
            # Only an upstream counting more prompt tokens than bytes could exceed the reservation: the
            # reservation is what the caller agreed to pay, so that is the most charged and reported.
            cost = min(cost, self.hold.amount)
        return Usage(prompt, completion, cost, read, write)

    async def chunks(self) -> AsyncIterator[tuple[int, GenerationChunk]]:
        """(choice index, chunk) pairs as they are produced. Closing the iterator early cancels generation."""
        completed = False
        try:
            if len(self.streams) == 1:
                async for chunk in self.streams[0]:
                    yield 0, chunk
            else:
                async for pair in self._merged():
                    yield pair
            completed = True
        except OutriderError as exc:
            await self._fail(exc)
            raise
        except Exception as exc:
            log.exception("generation with %s failed", self.spec.id)
            error = BackendError(f"model '{self.spec.id}' failed during generation: {type(exc).__name__}")
            await self._fail(error)
            raise error from exc
        finally:
            if not completed:
                self.cancel()  # no-op after a failure; otherwise the client went away
        await self._finish()

    async def _fail(self, error: OutriderError) -> None:
        self._finished = True
        for stream in self.streams:
            stream.cancel()
        await self.recorder.record_failure(
            self.ctx, self.spec, "generate", self._record_input(), self._latency_ms(), error, hold=self.hold
        )

    async def _merged(self) -> AsyncIterator[tuple[int, GenerationChunk]]:
        queue: asyncio.Queue[tuple[int, GenerationChunk | BaseException | None]] = asyncio.Queue()

        async def pump(index: int, stream: GenerationStream) -> None:
            try:
                async for chunk in stream:
                    queue.put_nowait((index, chunk))
                queue.put_nowait((index, None))
            except BaseException as exc:  # handed to the consumer, which re-raises it
                queue.put_nowait((index, exc))

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(self.streams)]
        try:
            remaining = len(tasks)
            while remaining:
                index, item = await queue.get()
                if item is None:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield index, item
        finally:
            for task in tasks:
                task.cancel()

    async def collect(self) -> GenerationOutcome:
        async for _ in self.chunks():
            pass
        return self.outcome()

    def outcome(self) -> GenerationOutcome:
        return GenerationOutcome(
            self.inference_id,
            self.ctx.model_id,
            self.spec.id,
            self.results,
            self._latency_ms(),
            self.usage,
            self.routing.to_event() if self.routing is not None else None,
        )

    def cancel(self) -> None:
        """The client went away: stop the streams, then record what they produced (without awaiting here:
        the caller may itself be a cancelled task)."""
        for stream in self.streams:
            stream.cancel()
        if not self._finished:
            self._finished = True
            self.recorder.track(self._record_cancelled())

    async def _record_cancelled(self) -> None:
        results = []
        for stream in self.streams:
            try:
                results.append(await asyncio.wait_for(stream.wait_result(), timeout=60))
            except Exception:  # never produced a result: nothing was generated for it
                results.append(
                    GenerationResult(text="", finish_reason="cancelled", prompt_tokens=0, completion_tokens=0)
                )
        self.results = results
        await self._record(status="cancelled")

    async def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.results = [s.result for s in self.streams]
        self.inference_id = await self._record()
        if self.observer is not None:
            self.observer(self.spec.id, self._latency_ms())

    async def _record(self, status: str | None = None) -> str | None:
        return await self.recorder.record(
            self.ctx,
            self.spec,
            "generate",
            self._record_input(),
            self._record_output(),
            self._latency_ms(),
            self.usage,
            status=status,
            hold=self.hold,
        )

    def _latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def _record_input(self) -> dict[str, Any]:
        p = self.request.params
        out: dict[str, Any] = {"max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p}
        if self.request.messages is not None:
            out["messages"] = [_recorded_message(m) for m in self.request.messages]
        else:
            out["prompt"] = self.request.prompt
        if self.request.n > 1:
            out["n"] = self.request.n
        if p.stop:
            out["stop"] = list(p.stop)
        if p.json_schema is not None or p.json_mode:
            out["response_format"] = p.json_schema or "json_object"
        return out

    def _record_output(self) -> dict[str, Any]:
        choices = [{"completion": r.text, "finish_reason": r.finish_reason} for r in self.results]
        return choices[0] if len(choices) == 1 else {"choices": choices}


def _recorded_message(message: ChatMessage) -> dict[str, Any]:
    """A message as history keeps it: images by URL, or by media type and size (never their bytes)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        out["images"] = [
            {"url": i.url} if i.url is not None else {"media_type": i.media_type, "bytes": i.byte_size}
            for i in message.images
        ]
    return out


class GenerationService:
    def __init__(
        self,
        settings: Settings,
        catalog: ModelCatalog,
        recorder: Recorder,
        billing: BillingService,
        routing: RoutingService,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.recorder = recorder
        self.billing = billing
        self.routing = routing  # model "auto": decide, then fall back along the ranking; observes every call

    async def start(self, ctx: CallContext, request: GenerationRequest) -> ActiveGeneration:
        check_params(request, self.settings)
        if request.model_id == AUTO_MODEL:
            return await self._start_routed(ctx, request)
        if request.routing is not None:
            raise InvalidRequest("'routing' applies only to model \"auto\"", param="routing")
        active = await self._start_model(ctx, request)
        active.observer = self.routing.observe
        return active

    async def _start_routed(self, ctx: CallContext, request: GenerationRequest) -> ActiveGeneration:
        """Decide, then try the ranked models in order: a model that fails before its first token (5xx,
        timeout, unavailable) hands the call to the next-best, at most ``routing_max_attempts`` times."""
        messages = request.messages if request.messages is not None else [ChatMessage("user", request.prompt or "")]
        # The pool's models are resolved (and checked against the caller) once, here: each attempt starts
        # on its spec instead of resolving the id again.
        decision, specs = await self.routing.decide(
            ctx, messages, request.routing, request.params.max_tokens, request.required_capabilities
        )
        failures: list[str] = []
        for model_id in [decision.model, *decision.fallbacks][: self.settings.routing_max_attempts]:
            chosen = replace(decision, model=model_id)
            attempt_ctx = replace(ctx, routing={**chosen.to_record(), "fallback_from": failures or None})
            try:
                attempt = replace(request, model_id=model_id, routing=None)
                active = await self._start_spec(attempt_ctx, attempt, specs[model_id])
            except OutriderError as exc:
                if exc.status_code < 500:
                    raise
                log.warning("routed model %s failed before its first token: %s", model_id, exc.message)
                failures.append(f"{model_id}: {exc.message}")
                continue
            active.routing = chosen
            active.observer = self.routing.observe
            return active
        raise BackendError(f"every model tried for model 'auto' failed: {'; '.join(failures)}", param="model")

    async def _start_model(self, ctx: CallContext, request: GenerationRequest) -> ActiveGeneration:
        spec = await self.catalog.for_call(ctx.principal, request.model_id, "decoder", param="model")
        # A named model is refused what it cannot see (400 naming it) rather than sent images it would drop.
        # Tools are left to the tool-calling path, which knows how each model calls them.
        missing = missing_capabilities(spec.capabilities, request.required_capabilities & {VISION})
        if missing:
            raise capability_missing(spec.id, spec.capabilities, missing)
        return await self._start_spec(ctx, request, spec)

    async def _start_spec(self, ctx: CallContext, request: GenerationRequest, spec: ModelSpec) -> ActiveGeneration:
        """Reserve, load and open ``n`` streams on a resolved model."""
        started = time.perf_counter()
        # Reserve the most this call can cost before any token is produced (402 when it cannot be covered).
        hold = await self.billing.reserve(
            ctx.principal,
            spec.price,
            prompt_token_bound(request.messages, request.prompt),
            request.params.max_tokens * request.n,
        )
        streams: list[GenerationStream] = []
        try:
            loaded = await self.catalog.load(spec)
            prompt = request.messages if request.messages is not None else request.prompt
            streams = [loaded.model.start(prompt, request.params) for _ in range(request.n)]
            # Upstream streams send their request here: a failure before the first token becomes this
            # call's error status instead of an error inside an already-started stream.
            await open_streams(streams)
        except OutriderError as exc:
            if exc.status_code >= 500:
                await self.recorder.record_failure(
                    ctx,
                    spec,
                    "generate",
                    {"model": request.model_id},
                    (time.perf_counter() - started) * 1000,
                    exc,
                    hold=hold,
                )
            await self.billing.release(hold)
            raise
        except Exception as exc:
            log.exception("starting generation with %s failed", spec.id)
            await self.billing.release(hold)
            raise BackendError(f"model '{spec.id}' failed to start generating: {type(exc).__name__}") from exc
        except BaseException:  # the client went away while the model loaded or the upstream was opened
            if streams:
                # Requests were sent (an upstream may already bill them): stop them and record the call
                # ``cancelled`` with what they cost, as when a client leaves once generation has started.
                ActiveGeneration(self.recorder, ctx, spec, request, streams, hold).cancel()
            else:
                self.recorder.track(self.billing.release(hold))
            raise
        return ActiveGeneration(self.recorder, ctx, spec, request, streams, hold)

    async def run(self, ctx: CallContext, request: GenerationRequest) -> ActiveGeneration:
        """Start and collect, for an answer sent whole. Cancelling the caller's task (its client went away)
        stops the generation: the call is recorded ``cancelled`` and charged for what was produced."""
        active = await self.start(ctx, request)
        await active.collect()
        return active

    async def generate(self, ctx: CallContext, request: GenerationRequest) -> GenerationOutcome:
        return (await self.run(ctx, request)).outcome()
