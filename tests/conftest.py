"""Session fixtures: built base models, a small real fine-tune, and the real server on loopback.

Expensive things happen once per test session: the MiniLM GLiNER2 base is built, SmolLM2 is converted
from its GGUF, a demo extractor is fine-tuned on templated data, and one server is started on a free
loopback port. Tests talk to it over real HTTP.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # no model hub here: never wait for network retries
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # scripts/test runs two workers on CI's two cores: one torch thread each (set before torch is imported; the
    # servers, trainers and worker processes they start inherit it). Two threads per worker oversubscribe the
    # cores, which made decoding several times slower (tests/synthesis/test_engine.py measured it).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from outrider.config import Settings, build_settings

ADMIN_KEY = "ork_test_admin_key_0123456789abcdef"
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# USD per million input / output tokens: non-zero so that every test can check the reported cost.
PRICES = {SMOL: (0.5, 1.5), "demo-extractor": (5.0, 0.0), "sentence-transformers/all-MiniLM-L6-v2": (2.0, 0.0)}
GENEROUS_LIMITS = {"inference": "100000/minute", "chat": "100000/minute"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    settings: Settings
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def services(self):
        return self.app.state.services

    def client(self, key: str | None = ADMIN_KEY, headers: dict | None = None) -> httpx.Client:
        sent = {"X-API-Key": key} if key else {}
        sent.update(headers or {})
        return httpx.Client(base_url=self.url, headers=sent, timeout=300)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: Settings) -> RunningServer:
    from outrider.api.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    return RunningServer(f"http://127.0.0.1:{settings.port}", settings, app, server, thread)


# Developers may point this at a folder to reuse built and trained models between local runs; scripts/test points
# it at a temporary folder when unset, so that its workers build and train each model once between them.
MODEL_CACHE = os.environ.get("OUTRIDER_TEST_MODEL_CACHE")


@pytest.fixture(scope="session")
def base_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session and shared by every server the tests start."""
    if MODEL_CACHE:
        return Path(MODEL_CACHE) / "base-models"
    return tmp_path_factory.mktemp("base-models")


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory, base_models_dir: Path) -> Path:
    """A folder of saved models holding ``demo-extractor``: the MiniLM base after a short real fine-tune."""
    from outrider.backends.builtin import base_model_dir
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, build_lock, ensure_minilm_base
    from outrider.training.demo_data import DEMO_EXAMPLES, demo_records
    from outrider.training.encoder import EncoderTrainingConfig, train_encoder

    models = Path(MODEL_CACHE) / "models" if MODEL_CACHE else tmp_path_factory.mktemp("models")
    target = models / "demo-extractor"
    if (target / "config.json").exists():
        return models
    # Test runs sharing OUTRIDER_TEST_MODEL_CACHE take turns: one trains, the others wait and reuse it.
    with build_lock(target):
        if (target / "config.json").exists():
            return models
        settings = build_settings(data_dir=tmp_path_factory.mktemp("train-data"), base_models_dir=base_models_dir)
        base = ensure_minilm_base(base_model_dir(settings, MINILM_BASE_ID))
        train_encoder(base, demo_records(DEMO_EXAMPLES, seed=0), target, EncoderTrainingConfig())
    return models


def make_settings(data_dir: Path, base_models_dir: Path, **extra: object) -> Settings:
    # The int8 ONNX forms of encoders are built once per distinct set of weights and shared by every server.
    extra.setdefault("optimized_models_dir", base_models_dir.parent / "optimized")
    return build_settings(
        data_dir=data_dir,
        base_models_dir=base_models_dir,
        port=free_port(),
        admin_api_key=ADMIN_KEY,
        environment="test",
        **extra,
    )


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, base_models_dir: Path, demo_model_dir: Path
) -> Iterator[RunningServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("server-data"),
        base_models_dir,
        model_dirs=[demo_model_dir],
        model_prices=PRICES,
        rate_limits=GENEROUS_LIMITS,  # the limits themselves are tested on a server of their own
        # The worker's periodic checks come often here, so background judging and retrain runs are not waited for.
        judge_poll_interval_s=0.5,
        retrain_check_interval_s=1.0,
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A throwaway PostgreSQL server on loopback (skipped, or failed under CI, when not installed)."""
    from tests.external_services import start_postgres

    running = start_postgres()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres) -> str:
    """The name of a database migrated once per session: each test's database is a copy of it."""
    from outrider.storage.db import Database

    url = postgres.create_database()
    db = Database(url)
    db.migrate()
    db.dispose()
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[object]:
    """A throwaway redis-server on loopback (skipped, or failed under CI, when not installed)."""
    from tests.external_services import start_redis

    running = start_redis()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def new_account(admin_client: httpx.Client, name: str, credit_usd: float | None = 10.0) -> str:
    """Create an account through the API, granted ``credit_usd`` through the API; returns its raw key."""
    response = admin_client.post("/accounts", json={"name": name})
    assert response.status_code == 201, response.text
    if credit_usd:
        granted = admin_client.post("/credits/grants", json={"account_name": name, "amount_usd": credit_usd})
        assert granted.status_code == 201, granted.text
    return response.json()["api_key"]["key"]
