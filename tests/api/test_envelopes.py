"""Pins the error envelope of each surface for every domain error (mapped in one place: api/errors.py), in a
response and as the last event of a stream that fails after its 200."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from outrider.api.anthropic.streaming import message_stream
from outrider.api.errors import envelope, responses_stream_error, stream_error, surface_of
from outrider.api.openai.streaming import DONE, chat_stream, responses_stream
from outrider.core import errors
from outrider.core.messages import ChatMessage
from outrider.core.usage import Usage
from outrider.services.generation import GenerationRequest

CASES = [
    (errors.InvalidRequest, 422, "invalid_request_error", "invalid_request_error"),
    (errors.InvalidSchema, 422, "invalid_request_error", "invalid_request_error"),
    (errors.AuthenticationFailed, 401, "authentication_error", "authentication_error"),
    (errors.SessionInvalid, 401, "authentication_error", "authentication_error"),
    (errors.PermissionDenied, 403, "permission_error", "permission_error"),
    (errors.CsrfRefused, 403, "permission_error", "permission_error"),
    (errors.NotFound, 404, "not_found_error", "not_found_error"),
    (errors.ModelNotFound, 404, "not_found_error", "not_found_error"),
    (errors.Conflict, 409, "invalid_request_error", "invalid_request_error"),
    (errors.PayloadTooLarge, 413, "invalid_request_error", "request_too_large"),
    (errors.InsufficientCredits, 402, "insufficient_quota", "billing_error"),
    (errors.RateLimited, 429, "rate_limit_error", "rate_limit_error"),
    (errors.BackendError, 502, "api_error", "api_error"),
    (errors.UpstreamError, 502, "api_error", "api_error"),
    (errors.ModelUnavailable, 503, "api_error", "overloaded_error"),
]


@pytest.mark.parametrize(("cls", "status", "openai_type", "anthropic_type"), CASES)
def test_each_domain_error_has_its_status_and_envelopes(cls, status, openai_type, anthropic_type):
    error = cls("something went wrong") if cls is not errors.RateLimited else cls("slow down", retry_after=3)
    error.param = "field"
    assert error.status_code == status
    assert envelope("native", status, error.message, code=error.code, param=error.param) == {
        "detail": "something went wrong" if cls is not errors.RateLimited else "slow down"
    }
    openai = envelope("openai", status, error.message, code=error.code, param=error.param)
    assert openai == {"error": {"message": error.message, "type": openai_type, "param": "field", "code": error.code}}
    anthropic = envelope("anthropic", status, error.message, code=error.code, param=error.param)
    assert anthropic == {"type": "error", "error": {"type": anthropic_type, "message": error.message}}


def test_the_surface_is_chosen_by_path():
    assert surface_of("/v1/messages") == "anthropic"
    assert surface_of("/v1/chat/completions") == surface_of("/v1/models/x") == "openai"
    assert surface_of("/inference") == surface_of("/inferences/inf_1") == "native"


def test_a_400_is_the_clients_error_on_the_compatible_surfaces():
    assert envelope("openai", 400, "bad body", code=None, param=None)["error"]["type"] == "invalid_request_error"
    assert envelope("anthropic", 400, "bad body", code=None, param=None)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("cls", "status", "openai_type", "anthropic_type"), CASES)
def test_a_stream_error_has_the_same_envelope_as_a_response(cls, status, openai_type, anthropic_type):
    error = cls("failed mid-stream") if cls is not errors.RateLimited else cls("failed mid-stream", retry_after=3)
    for surface in ("openai", "anthropic"):
        assert stream_error(surface, error) == envelope(surface, status, error.message, code=error.code, param=None)
    assert responses_stream_error(error) == {"code": error.code, "message": "failed mid-stream", "param": None}


class FailingGeneration:
    """Stands in for an ActiveGeneration whose upstream fails after the stream started."""

    routing = None
    streams = (object(),)
    prompt_tokens = 3
    early_usage = Usage(3, 0)

    def __init__(self, error: errors.OutriderError) -> None:
        self.error = error
        self.request = GenerationRequest(model_id="m", messages=[ChatMessage("user", "hi")])

    async def chunks(self) -> AsyncIterator[tuple[int, object]]:
        raise self.error
        yield  # an async generator that fails on its first step


def events(stream: AsyncIterator[str]) -> list[str]:
    async def collect() -> list[str]:
        return [event async for event in stream]

    return asyncio.run(collect())


def test_a_failed_responses_stream_ends_with_one_error_event():
    error = errors.UpstreamError("the upstream timed out after 5 s", code="upstream_timeout")
    sent = events(responses_stream(FailingGeneration(error), "m"))
    last = sent[-1]
    assert last.startswith("event: error\n")
    body = json.loads(last.split("data: ", 1)[1])
    assert body == {
        "type": "error",
        "sequence_number": len(sent),
        "code": "upstream_timeout",
        "message": "the upstream timed out after 5 s",
        "param": None,
    }
    assert [json.loads(e.split("data: ", 1)[1])["type"] for e in sent[:-1]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]


def test_failed_chat_and_anthropic_streams_end_with_the_surfaces_envelope():
    error = errors.UpstreamError("the upstream answered 500")
    chat = events(chat_stream(FailingGeneration(error), "m", include_usage=False, want_logprobs=False))
    assert chat[-1] == DONE
    assert json.loads(chat[-2][len("data: ") :]) == {
        "error": {"message": "the upstream answered 500", "type": "api_error", "param": None, "code": "upstream_error"}
    }
    anthropic = events(message_stream(FailingGeneration(error), "msg_1", "m"))
    assert anthropic[-1].startswith("event: error\n")
    assert json.loads(anthropic[-1].split("data: ", 1)[1]) == {
        "type": "error",
        "error": {"type": "api_error", "message": "the upstream answered 500"},
    }
