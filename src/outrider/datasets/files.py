"""Version files: the JSONL exactly as uploaded, plus a sidecar offsets index for cheap paging.

Why files and not rows: a download must be byte-identical to the upload (whitespace, key order, escapes,
line endings), and the file *is* those bytes, streamed without re-serialising; the database keeps one
row per version (counts, label statistics, sha256) and stays small however many examples there are.
Paging reads a 16-byte ``(start, end)`` entry per example from ``<version>.idx`` (little-endian uint64
byte offsets of each example's JSON text, line terminator excluded, blank lines skipped) and then one
contiguous byte range of the JSONL: O(limit) whatever the offset.

Append-as-you-go (generation jobs): bytes are appended and fsynced *before* the database commits the new
``example_count`` / ``byte_size``; readers never look past the committed figures, so a crash between
the two leaves at most an uncommitted tail, which ``truncate`` cuts off when the version is finalised.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

ENTRY = struct.Struct("<QQ")
CHUNK = 1 << 20


class VersionFiles:
    """Paths are relative to ``root`` (DATA_DIR/datasets) as stored in the version row."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def data_path(self, rel: str) -> Path:
        return self.root / rel

    def index_path(self, rel: str) -> Path:
        return self.root / (rel.removesuffix(".jsonl") + ".idx")

    def write(self, rel: str, data: bytes, spans: list[tuple[int, int]]) -> None:
        """Write a complete version atomically: temporary files, fsync, then rename into place."""
        target = self.data_path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        for path, content in ((self.index_path(rel), b"".join(ENTRY.pack(*s) for s in spans)), (target, data)):
            temporary = path.with_name(path.name + ".tmp")
            with open(temporary, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)

    def create_empty(self, rel: str) -> None:
        self.write(rel, b"", [])

    def append(self, rel: str, data: bytes, spans: list[tuple[int, int]]) -> None:
        """Append examples (spans are absolute offsets) and make them durable."""
        index = b"".join(ENTRY.pack(*s) for s in spans)
        for path, content in ((self.data_path(rel), data), (self.index_path(rel), index)):
            with open(path, "ab") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())

    def read_examples(self, rel: str, offset: int, limit: int, count: int) -> list[bytes]:
        """The JSON text of examples ``offset .. offset+limit`` (never past the committed ``count``)."""
        stop = min(offset + limit, count)
        if offset >= stop:
            return []
        with open(self.index_path(rel), "rb") as index:
            index.seek(offset * ENTRY.size)
            raw = index.read((stop - offset) * ENTRY.size)
        spans = [ENTRY.unpack_from(raw, i * ENTRY.size) for i in range(stop - offset)]
        first, last = spans[0][0], spans[-1][1]
        with open(self.data_path(rel), "rb") as data:
            data.seek(first)
            block = data.read(last - first)
        return [block[start - first : end - first] for start, end in spans]

    def stream(self, rel: str, size: int) -> Iterator[bytes]:
        """The first ``size`` bytes (the committed part) in chunks."""
        left = size
        with open(self.data_path(rel), "rb") as handle:
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk

    def sha256(self, rel: str, size: int) -> str:
        digest = hashlib.sha256()
        for chunk in self.stream(rel, size):
            digest.update(chunk)
        return digest.hexdigest()

    def truncate(self, rel: str, size: int, count: int) -> None:
        """Cut an uncommitted tail left by a crash mid-append."""
        for path, length in ((self.data_path(rel), size), (self.index_path(rel), count * ENTRY.size)):
            if path.exists() and path.stat().st_size > length:
                with open(path, "r+b") as handle:
                    handle.truncate(length)
                    os.fsync(handle.fileno())

    def delete(self, rel: str) -> None:
        for path in (self.data_path(rel), self.index_path(rel)):
            path.unlink(missing_ok=True)
        folder = self.data_path(rel).parent
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when it was the dataset's last version
