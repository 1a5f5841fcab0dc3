"""The state store's schema comes from its migrations, and they match the tables the code declares.

A column added to a ``sa.Table`` without a migration fails here (``compare_metadata``
shows the difference), as does a migration that leaves the schema other than declared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync.state import METADATA, StateDatabase
from sync.state.migrate import alembic_config, head_revision
from sync.state.tables import STATE_TABLE_MODULES
from tests.conftest import private_pg_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with private_pg_schema() as url:
        yield url


def _diff(db: StateDatabase) -> list[object]:
    assert STATE_TABLE_MODULES  # every module that declares a table is on METADATA
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, METADATA))


def test_the_migrations_make_exactly_the_declared_tables(empty_store_url: str) -> None:
    db = StateDatabase(empty_store_url)
    try:
        db.migrate()
        assert _diff(db) == []
        names = set(sa.inspect(db.engine).get_table_names())
        assert names == {*METADATA.tables, "alembic_version"}
    finally:
        db.dispose()


def test_a_column_without_a_migration_is_caught(tmp_path: Path) -> None:
    db = StateDatabase(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate()
    extra = sa.MetaData()
    for table in METADATA.tables.values():
        table.to_metadata(extra)
    sa.Table("audit", extra, sa.Column("forgotten", sa.Text), extend_existing=True)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), extra)
    db.dispose()
    assert [d[0] for d in diff] == ["add_column"] and diff[0][3].name == "forgotten"


def test_processes_starting_together_on_an_empty_store_migrate_it_once(empty_store_url: str) -> None:
    stores = [StateDatabase(empty_store_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start_process(db: StateDatabase) -> None:
        start.wait()
        try:
            db.migrate()
        except BaseException as exc:  # collected: a thread's exception would vanish otherwise
            errors.append(exc)

    threads = [threading.Thread(target=start_process, args=(db,)) for db in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with stores[0].engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        assert _diff(stores[0]) == []
    finally:
        for db in stores:
            db.dispose()


def test_a_store_made_before_migrations_keeps_its_rows(tmp_path: Path) -> None:
    """An older Bridgehead's create_all() store: the baseline adopts it, later migrations apply."""
    db = StateDatabase(f"sqlite:///{tmp_path / 'state.db'}")
    with db.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (owner, key, fingerprint, state, expires_at) "
                "VALUES ('o', 'k', 'f', 'done', 1e12)"
            )
        )
        conn.execute(sa.text("DROP TABLE alembic_version"))  # create_all() kept no history
    db.migrate()
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT owner, state, token FROM idempotency_keys")).all()
    assert [tuple(r) for r in rows] == [("o", "done", None)]
    assert _diff(db) == []
    db.dispose()


def test_the_newest_script_is_alembics_head() -> None:
    """``migrate`` recognises an up-to-date store by the newest script's revision, without Alembic."""
    from sync.state.migrate import newest_script_revision

    assert newest_script_revision() == head_revision()
