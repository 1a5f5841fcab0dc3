"""Bring a state store to the newest schema with Alembic, one process at a time.

Every process that opens the store (each gateway worker, each sync worker) calls
``migrate`` at start. Two of them starting together on an empty store must not
both create the tables, so the upgrade runs under a lock the database itself
holds: a PostgreSQL advisory lock (per schema), or on SQLite an exclusive lock on
a ``<file>.migrate-lock`` file beside the store. An up-to-date store costs one
query on ``alembic_version``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ("MIGRATIONS", "alembic_config", "head_revision", "migrate", "newest_script_revision")

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_WAIT_S = 120
_heads: dict[str, str] = {}
_REVISION = re.compile(r'^revision\s*=\s*"([^"]+)"', re.MULTILINE)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for our migrations (no alembic.ini: the store's URL is never written down)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    if "head" not in _heads:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert head is not None
        _heads["head"] = head
    return _heads["head"]


def newest_script_revision() -> str | None:
    """The revision of the newest script (``versions/NNNN_*.py``), read without loading Alembic.

    ``head_revision`` asks Alembic, whose import costs ~11 MB in every process; an up-to-date
    store is recognised by this instead. The two agree (tests/contracts/test_state_migrations.py).
    """
    scripts = sorted(MIGRATIONS.joinpath("versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    match = _REVISION.search(scripts[-1].read_text(encoding="utf-8")) if scripts else None
    return match.group(1) if match else None


def migrate(engine: sa.Engine) -> None:
    """Upgrade the store behind ``engine`` to ``head``; a no-op when it is there already."""
    newest = newest_script_revision()
    if newest is not None and _stored_revision(engine) == newest:
        return  # at head: one query, and Alembic never loaded
    from alembic import command

    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends; keyed by schema, so private schemas do not queue.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('bridgehead-state:' || current_schema()))"))
        command.upgrade(alembic_config(conn), "head")


def _stored_revision(engine: sa.Engine) -> str | None:
    """The store's revision from ``alembic_version`` (Alembic's own table), None without one."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return versions[0] if len(versions) == 1 else None


@contextmanager
def _file_lock(engine: sa.Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # PostgreSQL locks in the transaction; an in-memory SQLite has one process
        return
    # SQLite's own locking, on a file of its own: portable, and released if the process dies.
    lock = sqlite3.connect(f"{database}.migrate-lock", timeout=_LOCK_WAIT_S, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        lock.close()
