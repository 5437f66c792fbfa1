"""Playwright with Debian's chromium (never `playwright install`): where it is missing, browser tests are
skipped with the reason, except under CI (``CI`` set), where they fail. Screenshots go to
``OUTRIDER_SCREENSHOT_DIR`` when set (docs/dashboard/ is made that way), else to a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("OUTRIDER_CHROMIUM", "/usr/bin/chromium"))
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"no chromium at {CHROMIUM} (apt-get install chromium; scripts/test installs it when run as root)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("OUTRIDER_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def snap(page, shots: Path, name: str) -> None:
    """A full-page screenshot of ``page`` as ``shots/name.png``."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


@contextmanager
def browser_tab(chromium: Path, base_url: str, timeout_ms: int) -> Iterator:
    """One chromium page on ``base_url`` at desktop size; every console error and uncaught exception is kept
    in ``tab.console_errors`` (the modules' last tests check it is empty)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium))
        context = browser.new_context(viewport=DESKTOP, base_url=base_url)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        tab = context.new_page()
        tab.set_default_timeout(timeout_ms)
        tab.console_errors = []
        tab.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: tab.console_errors.append(str(e)))
        yield tab
        context.close()
        browser.close()


def dashboard_server(folder: Path, base_models_dir: Path, demo_model_dir: Path, password: str, **extra: object):
    """A real server for a module's browser tests: the admin signs in with ``password``, the demo extractor is
    served with prices, and rate limits stay out of the way (``rate_limits`` adds to them)."""
    from tests.conftest import GENEROUS_LIMITS, PRICES, make_settings, start_server

    limits = {**GENEROUS_LIMITS, **extra.pop("rate_limits", {})}  # type: ignore[dict-item]
    settings = make_settings(
        folder,
        base_models_dir,
        admin_password=password,
        model_dirs=[demo_model_dir],
        model_prices=PRICES,
        rate_limits=limits,
        **extra,
    )
    return start_server(settings)


def sign_in(tab, username: str, password: str, *, lands_on: str = r"/ui/$") -> None:
    """Through the sign-in form, waiting for the page it sends to."""
    import re

    tab.goto("/ui/login")
    tab.get_by_label("Username or email").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(re.compile(lands_on))
