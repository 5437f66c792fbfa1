"""Template rendering: one Jinja2 environment (autoescaped), filters for money, times and latencies, and the
context every page gets (the user, the role, the navigation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from outrider.core.errors import OutriderError
from outrider.datasets.formats import TASK_TYPES as DATASET_TASK_TYPES
from outrider.services.accounts import OPTIMIZE_MODES, ROLES, Principal

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

NAV = [
    ("overview", "Overview", "/ui/"),
    ("playground", "Playground", "/ui/playground"),
    ("history", "History", "/ui/history"),
    ("usage", "Usage", "/ui/usage"),
    ("keys", "Keys", "/ui/keys"),
    ("models", "Models", "/ui/models"),
    ("datasets", "Datasets", "/ui/datasets"),
    ("training", "Training", "/ui/training"),
    ("review", "Review", "/ui/review"),
    ("deployments", "Deployments", "/ui/deployments"),
    ("evaluations", "Evaluations", "/ui/evaluations"),
    ("users", "Users", "/ui/users"),
]
# Entries only owners see (the server refuses the pages to other roles too).
OWNER_ONLY = {"users"}


def usd(value: float | None) -> str:
    """Dollars to the micro-dollar (costs are often fractions of a cent), at least to the cent."""
    if value is None:
        return "-"
    whole, _, cents = f"{value:,.6f}".rstrip("0").partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


templates.env.filters.update(usd=usd, when=when, ms=ms, percent=percent)
# Choices the forms offer, from the code that checks them.
MODE_NAMES = {"balanced": "Balanced", "quality": "Best quality", "cost": "Cheapest", "latency": "Fastest"}
templates.env.globals.update(
    dataset_task_types=DATASET_TASK_TYPES,
    roles=ROLES,
    optimize_modes=[(mode, MODE_NAMES.get(mode, mode)) for mode in OPTIMIZE_MODES],
)

# Pages load only their own scripts and styles, call only this server, and are never framed (clickjacking).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context=context, status_code=status_code, headers=PAGE_HEADERS)


def page(
    request: Request, who: Principal, template: str, active: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    context = {
        "who": who,
        "user": who.user,
        "can_write": who.role != "viewer",
        "nav": [entry for entry in NAV if entry[0] not in OWNER_ONLY or who.role == "owner"],
        "active": active,
        **context,
    }
    return render(request, template, context, status_code)


def error_page(request: Request, who: Principal, active: str, exc: OutriderError) -> HTMLResponse:
    """A refused read (another account's id, a role without the right) as a page, with the error's status."""
    return page(request, who, "error.html", active, status_code=exc.status_code, message=exc.message)


def query_with(params: dict[str, Any], **changes: Any) -> str:
    """The query string of ``params`` with ``changes`` applied (pager links keep the filters)."""
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return urlencode(merged)


def parse_day(value: str | None, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` filter value as UTC midnight (``end``: the next midnight); empty is no filter."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


@dataclass(frozen=True)
class Filters:
    """A list page's filters as typed in its form (echoed back in the form and in the pager's links)."""

    model_id: str = ""
    status: str = ""
    surface: str = ""
    task: str = ""
    since: str = ""
    until: str = ""

    @property
    def params(self) -> dict[str, str]:
        return asdict(self)

    def value(self, name: str) -> str | None:
        return getattr(self, name) or None

    @property
    def since_at(self) -> datetime | None:
        return parse_day(self.since)

    @property
    def until_at(self) -> datetime | None:
        return parse_day(self.until, end=True)


def list_filters(
    model_id: str = Query("", max_length=300),
    status: str = Query("", max_length=20),
    surface: str = Query("", max_length=20),
    task: str = Query("", max_length=20),
    since: str = Query("", max_length=10),
    until: str = Query("", max_length=10),
) -> Filters:
    return Filters(model_id, status, surface, task, since, until)


ListFilters = Annotated[Filters, Depends(list_filters)]
PageNo = Annotated[int, Query(alias="page", ge=1, le=1_000_000)]


def pager(params: dict[str, Any], page_no: int, total: int, per_page: int) -> dict[str, Any]:
    """The pager's context (pager.html): page numbers and the links to the pages around this one."""
    pages = max(1, -(-total // per_page))
    return {
        "page_no": page_no,
        "pages": pages,
        "prev_query": query_with(params, page=page_no - 1) if page_no > 1 else None,
        "next_query": query_with(params, page=page_no + 1) if page_no < pages else None,
    }


templates.env.globals.update(query_with=query_with)  # links that keep a list's filters
