"""The FastAPI application factory: every surface mounted on one app, built from settings."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from outrider import __version__
from outrider.api.admin.routes import router as admin_router
from outrider.api.anthropic.routes import router as anthropic_router
from outrider.api.auth.routes import router as auth_router
from outrider.api.billing.routes import router as billing_router
from outrider.api.data.datasets import router as datasets_router
from outrider.api.data.generate import router as generate_router
from outrider.api.deployments.routes import router as deployments_router
from outrider.api.errors import install_error_handlers
from outrider.api.evaluations.routes import router as evaluations_router
from outrider.api.judging.routes import router as judging_router
from outrider.api.limits import BodySizeLimit, ResponseHeaders
from outrider.api.meta import router as meta_router
from outrider.api.native.routes import router as native_router
from outrider.api.openai.routes import router as openai_router
from outrider.api.telemetry import RequestTelemetry
from outrider.api.training.routes import router as training_router
from outrider.app_state import Services, build_services
from outrider.config import Settings
from outrider.jobs.backends import start_embedded_worker
from outrider.ui import install_ui

log = logging.getLogger(__name__)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` may be passed in (the CLI builds them first to print the admin key)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        built = services or build_services(settings)
        if built.db.is_sqlite:
            # This process serves the calls: reservations left by a crashed one would otherwise stay held. On a
            # shared database other API processes may hold reservations now (`outrider credits
            # clear-reservations` clears them while no API process runs).
            built.billing.clear_stale_reservations()
        await built.broadcast.start()  # hear the other API processes' key, user and breaker changes
        app.state.services = built
        built.routing.warm_if_cached()  # the routing classifier, when its one-time build is done
        worker = await start_embedded_worker(built)  # None when OUTRIDER_EMBEDDED_WORKER is off
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await built.aclose()

    app = FastAPI(
        title="Outrider",
        version=__version__,
        description="Self-hosted platform for small task-specific models.",
        lifespan=lifespan,
        # No redirect from "/datasets/" to "/datasets": Starlette builds it from the client's Host header, before
        # authentication (an open redirect). Paths are matched exactly; a trailing slash is a 404.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        path_limits={"/datasets": settings.max_dataset_upload_bytes},
    )
    app.add_middleware(ResponseHeaders)
    # Added last, so outermost of these: request ids and metrics cover the 413s and everything inside.
    app.add_middleware(RequestTelemetry, access_log_enabled=settings.access_log)
    # Routes are matched in order: the compatible surfaces (the gateway's hot path) first. No other route
    # lives under /v1, and the two routers under /v1 have no path in common.
    app.include_router(openai_router)
    app.include_router(anthropic_router)
    app.include_router(native_router)
    app.include_router(admin_router)
    app.include_router(auth_router)
    app.include_router(billing_router)
    app.include_router(datasets_router)
    app.include_router(generate_router)
    app.include_router(training_router)
    app.include_router(deployments_router)
    app.include_router(evaluations_router)
    app.include_router(judging_router)
    app.include_router(meta_router)
    install_ui(app)  # the dashboard under /ui/ (hidden from the OpenAPI schema)
    return app


def app_from_environment() -> FastAPI:
    """One of the API processes of `outrider serve --workers N` (uvicorn's factory): settings from the
    environment, which the command filled with its options."""
    from outrider.config import build_settings
    from outrider.observability.logs import configure_logging

    settings = build_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
