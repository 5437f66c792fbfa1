"""Prometheus metrics of one application, in a registry of its own (never the global default one).

Built by ``build_services`` (one per app: tests start several apps in one process). Counters and
histograms are fed as things happen (HTTP requests, model calls, batches, routing decisions): a few
label look-ups per event, nothing that waits. Gauges about state kept elsewhere (queue depths, upstream
circuit breakers, jobs and credit reservations in the store) are set by ``services/metrics.py`` when
``/metrics`` is scraped, right before rendering, so the hot path pays nothing for them.

Labels carry route templates, model ids, task and job kinds, never account names, keys or request content.
The metric names are listed in docs/operations.md and pinned by tests/api/test_metrics.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector

from outrider import __version__
from outrider.core.usage import MICRO_USD, Usage

CONTENT_TYPE = CONTENT_TYPE_LATEST
JOB_STATES = ("queued", "running", "complete", "failed", "stopped")
BREAKER_STATES = ("closed", "open", "half_open")
# Seconds: from a 2 ms health check to a multi-minute generation.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class QueueDepth:
    model: str
    kind: str  # "encoder", "embedding": texts waiting for a pass; "decoder": generations waiting for a decode batch
    depth: int


@dataclass(frozen=True)
class UpstreamState:
    model: str
    healthy: bool  # usable, breaker not open, and no failure since the last success
    breaker: str  # one of BREAKER_STATES
    consecutive_failures: int


@dataclass(frozen=True)
class StoreSnapshot:
    """What the store holds, read once per scrape (two aggregate queries)."""

    jobs: dict[tuple[str, str], int]  # (kind, state) -> count
    credits_reserved_micro_usd: int


class Metrics:
    def __init__(self) -> None:
        # No ``*_created`` series: in the text format they are extra gauges next to every counter and histogram
        # (prometheus-client's switch is process-wide; nothing in Outrider wants them).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        Gauge("outrider_build_info", "Version of this Outrider process.", ["version"], registry=r).labels(
            __version__
        ).set(1)
        # -- HTTP ------------------------------------------------------------------------------------------
        self.http_requests = Counter(
            "outrider_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "outrider_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response body (a whole stream for streams).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # -- model calls -----------------------------------------------------------------------------------
        self.model_calls = Counter(
            "outrider_model_calls",
            "Model calls recorded, by the model that served them, surface, task and status.",
            ["model", "surface", "task", "status"],
            registry=r,
        )
        self.model_tokens = Counter(
            "outrider_model_tokens",
            "Tokens processed by model calls, by model and kind (prompt or completion).",
            ["model", "kind"],
            registry=r,
        )
        self.model_cost = Counter(
            "outrider_model_cost_usd", "USD cost reported on model calls, by model.", ["model"], registry=r
        )
        self.model_duration = Histogram(
            "outrider_model_call_duration_seconds",
            "Latency of model calls as recorded with their usage, by model and task.",
            ["model", "task"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "outrider_batch_size",
            "Size of each batch a local model ran: texts per extraction pass (encoder) or embedding pass "
            "(embedding), generations per decode batch (decoder).",
            ["model", "kind"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "outrider_model_queue_depth",
            "Work waiting for a loaded local model at scrape time: texts (encoder) or generations (decoder).",
            ["model", "kind"],
            registry=r,
        )
        # -- routing and upstreams -------------------------------------------------------------------------
        self.routing_decisions = Counter(
            "outrider_routing_decisions",
            'Decisions of model "auto", by detected task, chosen model and optimisation mode.',
            ["task", "model", "mode"],
            registry=r,
        )
        self.upstream_healthy = Gauge(
            "outrider_upstream_healthy",
            "1 when an upstream model is usable, its breaker is not open and its last call or probe succeeded.",
            ["model"],
            registry=r,
        )
        self.upstream_breaker = Gauge(
            "outrider_upstream_breaker_state",
            "Circuit-breaker state of each upstream model: 1 for the current state, 0 for the others.",
            ["model", "state"],
            registry=r,
        )
        self.upstream_failures = Gauge(
            "outrider_upstream_consecutive_failures",
            "Consecutive failed calls or probes of each upstream model.",
            ["model"],
            registry=r,
        )
        # -- the store, read at scrape time ----------------------------------------------------------------
        self.jobs = Gauge("outrider_jobs", "Jobs in the store, by kind and state.", ["kind", "state"], registry=r)
        self.credits_reserved = Gauge(
            "outrider_credits_reserved_usd",
            "Credit held by calls in flight, over every account (from the store).",
            registry=r,
        )
        self.store_up = Gauge(
            "outrider_metrics_store_up", "1 when the last scrape could read the store, else 0.", registry=r
        )
        # The labelled children of the per-event metrics, by label values: prometheus-client's ``labels()``
        # validates and locks on every call; these counters are never cleared, so their children stay valid.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._call_children: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}

    # -- fed as things happen (cheap: a dict look-up of the labelled children, then additions) --------------------
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.http_requests.labels(route, method, str(status)), self.http_duration.labels(route, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_call(self, model: str, surface: str, task: str, status: str, usage: Usage, latency_ms: float) -> None:
        key = (model, surface, task, status)
        children = self._call_children.get(key)
        if children is None:
            children = (
                self.model_calls.labels(model, surface, task, status),
                self.model_tokens.labels(model, "prompt"),
                self.model_tokens.labels(model, "completion"),
                self.model_cost.labels(model),
                self.model_duration.labels(model, task),
            )
            self._call_children[key] = children
        calls, prompt, completion, cost, duration = children
        calls.inc()
        if usage.prompt_tokens:
            prompt.inc(usage.prompt_tokens)
        if usage.completion_tokens:
            completion.inc(usage.completion_tokens)
        if usage.cost_micro_usd:
            cost.inc(usage.cost_micro_usd / MICRO_USD)
        duration.observe(latency_ms / 1000)

    def observe_batch(self, model: str, kind: str, size: int) -> None:
        """Called from model threads too: prometheus-client's metrics are thread-safe."""
        self.batch_size.labels(model, kind).observe(size)

    def observe_routing(self, task: str, model: str, mode: str) -> None:
        self.routing_decisions.labels(task, model, mode).inc()

    # -- set at scrape time --------------------------------------------------------------------------------------
    def set_queue_depths(self, depths: Iterable[QueueDepth]) -> None:
        self.queue_depth.clear()  # models evicted since the last scrape disappear
        for item in depths:
            self.queue_depth.labels(item.model, item.kind).set(item.depth)

    def set_upstreams(self, states: Iterable[UpstreamState]) -> None:
        for gauge in (self.upstream_healthy, self.upstream_breaker, self.upstream_failures):
            gauge.clear()
        for state in states:
            self.upstream_healthy.labels(state.model).set(1 if state.healthy else 0)
            self.upstream_failures.labels(state.model).set(state.consecutive_failures)
            for name in BREAKER_STATES:
                self.upstream_breaker.labels(state.model, name).set(1 if name == state.breaker else 0)

    def set_store(self, snapshot: StoreSnapshot | None, job_kinds: Iterable[str]) -> None:
        """``None`` when the store could not be read: its gauges are dropped rather than left stale."""
        self.jobs.clear()
        self.store_up.set(0 if snapshot is None else 1)
        if snapshot is None:
            self.credits_reserved.set(float("nan"))
            return
        kinds = set(job_kinds) | {kind for kind, _ in snapshot.jobs}
        for kind in sorted(kinds):
            for state in JOB_STATES:
                self.jobs.labels(kind, state).set(snapshot.jobs.get((kind, state), 0))
        self.credits_reserved.set(snapshot.credits_reserved_micro_usd / MICRO_USD)

    def render(self) -> bytes:
        return generate_latest(self.registry)
