"""Schemathesis over every operation of ``/openapi.json``, as a non-admin account: no 5xx, errors in their envelope.

Cases come from the OpenAPI document both ways: bodies and parameters that fit it (positive) and ones that break
it (negative: wrong types, missing fields, out-of-range numbers). Each operation is a test of its own.

The server under fuzz is one of its own so that what the fuzzer creates (keys, datasets, queued jobs) never
reaches the shared test server. Its worker is off (queued jobs would train and generate for real, for minutes)
and local decoders stop after a few tokens, so that every case costs milliseconds. The run is derandomized:
the same cases every time, so a red run reproduces; the whole module takes a few minutes.

schemathesis' own pytest plugin (``@schema.parametrize``) is not used: its lazy loader does not run on pytest 9.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from outrider.api.app import create_app
from outrider.api.errors import surface_of
from outrider.config import build_settings
from tests.conftest import GENEROUS_LIMITS, PRICES, RunningServer, make_settings, new_account, start_server

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 12


def openapi_document() -> dict:
    """The served document, built without starting a server (the app's routes make it)."""
    with TemporaryDirectory() as data_dir:
        return create_app(build_settings(data_dir=Path(data_dir))).openapi()


SCHEMA = schemathesis.openapi.from_dict(openapi_document())
OPERATIONS = {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, base_models_dir, demo_model_dir) -> Iterator[RunningServer]:
    settings_ = make_settings(
        tmp_path_factory.mktemp("fuzz-data"),
        base_models_dir,
        model_dirs=[demo_model_dir],
        model_prices=PRICES,
        rate_limits=GENEROUS_LIMITS,
        embedded_worker=False,
        max_new_tokens_limit=4,
    )
    running = start_server(settings_)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fuzz_key(fuzz_server: RunningServer) -> str:
    with fuzz_server.client() as admin:
        return new_account(admin, "fuzzer", credit_usd=5.0)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def assert_enveloped(path: str, body: object) -> None:
    """An error body in the surface's own envelope (api/errors.py)."""
    assert isinstance(body, dict), body
    surface = surface_of(path)
    if surface == "openai":
        error = body.get("error")
        assert isinstance(error, dict) and isinstance(error.get("message"), str), body
        assert isinstance(error.get("type"), str), body
    elif surface == "anthropic":
        assert body.get("type") == "error" and isinstance(body.get("error"), dict), body
        assert isinstance(body["error"].get("type"), str) and isinstance(body["error"].get("message"), str), body
    else:
        assert set(body) == {"detail"} and isinstance(body["detail"], str | list), body


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_no_operation_answers_5xx_and_errors_keep_their_envelope(operation, fuzz_server, fuzz_key, session):
    strategy = OPERATIONS[operation].as_strategy(GenerationMode.POSITIVE) | OPERATIONS[operation].as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        response = case.call(base_url=fuzz_server.url, session=session, headers={"X-API-Key": fuzz_key}, timeout=120)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        assert response.status_code < 500, where
        if response.status_code >= 400:
            try:
                assert_enveloped(case.path, json.loads(response.content))
            except (AssertionError, ValueError) as exc:
                raise AssertionError(f"not in its surface's envelope: {where}") from exc

    check()
