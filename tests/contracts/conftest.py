"""Contract fixtures (STYLE C5): one fixture per seam, parametrised over every implementation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.state.base import StateStore
from sync.state.memory import MemoryStore
from sync.state.sync_store import SyncStore

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """The same contract on a SQLite file, in memory, and on PostgreSQL (a private schema per test)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        store = SyncStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
        yield store
        store.db.dispose()
        return
    schema = f"contract_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    # Its own schema, so parallel sessions sharing the database never see (or drop) each other's tables.
    store = SyncStore.from_url(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        yield store
    finally:
        store.db.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
