"""The ``offset`` query parameter of every paginated list, bounded.

An unbounded offset reaches SQLite as a 64-bit integer: ``9223372036854775808`` raised ``OverflowError``
(a 500) before the bound (issue #15). A billion rows is past any real list, and far inside what the
database and Python's slicing accept, so a larger offset is a 422 naming ``offset``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query

MAX_OFFSET = 1_000_000_000


def offset_query() -> Any:
    return Query(0, ge=0, le=MAX_OFFSET, description=f"Rows to skip (0 to {MAX_OFFSET:,}).")
