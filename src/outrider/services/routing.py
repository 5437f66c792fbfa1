"""Smart routing for ``model: "auto"``: build the caller's pool, decide, and feed the router evidence.

The pool is the request's ``routing.model_pool`` (which must stay inside the key's pool), else the key's
``model_pool``, else every decoder model served here (local and upstream). Only models declaring every capability
the request needs stay in it (``vision`` for images, ``tools`` for tools: core/capabilities.py); when none does,
the call is a 400 that says so. Models that cannot serve now
(an upstream whose circuit breaker is open, a hub model that is not cached offline) are left out before
deciding. The mode is the request's ``routing.optimize``, else the key's ``optimize_mode``.

The decision itself is ``routing.decision.Router`` (pure, CPU-only, sub-millisecond). This service loads
it once in a thread (its token table is built once per base-models folder), seeds it with the latency of
recent calls and the feedback verdicts stored in history, and keeps both up to date as calls finish and
feedback arrives. ``GenerationService`` calls it and tries the ranked models in order (fallbacks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from outrider.backends.base import ModelSpec
from outrider.config import Settings
from outrider.core.capabilities import missing_capabilities, no_capable_model
from outrider.core.errors import BackendError, InvalidRequest, PermissionDenied
from outrider.core.messages import ChatMessage
from outrider.routing.decision import Router, RoutingDecision
from outrider.routing.scorer import CandidateModel
from outrider.services.catalog import ModelCatalog
from outrider.services.recording import CallContext
from outrider.storage.db import Database
from outrider.storage.queries import inferences as inference_q

log = logging.getLogger(__name__)

AUTO_MODEL = "auto"


@dataclass(frozen=True)
class RoutingOptions:
    """The per-request ``routing`` object: overrides of the key's pool and mode, and of the detected task."""

    model_pool: tuple[str, ...] | None = None
    optimize: str | None = None
    task: str | None = None

    @classmethod
    def from_wire(cls, routing: object | None) -> RoutingOptions | None:
        """From any surface's ``routing`` object (attributes model_pool, optimize, task), or None."""
        if routing is None:
            return None
        pool = getattr(routing, "model_pool", None)
        return cls(
            model_pool=tuple(pool) if pool is not None else None,
            optimize=getattr(routing, "optimize", None),
            task=getattr(routing, "task", None),
        )


class RoutingService:
    def __init__(
        self,
        settings: Settings,
        catalog: ModelCatalog,
        db: Database,
        on_decision: Callable[[RoutingDecision], None] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.db = db
        self.on_decision = on_decision  # told every decision (metrics)
        self._router: Router | None = None
        self._loading: asyncio.Task | None = None

    def warm(self) -> None:
        """Start loading the router in the background."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(self._load())

    def warm_if_cached(self) -> None:
        """At start-up: load the router now if its token table is already built (about 0.2 s). Building it
        (about 35 s of CPU, once per base-models folder) waits for the first ``model: "auto"`` call, so
        servers that never route never pay for it."""
        from outrider.routing.embedding import static_table_path

        if static_table_path(self.settings.resolved_base_models_dir).exists():
            self.warm()

    async def router(self) -> Router:
        if self._router is None:
            self.warm()
            await asyncio.shield(self._loading)
        return self._router

    async def _load(self) -> None:
        def load() -> Router:
            router = Router.from_settings(self.settings)
            with self.db.session() as s:
                evidence = inference_q.routing_evidence(s, window=self.settings.routing_latency_window)
            for model_id, latencies in evidence.latencies.items():
                router.latency.seed(model_id, latencies)
            router.fits.load_counts(evidence.verdicts)
            return router

        try:
            self._router = await asyncio.to_thread(load)
        except Exception:
            self._loading = None  # let the next request try again, and say why this one failed
            raise

    async def pool(
        self, ctx: CallContext, options: RoutingOptions | None, required: frozenset[str] = frozenset()
    ) -> list[ModelSpec]:
        """The decoder models this caller may be routed to, that have the ``required`` capabilities and that can
        serve now, each resolved once."""
        account_id = ctx.principal.account.id
        key_pool = ctx.principal.model_pool
        requested = list(options.model_pool) if options and options.model_pool else None
        if requested is not None:
            outside = [m for m in requested if key_pool is not None and m not in key_pool]
            if outside:
                raise PermissionDenied(
                    f"routing.model_pool names models outside this API key's pool: {outside}",
                    param="routing.model_pool",
                )
            specs = []
            for model_id in requested:
                # 404 names an unknown id; another account's trained model is unknown here too
                spec = await self.catalog.model_for(model_id, account_id)
                if spec.kind != "decoder":
                    raise InvalidRequest(
                        f"routing.model_pool: '{model_id}' is an {spec.kind} model; routing picks between "
                        "generation models",
                        param="routing.model_pool",
                    )
                specs.append(spec)
        elif key_pool:
            specs = []
            for model_id in key_pool:
                # A key may name a model that is gone (or was never this account's): routing does not offer it.
                spec = await self.catalog.visible(model_id, account_id)
                if spec is not None and spec.kind == "decoder":
                    specs.append(spec)
            if not specs:
                # 422, not 403: nothing is withheld from the key (it may call each model in its pool by name),
                # and not 502: no server fault, the request asks "auto" to chat with a pool that cannot. As for
                # an extraction model named in routing.model_pool, the same request always fails the same way.
                raise InvalidRequest(
                    "model 'auto' routes between generation models and this API key's model pool has none "
                    f"(pool: {', '.join(key_pool)}); name a model, or use a key whose pool has a generation model",
                    param="model",
                )
        else:
            specs = [s for s in self.catalog.declared() if s.kind == "decoder"]
        if required:
            capable = [s for s in specs if not missing_capabilities(s.capabilities, required)]
            if not capable:
                raise no_capable_model(sorted(required), [s.id for s in specs])
            specs = capable
        available = await self.catalog.serving(specs)
        if not available:
            names = ", ".join(s.id for s in specs) or "none"
            raise BackendError(f"no model in the routing pool can serve now (pool: {names})")
        return available

    async def decide(
        self,
        ctx: CallContext,
        messages: list[ChatMessage],
        options: RoutingOptions | None,
        max_output_tokens: int,
        required: frozenset[str] = frozenset(),
    ) -> tuple[RoutingDecision, dict[str, ModelSpec]]:
        specs = await self.pool(ctx, options, required)
        router = await self.router()
        mode = options.optimize if options and options.optimize else ctx.principal.optimize_mode
        decision = router.decide(
            messages,
            [CandidateModel(s.id, s.price if s.source != "upstream" or _priced(s) else None) for s in specs],
            mode,
            options.task if options else None,
            max_output_tokens=max_output_tokens,
        )
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision, {s.id: s for s in specs}

    def observe(self, model_id: str, latency_ms: float) -> None:
        """A call finished: its latency is evidence for routing (only once the router is loaded)."""
        if self._router is not None:
            self._router.record_latency(model_id, latency_ms)

    def observe_verdict(self, model_id: str, task: str | None, correct: bool) -> None:
        """Feedback on a routed call: evidence of the model's fit for the task it was routed for."""
        if self._router is not None and task:
            try:
                self._router.record_verdict(model_id, task, correct)
            except InvalidRequest:
                log.warning("feedback for an unknown routing task %r ignored", task)


def _priced(spec: ModelSpec) -> bool:
    """Upstream models without a declared price have an unknown cost, not a zero one."""
    return bool(spec.price.input_per_mtok or spec.price.output_per_mtok)
