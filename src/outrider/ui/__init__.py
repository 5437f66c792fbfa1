"""The dashboard under ``/ui/``: server-rendered pages (Jinja2) over the same services as the API, and a small
script layer that calls the JSON API with the session cookie and its CSRF header. See docs/dashboard.md."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from outrider.api.errors import validation_message

from .auth import LOGIN_PATH, SignInRequired
from .loop_pages import router as loop_router
from .pages import router as pages_router
from .render import render
from .work_pages import router as work_router

STATIC_DIR = Path(__file__).parent / "static"


async def _to_sign_in(request: Request, _exc: Exception) -> RedirectResponse:
    """To the sign-in page, which returns to the page asked for once signed in (a path of this site only)."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?{urlencode({'next': wanted})}", status_code=303)


def install_ui(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files; a page asked for without a session goes to sign-in, and one
    asked for with a malformed value (an edited address) gets an error page, not the API's JSON."""
    app.add_exception_handler(SignInRequired, _to_sign_in)
    api_handler = app.exception_handlers[RequestValidationError]

    async def invalid(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith("/ui/"):
            return await api_handler(request, exc)
        message, _ = validation_message(exc)
        return render(request, "error.html", {"title": "Invalid address", "message": message}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(pages_router)
    app.include_router(work_router)
    app.include_router(loop_router)
