"""Playwright with Debian's chromium (never `playwright install`): where it is missing, browser tests are
skipped with the reason, except under CI (``CI`` set), where they fail. Screenshots go to
``OUTRIDER_SCREENSHOT_DIR`` when set (docs/dashboard/ is made that way), else to a temporary folder."""

from __future__ import annotations

import os
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
