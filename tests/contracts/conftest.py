"""Contract fixtures (STYLE C5): one fixture per seam, parametrised over every implementation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.state.base import StateStore
from sync.state.memory import MemoryStore
from tests.conftest import sync_store_on


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """The same contract on a SQLite file, in memory, and on PostgreSQL (a private schema per test)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with sync_store_on(request.param, tmp_path) as store:
        yield store
