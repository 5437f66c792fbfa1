"""Datasets: named per account, versioned, immutable versions; upload, import, page, download, delete, and
versions that jobs append to as they produce examples.

Every method takes the owning ``account_id``: another account's dataset is simply not found (404).
Storage layout and why: ``datasets/files.py``. Writing a complete version is atomic: the files are
written and renamed into place first, the version row committed last (a crash in between leaves an
unreferenced file, never a visible half-version); on a database error the files are removed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from outrider.config import Settings
from outrider.core.errors import Conflict, InvalidRequest, NotFound
from outrider.core.ids import new_id
from outrider.core.text import loads_repaired
from outrider.datasets.files import VersionFiles
from outrider.datasets.formats import TASK_TYPES, count_labels, validate_example
from outrider.datasets.importers import import_examples
from outrider.datasets.jsonl import encode_examples, parse_jsonl
from outrider.storage.db import Database
from outrider.storage.queries import datasets as q
from outrider.storage.queries import now
from outrider.storage.records import Dataset, DatasetVersion

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
MAX_PAGE = 1000
VERSION_RETRIES = 5


@dataclass(frozen=True)
class ExamplePage:
    dataset: Dataset
    version: DatasetVersion
    examples: list[dict]
    offset: int
    limit: int


@dataclass(frozen=True)
class Download:
    dataset: Dataset
    version: DatasetVersion
    chunks: Iterator[bytes]


def check_name(name: str) -> None:
    if not NAME.match(name or ""):
        raise InvalidRequest(
            "name must be 1-200 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
            param="name",
        )


def check_task_type(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise InvalidRequest(f"task_type must be one of {', '.join(TASK_TYPES)}", param="task_type")


class DatasetService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.files = VersionFiles(settings.data_dir / "datasets")

    # -- writing complete versions ---------------------------------------------------------------------
    async def upload(
        self, account_id: str, name: str, task_type: str, data: bytes, *, source: str = "upload"
    ) -> tuple[Dataset, DatasetVersion]:
        """Validate ``data`` line by line and store it, byte for byte, as the next version of ``name``."""
        check_name(name)
        check_task_type(task_type)
        return await asyncio.to_thread(self._store_complete, account_id, name, task_type, data, source)

    async def import_file(self, account_id: str, name: str, fmt: str, data: bytes) -> tuple[Dataset, DatasetVersion]:
        """CoNLL (-> ner) or CSV (-> classification) converted to JSONL and stored as the next version."""
        check_name(name)
        task_type, examples = await asyncio.to_thread(import_examples, fmt, data)
        encoded, _ = encode_examples(examples)
        return await asyncio.to_thread(self._store_complete, account_id, name, task_type, encoded, "import")

    async def save_examples(
        self, account_id: str, name: str, task_type: str, examples: list[dict], *, source: str
    ) -> tuple[Dataset, DatasetVersion]:
        check_name(name)
        return await asyncio.to_thread(self.store_examples, account_id, name, task_type, examples, source)

    def store_examples(
        self, account_id: str, name: str, task_type: str, examples: list[dict], source: str
    ) -> tuple[Dataset, DatasetVersion]:
        """``save_examples`` for code already off the event loop (blocking)."""
        check_name(name)
        encoded, _ = encode_examples(examples)
        return self._store_complete(account_id, name, task_type, encoded, source)

    def _store_complete(
        self, account_id: str, name: str, task_type: str, data: bytes, source: str
    ) -> tuple[Dataset, DatasetVersion]:
        parsed = parse_jsonl(data, task_type)  # raises before anything is stored
        version_id = new_id("dsv")
        rel = f"{account_id}/{version_id}.jsonl"
        self.files.write(rel, data, parsed.spans)
        new = q.NewVersion(
            id=version_id,
            task_type=task_type,
            status="ready",
            source=source,
            path=rel,
            example_count=parsed.count,
            byte_size=len(data),
            sha256=self.files.sha256(rel, len(data)),
            label_stats=parsed.label_stats,
        )
        try:
            return self._add_version(account_id, name, new)
        except BaseException:
            self.files.delete(rel)
            raise

    def _add_version(self, account_id: str, name: str, new: q.NewVersion) -> tuple[Dataset, DatasetVersion]:
        for attempt in range(VERSION_RETRIES):
            try:
                with self.db.session() as s:
                    return q.add_version(s, account_id, name, new)
            except IntegrityError:  # a concurrent writer took the name or the version number: retry
                if attempt == VERSION_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    # -- reading ----------------------------------------------------------------------------------------
    async def list(self, account_id: str) -> list[Dataset]:
        def read() -> list[Dataset]:
            with self.db.session() as s:
                return q.list_datasets(s, account_id)

        return await asyncio.to_thread(read)

    async def get(self, account_id: str, name: str) -> Dataset:
        return await asyncio.to_thread(self._get, account_id, name)

    def _get(self, account_id: str, name: str) -> Dataset:
        with self.db.session() as s:
            found = q.get_dataset(s, account_id, name)
        if found is None or not found.versions:
            raise NotFound(f"dataset '{name}' not found")
        return found

    def _version(self, account_id: str, name: str, version: int | str | None) -> tuple[Dataset, DatasetVersion]:
        """``version`` is a number, ``"latest"`` or None (the latest)."""
        dataset = self._get(account_id, name)
        if version in (None, "latest"):
            return dataset, dataset.versions[-1]
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise InvalidRequest("version must be a number or 'latest'", param="version") from None
        for candidate in dataset.versions:
            if candidate.version == number:
                return dataset, candidate
        raise NotFound(f"dataset '{name}' has no version {number}")

    async def version(self, account_id: str, name: str, version: int | str | None) -> tuple[Dataset, DatasetVersion]:
        return await asyncio.to_thread(self._version, account_id, name, version)

    def version_blocking(self, account_id: str, name: str, version: int | str | None) -> tuple[Dataset, DatasetVersion]:
        return self._version(account_id, name, version)

    async def examples(
        self, account_id: str, name: str, version: int | str | None, *, offset: int, limit: int
    ) -> ExamplePage:
        if offset < 0:
            raise InvalidRequest("offset must be >= 0", param="offset")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")

        def read() -> ExamplePage:
            dataset, found = self._version(account_id, name, version)
            lines = self.files.read_examples(found.path, offset, limit, found.example_count)
            # loads_repaired: a lone surrogate stored before uploads were checked is shown as U+FFFD, not a 500.
            return ExamplePage(dataset, found, [loads_repaired(line) for line in lines], offset, limit)

        return await asyncio.to_thread(read)

    async def download(self, account_id: str, name: str, version: int | str | None) -> Download:
        """The committed bytes of a version, exactly as stored."""
        dataset, found = await self.version(account_id, name, version)
        return Download(dataset, found, self.files.stream(found.path, found.byte_size))

    def read_all(self, version: DatasetVersion) -> list[dict]:
        """Every committed example of a version (trainers read datasets through this)."""
        lines = self.files.read_examples(version.path, 0, version.example_count, version.example_count)
        return [loads_repaired(line) for line in lines]

    # -- deleting ---------------------------------------------------------------------------------------
    async def delete(self, account_id: str, name: str, version: int | str | None = None) -> list[DatasetVersion]:
        """Delete a dataset (every version) or one version; a version a job is still writing is a 409."""

        def remove() -> list[DatasetVersion]:
            if version is None:
                dataset, one = self._get(account_id, name), None
            else:
                dataset, one = self._version(account_id, name, version)
            doomed = [one] if one is not None else list(dataset.versions)
            building = [v.version for v in doomed if v.status == "building"]
            if building:
                raise Conflict(f"version {building[0]} of '{name}' is still being written by a job; stop it first")
            with self.db.session() as s:
                if one is None or len(dataset.versions) == 1:
                    q.delete_dataset(s, dataset.id)
                else:
                    q.delete_version(s, one.id)
            for gone in doomed:
                self.files.delete(gone.path)
            return doomed

        return await asyncio.to_thread(remove)

    # -- versions written as a job produces examples ----------------------------------------------------
    async def open_append(
        self, account_id: str, name: str, task_type: str, *, source: str, job_id: str | None, labels: list[str] | None
    ) -> VersionWriter:
        check_name(name)
        check_task_type(task_type)

        def open_version() -> tuple[Dataset, DatasetVersion]:
            version_id = new_id("dsv")
            rel = f"{account_id}/{version_id}.jsonl"
            self.files.create_empty(rel)
            new = q.NewVersion(
                id=version_id, task_type=task_type, status="building", source=source, path=rel, job_id=job_id
            )
            return self._add_version(account_id, name, new)

        dataset, version = await asyncio.to_thread(open_version)
        return VersionWriter(self, dataset, version, labels)

    def finalize(self, version_id: str, status: str) -> DatasetVersion | None:
        """Close a version: cut any uncommitted tail, record its sha256, set ``ready`` or ``partial``.
        Also how a version left ``building`` by a dead worker becomes a readable ``partial`` one."""
        with self.db.session() as s:
            found = q.get_version(s, version_id)
        if found is None or found.status != "building":
            return found
        self.files.truncate(found.path, found.byte_size, found.example_count)
        digest = self.files.sha256(found.path, found.byte_size)
        with self.db.session() as s:
            return q.update_version(s, version_id, status=status, sha256=digest, finished_at=now())


class VersionWriter:
    """Appends examples to one ``building`` version; each ``append`` is durable and committed when it returns."""

    def __init__(self, service: DatasetService, dataset: Dataset, version: DatasetVersion, labels: list[str] | None):
        self.service = service
        self.dataset = dataset
        self.version = version
        self.labels = labels
        self.count = 0
        self.size = 0
        self.rejected = 0
        self._stats: Counter = Counter()

    async def append(self, examples: list[dict]) -> int:
        """Store the valid examples (an invalid one is dropped and counted in ``rejected``); returns the count."""
        task_type = self.version.task_type
        valid = [e for e in examples if validate_example(task_type, e, self.labels) is None]
        self.rejected += len(examples) - len(valid)
        if not valid:
            return self.count
        data, spans = encode_examples(valid, start=self.size)
        stats = count_labels(task_type, valid, Counter(self._stats))

        def write() -> None:
            files = self.service.files
            files.truncate(self.version.path, self.size, self.count)  # a tail left by a failed commit
            files.append(self.version.path, data, spans)  # durable before it is committed
            with self.service.db.session() as s:
                q.update_version(
                    s,
                    self.version.id,
                    example_count=self.count + len(valid),
                    byte_size=self.size + len(data),
                    label_stats=dict(stats),
                )

        await asyncio.to_thread(write)
        self.count += len(valid)
        self.size += len(data)
        self._stats = stats
        return self.count

    async def close(self, status: str) -> DatasetVersion | None:
        return await asyncio.to_thread(self.service.finalize, self.version.id, status)
