"""Calling an upstream provider: the HTTP call, its Server-Sent Events or JSON body, and its errors.

A streaming caller's generation is requested with ``stream: true``: tokens reach the client as the
upstream produces them, and a client that goes away closes the upstream connection (which stops
generation there). A caller that wants only the whole answer (``GenerationParams.stream`` false: a
non-streaming client, the synthesis teacher) gets a non-streamed request (``UpstreamCall.whole``): one
JSON body, parsed once, whose usage every OpenAI-compatible server reports (some leave it out of streams,
where it would be estimated). Both kinds are read through the same ``GenerationStream`` interface.

Errors become domain errors here, in one place:

    connection refused / DNS / reset       UpstreamError upstream_unreachable (502)
    no byte within the timeout             UpstreamError upstream_timeout (502)
    5xx, other 4xx, a broken stream        UpstreamError upstream_error (502)
    401 / 403                              UpstreamError upstream_auth_error (502: our key, not the caller's)
    404                                    ModelNotFound (404)
    400 / 422                              InvalidRequest (422), with the upstream's message
    413                                    PayloadTooLarge (413)
    429                                    RateLimited upstream_rate_limited (429, the upstream's Retry-After)

Failures that say the upstream cannot serve (unreachable, timeout, 5xx, auth, 404) feed the model's
circuit breaker; a stream that completes counts as a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from outrider.backends.upstream_client import TRANSPORT_ERRORS, ProviderClient, is_timeout, is_unreachable
from outrider.backends.upstream_health import UpstreamMonitor
from outrider.core.errors import (
    InvalidRequest,
    ModelNotFound,
    OutriderError,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
)
from outrider.core.ids import new_id
from outrider.core.messages import FinishReason, GenerationChunk, GenerationResult, TokenLogprob, ToolCall

log = logging.getLogger(__name__)

_BACKGROUND: set[asyncio.Task] = set()  # closes scheduled by cancel(); referenced until done
_ESTIMATED_CHARS_PER_TOKEN = 4


def estimated_tokens(chars: int) -> int:
    """Tokens of ``chars`` characters, for upstreams that report no usage (about four characters a token)."""
    return -(-chars // _ESTIMATED_CHARS_PER_TOKEN)


@dataclass(frozen=True)
class UpstreamCall:
    """One request to send: where, with what, and whose breaker it feeds."""

    client: ProviderClient
    url: str
    body: dict[str, Any]
    model_id: str  # the id Outrider exposes, used in messages
    provider: str
    monitor: UpstreamMonitor
    prompt_chars: int  # to estimate usage when an upstream reports none
    whole: bool = False  # a non-streamed request: the answer comes as one JSON body


def counts_against_health(error: OutriderError) -> bool:
    """Whether an error says the upstream cannot serve this model (not that this request was bad)."""
    return isinstance(error, UpstreamError | ModelNotFound)


def error_message(body: bytes) -> str:
    """The human message inside an error body in any of the usual envelopes."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if data.get("detail"):
            return str(data["detail"])[:500]
        if data.get("message"):
            return str(data["message"])
    return json.dumps(data)[:500]


def status_error(call: UpstreamCall, status: int, body: bytes, retry_after: str | None) -> OutriderError:
    message = error_message(body) or f"HTTP {status}"
    where = f"upstream '{call.provider}' answered {status} for model '{call.model_id}'"
    if status in (400, 422):
        return InvalidRequest(f"{where}: {message}")
    if status in (401, 403):
        return UpstreamError(
            f"{where}: it refused Outrider's credentials ({message}); check the provider's api_key_env",
            code="upstream_auth_error",
        )
    if status == 404:
        return ModelNotFound(f"{where}: {message}")
    if status == 413:
        return PayloadTooLarge(f"{where}: {message}")
    if status == 429:
        try:
            seconds = max(1, round(float(retry_after or 1)))
        except ValueError:
            seconds = 1
        limited = RateLimited(f"{where}: rate limited ({message})", retry_after=seconds)
        limited.code = "upstream_rate_limited"
        return limited
    return UpstreamError(f"{where}: {message}")


def transport_error(call: UpstreamCall, exc: BaseException) -> UpstreamError:
    where = f"upstream '{call.provider}' for model '{call.model_id}'"
    if is_timeout(exc):
        return UpstreamError(f"{where} did not answer in time ({type(exc).__name__})", code="upstream_timeout")
    if is_unreachable(exc):
        return UpstreamError(f"{where} is unreachable: {exc or type(exc).__name__}", code="upstream_unreachable")
    return UpstreamError(f"{where} failed: {type(exc).__name__}: {exc}")


async def server_sent_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body; multi-line data is joined with newlines."""
    event: str | None = None
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
        # comments (":") and other fields (id, retry) carry nothing for us
    if data:
        yield event, "\n".join(data)


class UpstreamStream(ABC):
    """One upstream generation, read as the upstream streams it; implements ``GenerationStream``.

    Subclasses translate their provider's events: ``_handle`` turns one event into chunks and records
    usage and the finish reason on the stream; ``_done`` says whether the final event has arrived."""

    def __init__(self, call: UpstreamCall) -> None:
        self.call = call
        self.prompt_tokens = 0  # known at once from Anthropic upstreams, at the end from OpenAI ones
        self.completion_tokens: int | None = None
        self.cache_read_tokens = 0  # of prompt_tokens, as the upstream reports them
        self.cache_write_tokens = 0
        self.finish_reason: FinishReason | None = None
        self.stop_sequence: str | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._events: AsyncIterator[tuple[str | None, str]] | None = None
        self._opening: asyncio.Future[None] | None = None
        self._text: list[str] = []
        self._logprobs: list[TokenLogprob] = []
        self._chunks = 0
        self._calls: dict[int, list[Any]] = {}  # tool-call index -> [id, name, argument pieces]
        self._usage_reported = False
        self._whole_chunks: list[GenerationChunk] = []  # a non-streamed answer, read at opening
        self._result: GenerationResult | None = None
        self._error: OutriderError | None = None
        self._cancelled = False
        self._iterated = False

    # -- provider-specific ---------------------------------------------------------------------------------
    @abstractmethod
    def _handle(self, event: str | None, data: str) -> Iterable[GenerationChunk]:
        """Translate one event; raise an ``OutriderError`` for an error event."""

    @abstractmethod
    def _done(self) -> bool:
        """True once the upstream's final event arrived."""

    def _handle_whole(self, payload: dict[str, Any]) -> Iterable[GenerationChunk]:
        """Translate a non-streamed answer (recording usage and the finish reason; ``_done`` is then true)."""
        raise NotImplementedError

    async def _after_open(self) -> None:
        """Read what the upstream sends before any token (Anthropic's message_start), if anything."""
        return None

    # -- opening ------------------------------------------------------------------------------------------
    async def opened(self) -> None:
        """Send the request and wait for the upstream's answer status (idempotent). Failures before the first
        token are raised here, so the caller can answer with an error status or try another model."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
            # Read by whoever awaits it; when that caller was cancelled meanwhile, nobody would.
            self._opening.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        call = self.call
        if self._cancelled:
            return
        try:
            response = await call.client.post(call.url, call.body)
        except TRANSPORT_ERRORS as exc:
            self._fail(transport_error(call, exc))
        if response.status >= 400:
            try:
                body = await response.read()
            except TRANSPORT_ERRORS:
                body = b""
            finally:
                response.release()
            self._fail(status_error(call, response.status, body, response.headers.get("retry-after")))
        if call.whole:
            await self._read_whole(response)
            return
        self._response = response
        self._events = server_sent_events(response)
        if self._cancelled:  # cancelled while the request was in flight
            await self._close()
            return
        try:
            await self._after_open()
        except TRANSPORT_ERRORS as exc:
            await self._close()
            self._fail(transport_error(call, exc))
        except OutriderError as exc:
            await self._close()
            self._fail(exc)

    async def _read_whole(self, response: aiohttp.ClientResponse) -> None:
        call = self.call
        try:
            content = await response.read()
        except TRANSPORT_ERRORS as exc:
            response.close()
            self._fail(transport_error(call, exc))
        except asyncio.CancelledError:  # cancel(): closing the connection is what stops the upstream
            response.close()
            raise
        response.release()  # read to its end: the connection goes back to the pool
        if self._cancelled:
            return
        try:
            self._whole_chunks = list(self._handle_whole(parse_json(call, content.decode("utf-8", "replace"))))
        except OutriderError as exc:
            self._fail(exc)

    def _fail(self, error: OutriderError) -> None:
        """Record the error (feeding the breaker when it says the upstream cannot serve) and raise it."""
        if self._error is None:
            self._error = error
            if counts_against_health(error):
                self.call.monitor.report_failure(error.message)
        raise error

    async def _next_event(self) -> tuple[str | None, str] | None:
        assert self._events is not None
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            return None

    # -- reading ------------------------------------------------------------------------------------------
    async def __aiter__(self) -> AsyncIterator[GenerationChunk]:
        if self._iterated:
            raise RuntimeError("an upstream stream can be iterated only once")
        self._iterated = True
        finished = False
        try:
            await self.opened()
            whole, self._whole_chunks = self._whole_chunks, []
            for chunk in whole:  # a non-streamed answer: already complete
                yield self._take(chunk)
            while not self._cancelled and not self._done():
                try:
                    item = await self._next_event()
                except Exception as exc:
                    if self._cancelled:  # cancel() closed the connection under the reader
                        break
                    if isinstance(exc, TRANSPORT_ERRORS):
                        self._fail(transport_error(self.call, exc))
                    self._fail(UpstreamError(f"reading upstream '{self.call.provider}' failed: {type(exc).__name__}"))
                if item is None:
                    if self._cancelled:
                        break
                    self._fail(
                        UpstreamError(
                            f"upstream '{self.call.provider}' closed the stream for model "
                            f"'{self.call.model_id}' before it finished"
                        )
                    )
                for chunk in self._handle(*item):
                    yield self._take(chunk)
            if self._done():
                self._result = self._build_result(self.finish_reason or "stop")
                self.call.monitor.report_success()
                await self._drain()
            else:
                self._result = self._build_result("cancelled")
            finished = True
        except OutriderError as exc:
            if self._error is None:  # an error event inside the stream
                self._error = exc
                if counts_against_health(exc):
                    self.call.monitor.report_failure(exc.message)
            raise
        finally:
            if not finished and self._error is None:  # the consumer stopped early: stop the upstream too
                self._cancelled = True
            await self._close()

    def _take(self, chunk: GenerationChunk) -> GenerationChunk:
        """Account for a chunk; a tool call whose first piece came without an id gets one here."""
        self._chunks += 1
        self._text.append(chunk.text)
        self._logprobs.extend(chunk.logprobs)
        if not chunk.tool_calls:
            return chunk
        pieces = []
        for piece in chunk.tool_calls:
            call = self._calls.get(piece.index)
            if call is None:
                piece = replace(piece, id=piece.id or new_id("call"))
                call = self._calls[piece.index] = [piece.id, piece.name or "", []]
            elif piece.name and not call[1]:
                call[1] = piece.name
            call[2].append(piece.arguments)
            pieces.append(piece)
        return replace(chunk, tool_calls=tuple(pieces))

    @property
    def result(self) -> GenerationResult:
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the stream has not finished; iterate it first")
        return self._result

    async def collect(self) -> GenerationResult:
        async for _ in self:
            pass
        return self.result

    async def wait_result(self) -> GenerationResult:
        """The final result; after ``cancel`` (or an early stop), what was produced until then."""
        if self._result is None and self._error is None:
            if not self._cancelled and not self._iterated:
                return await self.collect()
            self._cancelled = True
            await self._close()
            self._result = self._build_result("cancelled")
        return self.result

    def cancel(self) -> None:
        """Stop generating: the upstream connection is closed, which stops the upstream's generation."""
        if self._cancelled or self._result is not None or self._error is not None:
            return
        self._cancelled = True
        if self.call.whole and self._opening is not None and not self._opening.done():
            self._opening.cancel()  # aborts the request: the upstream sees the connection close
        if self._response is not None and not self._response.closed:
            task = asyncio.get_running_loop().create_task(self._close())
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    async def _drain(self) -> None:
        """Read what follows the final event (``[DONE]``, the body's end): a response read to its end goes
        back to the connection pool, while one closed early costs the next call a new TCP connection."""
        if self._events is None:
            return
        try:
            async with asyncio.timeout(1.0):
                async for _ in self._events:
                    pass
        except Exception:  # a server that keeps the stream open after its final event: just close it
            log.debug("draining the upstream stream failed", exc_info=True)

    async def _close(self) -> None:
        if self._events is not None:
            events, self._events = self._events, None
            with contextlib.suppress(Exception):  # already closed, or in use by a reader being cancelled
                await events.aclose()  # type: ignore[attr-defined]
        response = self._response
        if response is not None and not response.closed:
            # Read to its end (drained): back to the pool. Otherwise close the connection, which is what
            # stops an upstream that is still generating.
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    # -- the result ---------------------------------------------------------------------------------------
    def _build_result(self, reason: FinishReason) -> GenerationResult:
        text = "".join(self._text)
        prompt, completion, extra = self.prompt_tokens, self.completion_tokens, {}
        if reason == "cancelled" or not self._usage_reported or completion is None:
            # No final usage from the upstream (cancelled early, or a server that does not report usage in
            # streams): about one token per streamed chunk (a whole answer: from its length), the prompt from
            # its length. Marked as estimated.
            chars = len(text) + sum(len(name) + sum(map(len, pieces)) for _, name, pieces in self._calls.values())
            produced = estimated_tokens(chars) if self.call.whole else self._chunks
            completion = max(completion or 0, produced)
            if not prompt:
                prompt = estimated_tokens(self.call.prompt_chars)
            extra = {"usage_estimated": True}
        calls = tuple(ToolCall(i, name, "".join(pieces)) for _, (i, name, pieces) in sorted(self._calls.items()))
        if calls and reason == "stop":  # some servers end a call with "stop" (e.g. a named tool_choice)
            reason = "tool_calls"
        return GenerationResult(
            text=text,
            finish_reason=reason,
            prompt_tokens=prompt,
            completion_tokens=completion,
            stop_sequence=self.stop_sequence if reason == "stop_sequence" else None,
            logprobs=tuple(self._logprobs),
            extra=extra,
            cache_read_tokens=min(self.cache_read_tokens, prompt),
            cache_write_tokens=min(self.cache_write_tokens, max(prompt - self.cache_read_tokens, 0)),
            tool_calls=calls,
        )

    def _usage(
        self,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> None:
        """Record usage the upstream reported (fields it leaves out keep their earlier value). Cache reads and
        writes are counted within ``prompt_tokens``."""
        if prompt_tokens is not None:
            self.prompt_tokens = token_count(prompt_tokens)
        if completion_tokens is not None:
            self.completion_tokens = token_count(completion_tokens)
        if cache_read_tokens is not None:
            self.cache_read_tokens = token_count(cache_read_tokens)
        if cache_write_tokens is not None:
            self.cache_write_tokens = token_count(cache_write_tokens)
        self._usage_reported = True


def token_count(value: object) -> int:
    """A token count as an upstream sent it: a non-negative integer, whatever it sent (junk counts as 0)."""
    try:
        return max(int(value), 0)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0


def parse_json(call: UpstreamCall, data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise UpstreamError(
            f"upstream '{call.provider}' sent an unreadable event for model '{call.model_id}': {data[:200]!r}"
        ) from exc
    if not isinstance(value, dict):
        raise UpstreamError(f"upstream '{call.provider}' sent an unexpected event: {data[:200]!r}")
    return value
