"""The dashboard under ``/ui/``: server-rendered pages (Jinja2) over the same services as the API, and a small
script layer that calls the JSON API with the session cookie and its CSRF header. See docs/dashboard.md."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import RedirectResponse

from .auth import LOGIN_PATH, SignInRequired
from .loop_pages import router as loop_router
from .pages import router as pages_router
from .work_pages import router as work_router

STATIC_DIR = Path(__file__).parent / "static"


async def _to_sign_in(request: Request, _exc: Exception) -> RedirectResponse:
    """To the sign-in page, which returns to the page asked for once signed in (a path of this site only)."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?{urlencode({'next': wanted})}", status_code=303)


def install_ui(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files; a page asked for without a session goes to sign-in."""
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(pages_router)
    app.include_router(work_router)
    app.include_router(loop_router)
