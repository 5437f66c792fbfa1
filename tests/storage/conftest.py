from __future__ import annotations

from collections.abc import Iterator

import pytest

from outrider.storage.db import Database
from tests.databases import migrated_database


@pytest.fixture
def db(tmp_path) -> Iterator[Database]:
    with migrated_database(tmp_path) as database:
        yield database
