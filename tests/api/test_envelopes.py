"""Pins the error envelope of each surface for every domain error (mapped in one place: api/errors.py)."""

import pytest

from outrider.api.errors import envelope, surface_of
from outrider.core import errors

CASES = [
    (errors.InvalidRequest, 422, "invalid_request_error", "invalid_request_error"),
    (errors.InvalidSchema, 422, "invalid_request_error", "invalid_request_error"),
    (errors.AuthenticationFailed, 401, "authentication_error", "authentication_error"),
    (errors.PermissionDenied, 403, "permission_error", "permission_error"),
    (errors.NotFound, 404, "not_found_error", "not_found_error"),
    (errors.ModelNotFound, 404, "not_found_error", "not_found_error"),
    (errors.Conflict, 409, "invalid_request_error", "invalid_request_error"),
    (errors.PayloadTooLarge, 413, "invalid_request_error", "request_too_large"),
    (errors.InsufficientCredits, 402, "insufficient_quota", "billing_error"),
    (errors.RateLimited, 429, "rate_limit_error", "rate_limit_error"),
    (errors.BackendError, 502, "api_error", "api_error"),
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
