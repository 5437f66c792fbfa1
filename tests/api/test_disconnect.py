"""A non-streamed call whose client gives up (issue #15, item 5): generation stops, the call is recorded
``cancelled`` with the tokens produced so far, and only those are charged.

Each surface is driven by its own client (the openai and anthropic SDKs, httpx for the native API) with a
1.5 s timeout on a generation that would run for minutes; the record is written only once the engine has
ended the row, so a record with few tokens, soon after the timeout, shows generation stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anthropic
import httpx
import openai
import pytest

from tests.conftest import PRICES, SMOL, RunningServer, new_account

MAX_TOKENS = 2000
GIVE_UP_S = 1.5
STORY = "Write a very long, detailed story about a dragon who learns to cook. Describe every dish."


def _openai(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{server.url}/v1", timeout=GIVE_UP_S, max_retries=0)


def chat(server: RunningServer, key: str) -> None:
    _openai(server, key).chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": STORY}], max_tokens=MAX_TOKENS, temperature=0
    )


def completion(server: RunningServer, key: str) -> None:
    _openai(server, key).completions.create(
        model=SMOL, prompt="Once upon a time, in a kitchen far away, a dragon", max_tokens=MAX_TOKENS, temperature=0
    )


def responses(server: RunningServer, key: str) -> None:
    _openai(server, key).responses.create(model=SMOL, input=STORY, max_output_tokens=MAX_TOKENS, temperature=0)


def messages(server: RunningServer, key: str) -> None:
    anthropic.Anthropic(api_key=key, base_url=server.url, timeout=GIVE_UP_S, max_retries=0).messages.create(
        model=SMOL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": STORY}]
    )


def native(server: RunningServer, key: str) -> None:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=GIVE_UP_S) as client:
        client.post(
            "/inference",
            json={
                "model_id": SMOL,
                "task": "generate",
                "messages": [{"role": "user", "content": STORY}],
                "max_tokens": MAX_TOKENS,
                "temperature": 0,
            },
        )


TIMEOUTS = (openai.APITimeoutError, anthropic.APITimeoutError, httpx.TimeoutException)


def wait_for(fetch: Callable[[], list[dict]], deadline_s: float = 30) -> list[dict]:
    deadline = time.time() + deadline_s
    while not (found := fetch()) and time.time() < deadline:
        time.sleep(0.1)
    return found


@pytest.mark.parametrize(
    ("surface", "call"),
    [("openai", chat), ("openai", completion), ("openai", responses), ("anthropic", messages), ("native", native)],
    ids=["chat-completions", "completions", "responses", "messages", "inference"],
)
def test_a_client_that_gives_up_stops_the_generation_and_pays_for_what_was_produced(server, admin, surface, call):
    # Loaded first, so the 1.5 s are spent generating (a disconnect while the model loads is cancelled too).
    warm = {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    assert admin.post("/v1/chat/completions", json=warm).status_code == 200
    key = new_account(admin, f"disconnect-{call.__name__}", credit_usd=1.0)
    client = server.client(key)

    started = time.time()
    with pytest.raises(TIMEOUTS):
        call(server, key)

    usage = wait_for(lambda: client.get("/usage").json()["data"])
    # Recorded once the engine ended the row: long before 2000 tokens (minutes on this CPU) were produced.
    assert time.time() - started < 30
    assert len(usage) == 1, usage
    record = usage[0]
    assert record["status"] == "cancelled" and record["surface"] == surface and record["model_id"] == SMOL
    assert 0 < record["completion_tokens"] < MAX_TOKENS // 4
    assert record["latency_ms"] < 15_000
    price_in, price_out = PRICES[SMOL]
    cost = round(record["prompt_tokens"] * price_in + record["completion_tokens"] * price_out)
    assert record["cost_micro_usd"] == cost > 0

    history = client.get("/inferences").json()["inferences"]
    assert [(r["status"], r["output"]["finish_reason"]) for r in history] == [("cancelled", "cancelled")]
    assert history[0]["usage"]["completion_tokens"] == record["completion_tokens"]

    # The charge is the partial cost, and the reservation for 2000 tokens is freed.
    credits = client.get("/credits").json()
    assert credits["reserved_micro_usd"] == 0
    assert credits["balance_micro_usd"] == 1_000_000 - cost
    charges = [t for t in client.get("/credits/transactions").json()["data"] if t["kind"] == "inference"]
    assert [-t["amount_micro_usd"] for t in charges] == [cost]

    # Nothing is left generating for the call: batches are static, so a next call would otherwise wait for
    # the abandoned row's 2000 tokens.
    before = time.time()
    patient = openai.OpenAI(api_key=key, base_url=f"{server.url}/v1", timeout=60, max_retries=0)
    again = patient.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0
    )
    assert again.usage.completion_tokens <= 4 and time.time() - before < 15
