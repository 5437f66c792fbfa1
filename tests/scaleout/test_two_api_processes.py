"""Two `outrider serve` commands (real subprocesses; the second with `--workers 2`) on one PostgreSQL database and
one Redis: credit stays exact under 200 concurrent metered calls spread over both, a key's RPM limit holds across
both, a key revoked through one is refused by the other on its next request, and a job queued through one runs on
an `outrider worker` started elsewhere.

The metered calls go to a scripted upstream model priced on output tokens only, asked for ``max_tokens=3`` (the
scripted answer's completion tokens): each call's reservation is exactly its cost, 300 micro-dollars, so a credit
of 30,000 pays for exactly 100 calls, and no model inference is needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from outrider.storage.db import Database
from outrider.storage.queries import jobs as jobs_q
from tests.conftest import ADMIN_KEY, free_port
from tests.scripted_upstream import ScriptedUpstream
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # three API processes and a worker start as real subprocesses

MODEL = "scripted"
CALL_COST = 300  # micro-dollars: 3 completion tokens at 100 USD per million, prompt tokens free
CALL = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "outrider", *command], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Cluster:
    def __init__(self, folder: Path, database_url: str, redis_url: str, upstream: ScriptedUpstream) -> None:
        self.folder = folder
        self.database_url = database_url
        providers = folder / "providers.json"
        provider = {"name": "up", "type": "openai", "base_url": f"{upstream.url}/v1"}
        provider["models"] = [{"model": MODEL, "id": MODEL, "price": [0.0, 100.0], "capabilities": ["chat"]}]
        providers.write_text(json.dumps({"providers": [provider]}))
        self.env = {
            **os.environ,
            "OUTRIDER_ENVIRONMENT": "test",
            "OUTRIDER_DATABASE_URL": database_url,
            "OUTRIDER_REDIS_URL": redis_url,
            "OUTRIDER_RATE_LIMIT_STORAGE": redis_url,
            "OUTRIDER_RATE_LIMITS": json.dumps({"chat": "100000/minute", "generate": "1000/minute"}),
            "OUTRIDER_ADMIN_API_KEY": ADMIN_KEY,
            "OUTRIDER_PROVIDERS_FILE": str(providers),
            "OUTRIDER_EMBEDDED_WORKER": "false",
            "OUTRIDER_AUTH_CACHE_TTL_S": "600",  # only the broadcast can make a process forget a key in time
            "OUTRIDER_JOB_HEARTBEAT_S": "0.5",
            "OUTRIDER_WORKER_POLL_INTERVAL_S": "0.2",
        }
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def serve(self, commands: dict[str, list[str]]) -> None:
        """Start `outrider serve` commands together (one migrates and bootstraps the new database, the others wait
        for it) and wait until each answers."""
        started = []
        for name, command in commands.items():
            port = free_port()
            env = {**self.env, "OUTRIDER_DATA_DIR": str(self.folder / name), "OUTRIDER_PORT": str(port)}
            process = spawn(command, env, self.folder / f"{name}.log")
            self.processes.append(process)
            started.append((name, process, f"http://127.0.0.1:{port}"))
        for name, process, url in started:
            answers = lambda url=url, process=process, name=name: self._healthy(url, process, name)  # noqa: E731
            wait_until(answers, timeout=180, interval=0.2, what=f"{name} to serve")
            self.urls.append(url)

    def worker(self, name: str) -> subprocess.Popen:
        process = spawn(["worker"], {**self.env, "OUTRIDER_DATA_DIR": str(self.folder / name)}, self.folder / "w.log")
        self.processes.append(process)
        return process

    def _healthy(self, url: str, process: subprocess.Popen, name: str) -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited: {(self.folder / f'{name}.log').read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in self.processes:
            stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres, redis_server) -> Iterator[Cluster]:
    upstream = ScriptedUpstream().start()
    running = Cluster(tmp_path_factory.mktemp("cluster"), postgres.create_database(), redis_server.url, upstream)
    try:
        # The second command runs two API processes itself: three in all, behind two ports.
        running.serve({"api-a": ["serve"], "api-b": ["serve", "--workers", "2"]})
        yield running
    finally:
        running.stop()
        upstream.stop()


def admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=60)


def new_account(url: str, name: str, credit_micro_usd: int = 0) -> str:
    with admin(url) as client:
        created = client.post("/accounts", json={"name": name})
        assert created.status_code == 201, created.text
        if credit_micro_usd:
            grant = {"account_name": name, "amount_usd": credit_micro_usd / 1e6}
            assert client.post("/credits/grants", json=grant).status_code == 201
    return created.json()["api_key"]["key"]


async def spread_calls(urls: list[str], key: str, count: int) -> Counter:
    """``count`` chat calls at once, alternating between the processes; their status codes counted."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=120, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=CALL) for i in range(count))
        )
    return Counter(response.status_code for response in responses)


def test_credit_for_100_calls_serves_exactly_100_of_200_spread_over_two_processes(cluster):
    a, b = cluster.urls
    key = new_account(a, "metered", credit_micro_usd=100 * CALL_COST)
    statuses = asyncio.run(spread_calls([a, b], key, 200))
    assert statuses == {200: 100, 402: 100}
    with httpx.Client(base_url=b, headers={"X-API-Key": key}, timeout=60) as client:
        credits = client.get("/credits").json()
        served = client.get("/usage", params={"status": "success", "limit": 100}).json()
        charges = client.get("/credits/transactions", params={"kind": "inference", "limit": 100}).json()
    assert credits["balance_micro_usd"] == 0 and credits["reserved_micro_usd"] == 0, credits
    assert served["totals"]["requests"] == 100 and served["totals"]["cost_micro_usd"] == 100 * CALL_COST
    assert all(record["cost_micro_usd"] == CALL_COST for record in served["data"])
    assert charges["total"] == 100 and all(t["amount_micro_usd"] == -CALL_COST for t in charges["data"])
    assert len({t["reference_id"] for t in charges["data"]}) == 100  # one charge per call, none twice


def test_a_keys_rpm_limit_holds_across_both_processes(cluster):
    a, b = cluster.urls
    with admin(a) as client:
        key = client.post("/keys", json={"name": "rpm-10", "rpm_limit": 10}).json()["key"]
    statuses = asyncio.run(spread_calls([a, b], key, 30))
    assert statuses == {200: 10, 429: 20}


def test_a_key_revoked_through_one_process_is_refused_by_the_other_on_its_next_request(cluster):
    a, b = cluster.urls
    with admin(a) as client:
        created = client.post("/keys", json={"name": "soon-revoked"}).json()
    with httpx.Client(base_url=b, headers={"X-API-Key": created["key"]}, timeout=60) as on_b:
        assert on_b.post("/v1/chat/completions", json=CALL).status_code == 200  # now in b's cache (600 s)
        with admin(a) as client:
            assert client.delete(f"/keys/{created['id']}").status_code == 200
        refused = on_b.post("/v1/chat/completions", json=CALL)
    assert refused.status_code == 403 and "revoked" in refused.text


def test_a_job_queued_through_one_process_runs_on_a_worker_started_elsewhere(cluster):
    a, _ = cluster.urls
    job = {"task_type": "classification", "dataset_name": "elsewhere", "num_examples": 2, "labels": ["x", "y"]}
    with admin(a) as client:
        queued = client.post("/generate", json={**job, "teacher_model": MODEL})
        assert queued.status_code == 200, queued.text
        job_id = queued.json()["job_id"]
        worker = cluster.worker("worker")
        finished = wait_until(
            lambda: (
                (found := client.get(f"/generate/jobs/{job_id}").json())["status"] in ("complete", "failed") and found
            ),
            timeout=180,
            interval=0.2,
            what="the job to finish on the worker",
        )
    db = Database(cluster.database_url)
    try:
        with db.session() as s:
            stored = jobs_q.get_job(s, job_id)
    finally:
        db.dispose()
    assert finished["started_at"] is not None
    assert stored.worker_id.split(":")[1] == str(worker.pid)  # host:pid:nonce of the `outrider worker` process
