"""Gateway requests/s and added latency on PostgreSQL and Redis with one and two API processes, next to one process
on SQLite, in the same run.

    uv run python bench/scaleout_gateway.py [--requests 600] [--concurrency 32] [--rounds 7]
        [--database-url postgresql+psycopg://...] [--redis-url redis://...]

Starts, on loopback, the minimal OpenAI-compatible upstream of ``bench/gateway_overhead.py`` and, side by side:
``outrider serve`` on SQLite (in-memory rate limits, the embedded default); ``outrider serve`` on PostgreSQL with
its rate-limit windows and broadcast in Redis; ``outrider serve --workers 2`` on the same. Each is measured as
``gateway_overhead.py`` does (sequential requests for p50/p99 and the added latency over the direct call, then N
concurrent clients for requests/s), once with the bootstrap admin's key (unlimited: metered in usage, never
reserved) and once with a key on credit ("metered": a reservation before each call, the exact charge after). The
requests/s runs go in rounds, each configuration once per round, and the table gives each one's median (the ratio of
the target is the median of the rounds' ratios): on a shared machine a configuration measured alone, minutes after
another, meets different neighbours. Without ``--database-url`` / ``--redis-url`` a throwaway PostgreSQL and
redis-server are started in temporary folders (``tests/external_services.py``; the Debian packages of
``scripts/install-services``); each configuration gets a fresh database. Target: metered requests/s on PostgreSQL
with one process at least 80% of SQLite's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction_throughput import KEY, free_port  # noqa: E402
from bench.gateway_overhead import (  # noqa: E402
    UPSTREAM_MODEL,
    UPSTREAM_SOURCE,
    account_on_credit,
    concurrent,
    measure,
    print_rows,
    sequential,
    started,
)


@contextlib.contextmanager
def stores(args: argparse.Namespace) -> Iterator[tuple[object, str]]:
    """(a PostgreSQL server that makes fresh databases, or the given URL; a Redis URL)."""
    from tests.external_services import start_postgres, start_redis

    with contextlib.ExitStack() as stack:
        postgres = args.database_url
        if postgres is None:
            postgres = start_postgres()
            stack.callback(postgres.stop)
        redis_url = args.redis_url
        if redis_url is None:
            redis = start_redis()
            stack.callback(redis.stop)
            redis_url = redis.url
        yield postgres, redis_url


def configurations(postgres: object, redis_url: str) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """(label, environment, extra `serve` arguments) of each configuration, a fresh database for each."""
    yield "SQLite, 1 process", {}, []
    shared = {"OUTRIDER_REDIS_URL": redis_url, "OUTRIDER_RATE_LIMIT_STORAGE": redis_url}
    for processes in (1, 2):
        url = postgres if isinstance(postgres, str) else postgres.create_database()
        env = {**shared, "OUTRIDER_DATABASE_URL": url, "OUTRIDER_EMBEDDED_WORKER": "false"}
        yield (
            f"PostgreSQL+Redis, {processes} process{'es' if processes > 1 else ''}",
            env,
            ["--workers", str(processes)],
        )


def latencies(name: str, url: str, model: str, headers: dict, args: argparse.Namespace) -> dict:
    """p50 and p99 of sequential requests (after a warm-up); requests/s come later, in rounds."""
    asyncio.run(sequential(url, model, headers, 30))
    seen = asyncio.run(sequential(url, model, headers, args.requests))
    return {"name": name, "p50": statistics.median(seen), "p99": statistics.quantiles(seen, n=100)[-1], "rounds": []}


def requests_per_second(url: str, model: str, headers: dict, args: argparse.Namespace) -> float:
    return asyncio.run(concurrent(url, model, headers, args.requests * 2, args.concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="sequential requests (x2 for the rps run)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients of the rps run")
    parser.add_argument("--rounds", type=int, default=7, help="requests/s runs of each configuration, interleaved")
    parser.add_argument("--database-url", help="an existing PostgreSQL database (default: a throwaway server)")
    parser.add_argument("--redis-url", help="an existing Redis (default: a throwaway redis-server)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="outrider-scaleout-bench-"))
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    (work / "upstream.py").write_text(UPSTREAM_SOURCE)
    provider = {"name": "mock", "type": "openai", "base_url": upstream}
    provider["models"] = [{"model": UPSTREAM_MODEL, "price": [0.2, 0.6]}]
    (work / "providers.json").write_text(json.dumps({"providers": [provider]}))
    base_env = {
        "OUTRIDER_ADMIN_API_KEY": KEY,
        "OUTRIDER_PROVIDERS_FILE": str(work / "providers.json"),
        "OUTRIDER_LOG_LEVEL": "warning",
        "OUTRIDER_RATE_LIMITS": '{"inference": "10000000/minute", "chat": "10000000/minute"}',
        "HF_HUB_OFFLINE": "1",
    }
    model = f"mock/{UPSTREAM_MODEL}"
    results = []
    try:
        with (
            stores(args) as (postgres, redis_url),
            started([sys.executable, str(work / "upstream.py"), str(up_port)], f"{upstream}/models"),
            contextlib.ExitStack() as servers,
        ):
            results.append(measure("upstream direct", upstream, UPSTREAM_MODEL, {}, args))
            runs = []  # (label, gateway URL, headers)
            for index, (label, env, extra) in enumerate(configurations(postgres, redis_url)):
                port = free_port()
                env = {**base_env, **env, "OUTRIDER_DATA_DIR": str(work / f"data-{index}")}
                serve = [sys.executable, "-m", "outrider", "serve", "--port", str(port), *extra]
                servers.enter_context(started(serve, f"http://127.0.0.1:{port}/health", env))
                url = f"http://127.0.0.1:{port}"
                runs.append((label, url, {"X-API-Key": KEY}))
                runs.append((f"{label}, metered", url, {"X-API-Key": account_on_credit(url, f"bench-metered-{index}")}))
            for label, url, headers in runs:
                results.append(latencies(label, f"{url}/v1", model, headers, args))
            for _ in range(args.rounds):
                for row, (_, url, headers) in zip(results[1:], runs, strict=True):
                    row["rounds"].append(requests_per_second(f"{url}/v1", model, headers, args))
            for row in results[1:]:
                row["rps"] = statistics.median(row["rounds"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(
        f"{args.requests} sequential requests, then {args.rounds} rounds of {args.requests * 2} with "
        f"{args.concurrency} clients (req/s: the median of the rounds)"
    )
    print(f"{len(os.sched_getaffinity(0))} cores shared by client, gateways, upstream and stores; load {load:.1f}")
    print_rows(results, width=38)
    for row in results[1:]:
        print(f"  {row['name']}: {', '.join(f'{rps:.0f}' for rps in row['rounds'])} req/s")
    by_name = {row["name"]: row for row in results}
    postgres, sqlite = by_name["PostgreSQL+Redis, 1 process, metered"], by_name["SQLite, 1 process, metered"]
    # Per round, the two were measured a few seconds apart: the median of those ratios drifts least.
    ratios = sorted(p / s for p, s in zip(postgres["rounds"], sqlite["rounds"], strict=True))
    print(
        f"metered requests/s, PostgreSQL / SQLite with one process: {statistics.median(ratios):.0%} "
        f"(median of the rounds' {', '.join(f'{r:.0%}' for r in ratios)}; target >= 80%)"
    )


if __name__ == "__main__":
    main()
