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


def test_a_new_database_file_and_its_wal_files_are_private(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    db.migrate()
    with db.session() as s:
        q.create_account(s, "someone")
    for name in ("o.db", "o.db-wal", "o.db-shm"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    db.dispose()


def test_an_existing_world_readable_database_is_tightened(tmp_path):
    path = tmp_path / "o.db"
    Database(f"sqlite:///{path}").migrate()
    path.chmod(0o644)
    Database(f"sqlite:///{path}").migrate()
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_server_keeps_its_data_private_to_the_user(tmp_path, base_models_dir):
    """Issue #15: the data directory was created 0755 and outrider.db 0644. Through a real server started
    under the usual 022 umask: the directory it creates is 0700, the database and its WAL files 0600, and a
    dataset uploaded over HTTP is readable by its owner only; an existing open directory is tightened."""
    import json
    import os
    import stat

    from tests.conftest import make_settings, start_server

    previous = os.umask(0o022)
    try:
        data_dir = tmp_path / "fresh" / "data"
        running = start_server(make_settings(data_dir, base_models_dir))
        try:
            with running.client() as admin:
                body = json.dumps({"text": "The kettle broke.", "label": "negative"}) + "\n"
                params = {"name": "private", "task_type": "classification"}
                response = admin.post("/datasets", params=params, content=body)
                assert response.status_code == 201, response.text
        finally:
            running.stop()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for name in ("outrider.db", "outrider.db-wal", "outrider.db-shm"):
            if (data_dir / name).exists():
                assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        written = [p for p in (data_dir / "datasets").rglob("*") if p.is_file()]
        assert written, "the upload wrote no file"
        for path in [*written, *(p for p in (data_dir / "datasets").rglob("*") if p.is_dir())]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))

        os.umask(0o022)
        opened = tmp_path / "opened"
        opened.mkdir(mode=0o755)
        opened.chmod(0o755)
        make_settings(opened, base_models_dir)
        assert stat.S_IMODE(opened.stat().st_mode) == 0o700
    finally:
        os.umask(previous)


def test_migrations_match_the_table_definitions_on_postgresql(postgres):
    """The same migrations create the same tables on PostgreSQL, and a second run finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from outrider.storage.tables import Base

    db = Database(postgres.create_database())
    db.migrate()
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []
