from __future__ import annotations

from collections.abc import Iterator

import pytest

from outrider.storage.db import Database
from tests.databases import BACKENDS, database_url, migrated_database


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    with migrated_database(tmp_path, database_url(request, tmp_path)) as database:
        yield database
