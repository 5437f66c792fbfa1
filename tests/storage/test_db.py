from sqlalchemy import inspect, text

from outrider.storage.db import Database
from outrider.storage.queries import accounts as q


def test_migrations_create_tables_in_wal_mode_and_are_idempotent(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    db.migrate()  # second start: nothing to do, nothing breaks
    tables = set(inspect(db.engine).get_table_names())
    assert {"accounts", "api_keys", "inferences", "inference_feedback", "alembic_version"} <= tables
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_failed_transaction_writes_nothing(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    try:
        with db.session() as s:
            q.create_account(s, "half")
            raise RuntimeError("crash mid-transaction")
    except RuntimeError:
        pass
    with db.session() as s:
        assert q.get_account_by_name(s, "half") is None


def test_migrations_match_the_table_definitions(tmp_path):
    """Every table and column in ``tables.py`` is created by a migration, and nothing else is."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from outrider.storage.tables import Base

    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
