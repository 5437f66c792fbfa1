"""Gateway requests/s and added latency on PostgreSQL and Redis with one and two API processes, next to one process
on SQLite, in the same run.

    uv run python bench/scaleout_gateway.py [--requests 300] [--concurrency 32]
        [--database-url postgresql+psycopg://...] [--redis-url redis://...]

Starts, on loopback, the minimal OpenAI-compatible upstream of ``bench/gateway_overhead.py`` and, one after the
other: ``outrider serve`` on SQLite (in-memory rate limits, the embedded default); ``outrider serve`` on
PostgreSQL with its rate-limit windows and broadcast in Redis; ``outrider serve --workers 2`` on the same. Each is
measured as ``gateway_overhead.py`` does (sequential requests for p50/p99 and the added latency over the direct
call, then N concurrent clients for requests/s), once with the bootstrap admin's key (unlimited: metered in usage,
never reserved) and once with a key on credit ("metered": a reservation before each call, the exact charge
after). Without ``--database-url`` / ``--redis-url`` a throwaway PostgreSQL and redis-server are started in
temporary folders (``tests/external_services.py``; the Debian packages of ``scripts/install-services``); each
configuration gets a fresh database. Target: metered requests/s on PostgreSQL with one process at least 80% of
SQLite's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
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
    measure,
    print_rows,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests (x2 for the rps run)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients of the rps run")
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
        ):
            results.append(measure("upstream direct", upstream, UPSTREAM_MODEL, {}, args))
            for index, (label, env, extra) in enumerate(configurations(postgres, redis_url)):
                port = free_port()
                env = {**base_env, **env, "OUTRIDER_DATA_DIR": str(work / f"data-{index}")}
                serve = [sys.executable, "-m", "outrider", "serve", "--port", str(port), *extra]
                with started(serve, f"http://127.0.0.1:{port}/health", env):
                    url = f"http://127.0.0.1:{port}"
                    results.append(measure(label, f"{url}/v1", model, {"X-API-Key": KEY}, args))
                    metered = account_on_credit(url)
                    results.append(measure(f"{label}, metered", f"{url}/v1", model, {"X-API-Key": metered}, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"{args.requests} sequential requests, then {args.requests * 2} with {args.concurrency} clients; ")
    print(f"{len(os.sched_getaffinity(0))} cores shared by client, gateways, upstream and stores; load {load:.1f}")
    print_rows(results, width=38)
    by_name = {row["name"]: row for row in results}
    ratio = by_name["PostgreSQL+Redis, 1 process, metered"]["rps"] / by_name["SQLite, 1 process, metered"]["rps"]
    print(f"metered requests/s, PostgreSQL / SQLite with one process: {ratio:.0%} (target >= 80%)")


if __name__ == "__main__":
    main()
