"""Contract fixtures (STYLE C5): one fixture per seam, parametrised over every implementation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.state.base import StateStore
from sync.state.memory import MemoryStore
from sync.state.sync_store import SyncStore
from tests.conftest import private_pg_schema


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
    with private_pg_schema() as url:
        store = SyncStore.from_url(url)
        try:
            yield store
        finally:
            store.db.dispose()
