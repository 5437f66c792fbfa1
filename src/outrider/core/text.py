"""Text that can be stored and rendered: valid Unicode, finite numbers, bounded nesting.

JSON's ``\\uXXXX`` escapes can spell a lone UTF-16 surrogate (U+D800..U+DFFF), which Python's ``json``
decodes into a ``str`` that no UTF-8 encoder accepts: stored, it breaks every later read that renders it.
JSON has no NaN or Infinity either, though Python's ``json`` reads them. So request bodies and uploaded
examples are checked once, at the boundary (``find_invalid``), and whatever an older version stored is
repaired when read back (``repair``: a lone surrogate becomes U+FFFD).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper JSON is refused: no request or example needs it, and deep values cost recursion everywhere after.
MAX_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
# What the escaped form of a surrogate looks like in stored JSON text (``json.dumps`` escapes them).
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPED_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")

Path = tuple[str | int, ...]
_SHOWN = 6  # how much of a too-deep value's path an error names


def lone_surrogate(text: str) -> str | None:
    """``U+D800``-style name of the first lone surrogate in ``text``, or None when it is valid Unicode."""
    if text.isascii():  # the common case, and far cheaper than the search
        return None
    found = _SURROGATE.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def find_invalid(value: Any, *, max_depth: int = MAX_DEPTH) -> tuple[Path, str] | None:
    """``(path, problem)`` for the first string (or object key) holding a lone surrogate, the first NaN or
    infinite number, or the first value nested deeper than ``max_depth``; None when ``value`` is clean.
    ``value`` is what ``json.loads`` returns (plain dicts, lists, strings and numbers)."""
    if _clean(value, max_depth):  # the usual answer, found without building paths (microseconds for a chat body)
        return None
    return _walk(value, (), max_depth, max_depth)


def _clean(value: Any, depth_left: int) -> bool:
    kind = type(value)
    if kind is str:
        return value.isascii() or _SURROGATE.search(value) is None
    if kind is dict:
        if depth_left <= 0:
            return False
        for key, item in value.items():
            if type(key) is str and not (key.isascii() or _SURROGATE.search(key) is None):
                return False
            if not _clean(item, depth_left - 1):
                return False
        return True
    if kind is list:
        if depth_left <= 0:
            return False
        for item in value:  # noqa: SIM110 (a loop, not all(<generator>): measurably faster on the hot path)
            if not _clean(item, depth_left - 1):
                return False
        return True
    if kind is float:
        return math.isfinite(value)
    return True


def _walk(value: Any, path: Path, depth_left: int, limit: int) -> tuple[Path, str] | None:
    if isinstance(value, str):
        bad = lone_surrogate(value)
        return (path, f"is not valid Unicode (a lone surrogate, {bad})") if bad else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "must be a finite number (JSON has no NaN or Infinity)")
    if isinstance(value, dict):
        if depth_left <= 0:
            return path[:_SHOWN], f"is nested more than {limit} levels deep"
        for key, item in value.items():
            if isinstance(key, str) and lone_surrogate(key):
                # The path names the key repaired: it is shown to the client, and must render.
                return (*path, repair_text(key)), "is a key that is not valid Unicode (a lone surrogate)"
            found = _walk(item, (*path, key), depth_left - 1, limit)
            if found:
                return found
        return None
    if isinstance(value, list):
        if depth_left <= 0:
            return path[:_SHOWN], f"is nested more than {limit} levels deep"
        for index, item in enumerate(value):
            found = _walk(item, (*path, index), depth_left - 1, limit)
            if found:
                return found
    return None


def dotted(path: Path) -> str:
    """``messages[0].content`` for ``("messages", 0, "content")``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def repair_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (a valid pair, should one occur, is kept)."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def repair(value: Any) -> Any:
    """``value`` with every string (and key) repaired; the same object when nothing needed it."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, dict):
        pairs = [(repair_text(k) if isinstance(k, str) else k, repair(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, list):
        items = [repair(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def loads_repaired(text: str | bytes) -> Any:
    """``json.loads`` for text read back from storage: lone surrogates an older version stored become
    U+FFFD, so rendering the value cannot fail. Text with no escaped surrogate is not walked at all."""
    value = json.loads(text)
    escaped = _ESCAPED_SURROGATE_BYTES if isinstance(text, bytes) else _ESCAPED_SURROGATE
    return repair(value) if escaped.search(text) else value
