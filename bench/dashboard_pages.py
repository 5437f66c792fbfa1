"""Dashboard page times: p50/p95 of the list pages over 100,000 usage rows and 10,000 history records.

    .venv/bin/python bench/dashboard_pages.py [--usage 100000] [--history 10000] [--requests 30]

One account gets the rows through the storage functions the recorder uses (``insert_usages``,
``insert_inferences``), spread over the last 30 days. A real server (uvicorn on loopback, in this process)
serves the pages to a signed-in client; each page is requested ``--requests`` times after one warm-up and
timed from request to last byte (the server's rendering plus loopback HTTP). The CSV export of every usage
row is timed once.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import update  # noqa: E402

from outrider.api.app import create_app  # noqa: E402
from outrider.app_state import build_services  # noqa: E402
from outrider.config import build_settings  # noqa: E402
from outrider.storage.queries import billing as billing_q  # noqa: E402
from outrider.storage.queries import inferences as inferences_q  # noqa: E402
from outrider.storage.records import NewInference, NewUsage  # noqa: E402
from outrider.storage.tables import InferenceRow, UsageRow  # noqa: E402

PASSWORD = "bench admin password"
MODELS = ["demo-extractor", "HuggingFaceTB/SmolLM2-135M-Instruct", "upstream/gpt"]
BATCH = 1_000
TEXT = "Anna Schmidt works for Netflix in Boston. The company just released the Zune HD, priced at $649."
OUTPUT = {"entities": {"person": [{"text": "Anna Schmidt", "start": 0, "end": 12, "confidence": 0.97}]}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spread(i: int, count: int, now: datetime) -> datetime:
    """Batch ``i`` of ``count`` placed evenly over the last 30 days."""
    return now - timedelta(days=30) * (1 - (i + 0.5) / count)


def fill(services, usage_rows: int, history_rows: int) -> None:
    account_id = services.accounts.list_accounts()[0].id
    now = datetime.now(UTC)
    db = services.db
    batches = max(1, usage_rows // BATCH)
    for b in range(batches):
        rows = [
            NewUsage(
                account_id=account_id,
                api_key_id=None,
                inference_id=None,
                surface="openai" if i % 3 else "native",
                model_id=MODELS[i % 3],
                model_used=MODELS[i % 3],
                task="chat" if i % 3 else "extract",
                status="error" if i % 50 == 0 else "success",
                prompt_tokens=20 + i % 200,
                completion_tokens=i % 64,
                cost_micro_usd=10 + i % 500,
                latency_ms=5.0 + (i * 37) % 900,
            )
            for i in range(BATCH)
        ]
        with db.session() as s:
            ids = billing_q.insert_usages(s, rows)
            s.execute(update(UsageRow).where(UsageRow.id.in_(ids)).values(created_at=spread(b, batches, now)))
    batches = max(1, history_rows // BATCH)
    for b in range(batches):
        records = [
            (
                f"inf_bench{b:04d}{i:05d}",
                NewInference(
                    account_id=account_id,
                    api_key_id=None,
                    surface="native",
                    model_id=MODELS[i % 3],
                    model_used=MODELS[i % 3],
                    task="extract",
                    input={"text": TEXT, "schema": {"entities": ["person"]}, "threshold": 0.5},
                    output=OUTPUT,
                    status="success",
                    latency_ms=5.0 + (i * 37) % 900,
                    prompt_tokens=27,
                ),
            )
            for i in range(BATCH)
        ]
        with db.session() as s:
            inferences_q.insert_inferences(s, records)
            ids = [r[0] for r in records]
            s.execute(update(InferenceRow).where(InferenceRow.id.in_(ids)).values(created_at=spread(b, batches, now)))


def timed(client: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    assert client.get(path).status_code == 200, path  # warm-up
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * len(times)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usage", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = build_settings(data_dir=Path(folder), port=free_port(), admin_password=PASSWORD)
        services = build_services(settings)
        started = time.perf_counter()
        fill(services, args.usage, args.history)
        print(
            f"inserted {args.usage:,} usage rows and {args.history:,} history records in "
            f"{time.perf_counter() - started:.1f} s"
        )
        app = create_app(settings, services)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{settings.port}"
        with httpx.Client(base_url=url, timeout=300) as client:
            assert client.post("/auth/login", json={"username": "admin", "password": PASSWORD}).status_code == 200
            pages = [
                "/ui/?period=day",
                "/ui/?period=week",
                "/ui/?period=month",
                "/ui/usage",
                "/ui/usage?page=1000",
                "/ui/usage?model_id=demo-extractor",
                "/ui/history",
                "/ui/history?page=200",
                "/ui/history?model_id=demo-extractor",
                "/ui/review",
                "/ui/review?page=200",
                "/ui/keys",
            ]
            print(f"{'page':40} {'p50 ms':>9} {'p95 ms':>9}")
            for path in pages:
                p50, p95 = timed(client, path, args.requests)
                print(f"{path:40} {p50:9.1f} {p95:9.1f}")
            started = time.perf_counter()
            exported = client.get("/ui/usage.csv")
            lines = exported.text.count("\n") - 1
            print(f"CSV export of {lines:,} usage rows: {time.perf_counter() - started:.2f} s")
        server.should_exit = True
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
