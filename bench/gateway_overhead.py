"""Gateway overhead: latency Outrider adds in front of an upstream, and requests/s, next to LiteLLM's proxy.

    uv run python bench/gateway_overhead.py [--requests 400] [--concurrency 32] [--litellm PATH]

Starts, on loopback, a minimal OpenAI-compatible upstream (aiohttp, a fixed chat completion), Outrider
with that upstream declared in a providers file, and LiteLLM's proxy (``litellm[proxy]`` from PyPI,
``--litellm`` points at its ``litellm`` executable; install it in its own virtualenv) configured for the
same upstream. Each is driven with the same non-streaming chat requests: sequentially for latency
(p50/p99, and the added latency = gateway p50 - direct p50), then with N concurrent clients for requests/s.
Outrider runs as deployed: key authentication, rate limiting, usage records and history in SQLite; once
with the bootstrap admin's key (unlimited credit: metered, not reserved) and once with a key on credits
("metered": each call reserves its most possible cost first and is charged exactly when it ends).
Targets: added latency p50 < 1 ms, >= 3x LiteLLM's requests/s on the same machine. ``--pin`` gives the
gateway under test a core of its own (Linux), as a deployment would, instead of sharing every core with the
load generator and the upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction_throughput import KEY, free_port  # noqa: E402

UPSTREAM_MODEL = "mock-model"
UPSTREAM_SOURCE = r"""
import json, sys
from aiohttp import web

BODY = json.dumps({
    "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": "mock-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the mock upstream."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}).encode()

def sse(payload):
    return b"data: " + json.dumps(payload).encode() + b"\n\n"

CHUNK = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock-model"}
STREAM = b"".join([
    sse({**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}),
    sse({**CHUNK, "choices": [{"index": 0, "delta": {"content": "Hello from the mock upstream."},
                               "finish_reason": None}]}),
    sse({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    sse({**CHUNK, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}),
    b"data: [DONE]\n\n",
])

async def chat(request):
    body = await request.json()
    if body.get("stream"):  # gateways may stream from the upstream even for a non-streaming client
        return web.Response(body=STREAM, content_type="text/event-stream")
    return web.Response(body=BODY, content_type="application/json")

async def models(request):
    return web.json_response({"object": "list", "data": [{"id": "mock-model", "object": "model"}]})

app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/v1/models", models)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def wait_until_up(url: str, process: subprocess.Popen, headers: dict | None = None, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {process.stderr.read().decode()[-3000:] if process.stderr else ''}")
        try:
            if httpx.get(url, headers=headers, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    process.kill()
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@contextmanager
def started(
    command: list[str], probe: str, env: dict | None = None, headers: dict | None = None, cpus: set[int] | None = None
) -> Iterator[None]:
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=pin
    )
    try:
        wait_until_up(probe, process, headers)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def account_on_credit(url: str, name: str = "bench-metered") -> str:
    """A new account with $1,000 of credit (through the admin API); returns its key."""
    admin = {"X-API-Key": KEY}
    created = httpx.post(f"{url}/accounts", json={"name": name}, headers=admin)
    created.raise_for_status()
    granted = httpx.post(f"{url}/credits/grants", json={"account_name": name, "amount_usd": 1000}, headers=admin)
    granted.raise_for_status()
    return created.json()["api_key"]["key"]


def chat_body(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}


async def sequential(url: str, model: str, headers: dict, n: int) -> list[float]:
    import aiohttp

    latencies = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(n):
            begin = time.perf_counter()
            async with session.post(f"{url}/chat/completions", json=chat_body(model)) as response:
                response.raise_for_status()
                await response.read()
            latencies.append((time.perf_counter() - begin) * 1000)
    return latencies


async def concurrent(url: str, model: str, headers: dict, n: int, clients: int) -> float:
    import aiohttp

    remaining = [n]
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                async with session.post(f"{url}/chat/completions", json=chat_body(model)) as response:
                    response.raise_for_status()
                    await response.read()

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return n / (time.perf_counter() - begin)


def measure(name: str, url: str, model: str, headers: dict, args: argparse.Namespace) -> dict:
    asyncio.run(sequential(url, model, headers, 30))  # warm up connections and code paths
    latencies = asyncio.run(sequential(url, model, headers, args.requests))
    rps = asyncio.run(concurrent(url, model, headers, args.requests * 2, args.concurrency))
    return {
        "name": name,
        "p50": statistics.median(latencies),
        "p99": statistics.quantiles(latencies, n=100)[-1],
        "rps": rps,
    }


def print_rows(results: list[dict], width: int = 20) -> None:
    """The table of ``measure`` results; the first row is the direct call the others' added latency is over."""
    direct = results[0]
    print(f"{'':{width}}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'req/s':>9}")
    for row in results:
        added = "" if row is direct else f"{row['p50'] - direct['p50']:.2f}"
        print(f"{row['name']:{width}}{row['p50']:>9.2f}{row['p99']:>9.2f}{added:>11}{row['rps']:>9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="sequential requests (x2 for the rps run)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients of the rps run")
    parser.add_argument("--litellm", default=shutil.which("litellm"), help="the litellm executable (proxy extra)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the gateway under test to the last core, the load generator and the upstream to the others",
    )
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    gateway_cpus = {cores[-1]} if args.pin and len(cores) > 1 else None
    if gateway_cpus:
        os.sched_setaffinity(0, set(cores[:-1]))  # the load generator; the upstream inherits it

    work = Path(tempfile.mkdtemp(prefix="outrider-gateway-bench-"))
    up_port, or_port, ll_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    (work / "upstream.py").write_text(UPSTREAM_SOURCE)
    providers = {
        "providers": [
            {
                "name": "mock",
                "type": "openai",
                "base_url": upstream,
                "models": [{"model": UPSTREAM_MODEL, "price": [0.2, 0.6]}],
            }
        ]
    }
    (work / "providers.json").write_text(json.dumps(providers))
    (work / "litellm.yaml").write_text(
        "model_list:\n"
        f"  - model_name: {UPSTREAM_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {upstream}\n"
        "      api_key: not-needed\n"
    )
    outrider_env = {
        "OUTRIDER_DATA_DIR": str(work / "data"),
        "OUTRIDER_ADMIN_API_KEY": KEY,
        "OUTRIDER_PROVIDERS_FILE": str(work / "providers.json"),
        "OUTRIDER_LOG_LEVEL": "warning",
        "OUTRIDER_RATE_LIMITS": '{"inference": "10000000/minute", "chat": "10000000/minute"}',
        "HF_HUB_OFFLINE": "1",
    }
    # LiteLLM refuses to start without a master key; with one (and no database) it checks it per request,
    # as Outrider checks its API key.
    ll_env = {"LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": "sk-bench-0123456789abcdef0123456789abcdef"}
    ll_headers = {"Authorization": f"Bearer {ll_env['LITELLM_MASTER_KEY']}"}
    results = []
    try:
        with started([sys.executable, str(work / "upstream.py"), str(up_port)], f"{upstream}/models"):
            results.append(measure("upstream direct", upstream, UPSTREAM_MODEL, {}, args))
            serve = [sys.executable, "-m", "outrider", "serve", "--port", str(or_port)]
            with started(serve, f"http://127.0.0.1:{or_port}/health", outrider_env, cpus=gateway_cpus):
                or_url, or_model = f"http://127.0.0.1:{or_port}", f"mock/{UPSTREAM_MODEL}"
                results.append(measure("outrider", f"{or_url}/v1", or_model, {"X-API-Key": KEY}, args))
                # A key on credits: each call also reserves its most possible cost and is charged exactly.
                metered = account_on_credit(or_url)
                results.append(measure("outrider, metered", f"{or_url}/v1", or_model, {"X-API-Key": metered}, args))
            if args.litellm:
                litellm = [
                    args.litellm,
                    "--config",
                    str(work / "litellm.yaml"),
                    "--port",
                    str(ll_port),
                    "--num_workers",
                    "1",
                ]
                with started(litellm, f"http://127.0.0.1:{ll_port}/health/liveliness", ll_env, cpus=gateway_cpus):
                    ll_url = f"http://127.0.0.1:{ll_port}/v1"
                    results.append(measure("litellm proxy", ll_url, UPSTREAM_MODEL, ll_headers, args))
            else:
                print("litellm not found (pass --litellm PATH): its row is skipped", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    where = (
        f"gateways pinned to core {cores[-1]}, load generator and upstream on the other {len(cores) - 1}"
        if gateway_cpus
        else f"{len(cores)} cores shared by client, gateway and upstream"
    )
    print(f"{args.requests} sequential requests, then {args.requests * 2} with {args.concurrency} clients; {where}")
    print_rows(results)
    by_name = {r["name"]: r for r in results}
    if "litellm proxy" in by_name:
        print(f"outrider / litellm requests/s: {by_name['outrider']['rps'] / by_name['litellm proxy']['rps']:.1f}x")


if __name__ == "__main__":
    main()
