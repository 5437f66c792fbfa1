"""The rate-limit groups, their configured limits (``limits`` notation, such as ``60/minute``) and the figures of
one window.

Apart from the rate-limit service so that settings can check them without importing services (which import
the database, which reads settings).
"""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItem, parse

GROUPS = ("inference", "chat", "embeddings", "generate", "training")


def parse_limits(configured: dict[str, str]) -> dict[str, RateLimitItem]:
    unknown = set(configured) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown rate-limit groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
    return {group: parse(value) for group, value in configured.items() if value}


# A window a request is counted in: its limit and its identifiers (``Windows.hit_all``).
Window = tuple[RateLimitItem, tuple[str, ...]]


@dataclass(frozen=True)
class WindowStats:
    reset_time: float  # when the oldest hit in the window leaves it (epoch seconds)
    remaining: int
