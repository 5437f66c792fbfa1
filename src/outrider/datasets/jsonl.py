"""Line-by-line validation of an uploaded JSONL file, keeping only what storage needs (spans, label counts).

Lines end in ``\\n`` (a ``\\r`` before it is tolerated); blank lines are skipped; a UTF-8 byte-order mark
at the start is allowed. The first bad line stops the upload with its 1-based number.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from outrider.core.errors import InvalidRequest
from outrider.core.text import MAX_DEPTH
from outrider.datasets.formats import ExampleError, check_example, example_labels

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ParsedJsonl:
    spans: list[tuple[int, int]]  # byte range of each example's JSON text
    label_stats: dict[str, int]

    @property
    def count(self) -> int:
        return len(self.spans)


def parse_jsonl(data: bytes, task_type: str, *, labels: list[str] | None = None) -> ParsedJsonl:
    """Validate every line as a ``task_type`` example; ``InvalidRequest`` naming the first bad line."""
    spans: list[tuple[int, int]] = []
    counts: Counter = Counter()
    position = len(BOM) if data.startswith(BOM) else 0
    number = 0
    size = len(data)
    while position < size:
        number += 1
        newline = data.find(b"\n", position)
        line_end = size if newline < 0 else newline
        start, end = position, line_end
        position = line_end + 1
        if end > start and data[end - 1 : end] == b"\r":
            end -= 1
        raw = data[start:end]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(f"line {number}: not valid UTF-8 (byte {exc.start + 1})", param="file") from exc
        try:
            example = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})", param="file") from exc
        except RecursionError:  # far past MAX_DEPTH: the decoder itself gives up
            raise InvalidRequest(f"line {number}: nested more than {MAX_DEPTH} levels deep", param="file") from None
        try:
            check_example(task_type, example, labels)
        except ExampleError as exc:
            raise InvalidRequest(f"line {number}: {exc}", param="file") from exc
        counts.update(example_labels(task_type, example))
        spans.append((start, end))
    if not spans:
        raise InvalidRequest("the file holds no examples (one JSON object per line)", param="file")
    return ParsedJsonl(spans, dict(counts))


def encode_examples(examples: list[dict], start: int = 0) -> tuple[bytes, list[tuple[int, int]]]:
    """Compact JSON lines for ``examples`` and their spans, the first line starting at byte ``start``."""
    lines, spans = [], []
    position = start
    for example in examples:
        line = json.dumps(example, ensure_ascii=False).encode()
        spans.append((position, position + len(line)))
        lines.append(line + b"\n")
        position += len(line) + 1
    return b"".join(lines), spans
