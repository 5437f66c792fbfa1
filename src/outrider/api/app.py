"""The FastAPI application factory: every surface mounted on one app, built from settings."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from outrider import __version__
from outrider.api.admin.routes import router as admin_router
from outrider.api.anthropic.routes import router as anthropic_router
from outrider.api.errors import install_error_handlers
from outrider.api.limits import BodySizeLimit, RateLimitHeaders
from outrider.api.native.routes import router as native_router
from outrider.api.openai.routes import router as openai_router
from outrider.app_state import Services, build_services
from outrider.config import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` may be passed in (the CLI builds them first to print the admin key)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        built = services or build_services(settings)
        app.state.services = built
        try:
            yield
        finally:
            built.close()

    app = FastAPI(
        title="Outrider",
        version=__version__,
        description="Self-hosted platform for small task-specific models.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RateLimitHeaders)
    app.include_router(native_router)
    app.include_router(admin_router)
    app.include_router(anthropic_router)  # before the OpenAI router: both live under /v1
    app.include_router(openai_router)

    @app.get("/health", tags=["meta"])
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    return app
