"""Embedding models of OpenAI-compatible upstreams: ``POST {base_url}/embeddings`` behind ``EmbeddingModel``.

Vectors are asked for as floats (every OpenAI-compatible server supports them; base64 is not universal) and
accepted in either form. ``dimensions`` is passed on when the caller sent it; the upstream decides whether it can
honour it (a refusal is its 400, answered as a 422 with the upstream's message). Errors map as for generation
(``upstream_stream.py``) and feed the model's circuit breaker.
"""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any

import numpy as np

from outrider.backends.upstream_client import TRANSPORT_ERRORS
from outrider.backends.upstream_endpoint import UpstreamEndpoint
from outrider.backends.upstream_stream import (
    UpstreamCall,
    counts_against_health,
    estimated_tokens,
    parse_json,
    status_error,
    transport_error,
)
from outrider.core.embeddings import EmbeddingRequest, EmbeddingResult
from outrider.core.errors import OutriderError, UpstreamError


class UpstreamEmbeddingModel(UpstreamEndpoint):
    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        if not self.monitor.is_available():
            raise UpstreamError(self.monitor.unavailable_reason(), code="upstream_unavailable")
        body: dict[str, Any] = {"model": self.config.model, "input": list(request.texts), "encoding_format": "float"}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        call = UpstreamCall(
            client=self.client,
            url=self.provider.base_url + "/embeddings",
            body=body,
            model_id=self.model_id,
            provider=self.provider.name,
            monitor=self.monitor,
            prompt_chars=sum(len(text) for text in request.texts),
            whole=True,
        )
        try:
            content = await self._post(call)
            result = parse_embeddings(call, parse_json(call, content.decode("utf-8", "replace")), len(request.texts))
        except OutriderError as exc:
            if counts_against_health(exc):
                self.monitor.report_failure(exc.message)
            raise
        self.monitor.report_success()
        return result

    async def _post(self, call: UpstreamCall) -> bytes:
        try:
            response = await call.client.post(call.url, call.body)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(call, exc) from exc
        try:
            content = await response.read()
        except TRANSPORT_ERRORS as exc:
            response.close()
            raise transport_error(call, exc) from exc
        except asyncio.CancelledError:  # the caller went away: drop the connection, not back to the pool
            response.close()
            raise
        response.release()
        if response.status >= 400:
            raise status_error(call, response.status, content, response.headers.get("retry-after"))
        return content


def parse_embeddings(call: UpstreamCall, payload: dict[str, Any], expected: int) -> EmbeddingResult:
    """OpenAI's list of ``{"index", "embedding"}`` (floats or base64 float32), in input order, and its usage."""
    where = f"upstream '{call.provider}' for model '{call.model_id}'"
    if "error" in payload:
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamError(f"{where} failed: {message}")
    items = payload.get("data")
    if not isinstance(items, list) or len(items) != expected:
        got = len(items) if isinstance(items, list) else "no"
        raise UpstreamError(f"{where} answered {got} embeddings for {expected} inputs")
    vectors: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < expected or vectors[index] is not None:
            raise UpstreamError(f"{where} answered an embedding list with missing or repeated indexes")
        vectors[index] = _vector(where, item.get("embedding"))
    sizes = {len(v) for v in vectors if v is not None}
    if len(sizes) != 1 or 0 in sizes:
        raise UpstreamError(f"{where} answered vectors of sizes {sorted(sizes)}")
    usage = payload.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or tokens < 0:
        tokens = estimated_tokens(call.prompt_chars)
    return EmbeddingResult([v for v in vectors if v is not None], tokens)


def _vector(where: str, raw: object) -> list[float]:
    if isinstance(raw, str):
        try:
            values = np.frombuffer(base64.b64decode(raw, validate=True), dtype="<f4").tolist()
        except ValueError as exc:
            raise UpstreamError(f"{where} answered an embedding that is not base64 float32") from exc
    elif isinstance(raw, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
        values = [float(x) for x in raw]
    else:
        raise UpstreamError(f"{where} answered an embedding that is not a list of numbers")
    if not all(math.isfinite(x) for x in values):
        raise UpstreamError(f"{where} answered an embedding with non-finite values")
    return values
