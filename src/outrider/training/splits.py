"""The validation split: a deterministic held-out fraction, chosen by seed."""

from __future__ import annotations

import random
from typing import TypeVar

T = TypeVar("T")


def held_out_count(total: int, fraction: float) -> int:
    """How many of ``total`` examples to hold out: at least one when asked for any, never all of them."""
    if fraction <= 0 or total < 2:
        return 0
    if fraction >= 1:
        raise ValueError("the validation fraction must be below 1")
    return min(total - 1, max(1, round(total * fraction)))


def split_records(records: list[T], fraction: float, seed: int = 0) -> tuple[list[T], list[T]]:
    """``(train, validation)``: the same records, seed and fraction always give the same split.

    The order is shuffled by ``seed`` first (datasets are often sorted by label or source), and each part
    keeps the shuffled order."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = held_out_count(len(records), fraction)
    return [records[i] for i in order[held:]], [records[i] for i in order[:held]]
