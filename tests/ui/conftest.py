"""Fixtures of the browser tests: chromium (checked before any server starts) and where screenshots go."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.browser import require_chromium, screenshot_dir


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()  # before anything is started: skipped (or failed under CI) at once


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshot_dir(tmp_path_factory)
