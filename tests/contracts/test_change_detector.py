"""The ChangeDetector contract (sync/changes/base.py) on the same data for every detector that runs on SQLite.

ITEMMAST gets the updated-at pair and rowversion-like column of
``tests/sync/test_high_water.py``; legacy writes below stamp them as an
application would. Change Tracking needs SQL Server: its bookkeeping is tested
against a fake change source in ``tests/sync/test_change_tracking_tsql.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from legacy_adapters.database import Database
from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import Reader
from sync.changes import make_detector
from sync.changes.base import Change, ChangeDetector
from sync.config import DetectorConfig
from sync.state.memory import MemoryStore
from tests.conftest import sync_store_on
from tests.sync.test_high_water import add_change_columns

SYNCED = ("item_number", "description", "price")
BATCH = 16
CONFIGS = {
    "snapshot_hash": DetectorConfig(kind="snapshot_hash", batch_size=BATCH),
    "high_water_updated_at": DetectorConfig(kind="high_water", column="changed_at", batch_size=BATCH),
    "high_water_rowversion": DetectorConfig(kind="high_water", column="row_version", batch_size=BATCH),
}


class Legacy:
    """The legacy table, written as the application would: every write stamps the change columns."""

    def __init__(self, path: Path) -> None:
        self.path, self.day = path, 20260120

    def execute(self, statement: str, *params: Any) -> list[Any]:
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute(statement, params).fetchall()
        conn.close()
        return rows

    def item(self, n: int) -> str:
        return str(self.execute("SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1 OFFSET ?", n)[0][0])

    def update(self, itemno: str, description: str) -> None:
        self.day += 1
        stamp = "UPDDT = ?, ROWVER = (SELECT MAX(ROWVER) + 1 FROM ITEMMAST)"
        self.execute(f"UPDATE ITEMMAST SET DESCR = ?, {stamp} WHERE ITEMNO = ?", description, self.day, itemno)


@pytest.fixture
def legacy(writable_db: Path) -> Legacy:
    return Legacy(writable_db)


STORES = {"snapshot_hash": ("memory", "sqlite", "postgresql")}
"""State stores per detector beyond memory: the snapshot diff's bulk comparison is SQL of each store's own."""


@pytest.fixture(params=[(kind, store) for kind in CONFIGS for store in STORES.get(kind, ("memory",))], ids=str)
def detector(request: pytest.FixtureRequest, writable_db: Path, tmp_path: Path) -> Iterator[ChangeDetector]:
    kind, store_kind = request.param
    mapping = add_change_columns(writable_db, tmp_path)
    items = bind_version(mapping, "v1")["items"]
    database = Database(mapping.database)
    fields = tuple(items.fields[n] for n in SYNCED)
    with ExitStack() as stack:
        store = MemoryStore() if store_kind == "memory" else stack.enter_context(sync_store_on(store_kind, tmp_path))
        yield make_detector(CONFIGS[kind], "items", items, fields, Reader(database), store)
    database.dispose()


def run(det: ChangeDetector, *, deliver: bool = True) -> list[Change]:
    """One pass, then commit and store what was "delivered", as the engine does."""
    batches = list(det.detect())
    assert all(0 < len(b) <= BATCH for b in batches), "batches must be non-empty and bounded"
    changes = [c for b in batches for c in b]
    det.commit()
    if deliver:
        store = det.store  # type: ignore[attr-defined]
        store.accept("items", {c.key: c.fingerprint for c in changes if c.fingerprint})
        store.forget("items", [c.key for c in changes if c.op == "delete"])
    return changes


def test_first_pass_reports_every_row_once_then_nothing(detector: ChangeDetector) -> None:
    first = run(detector)
    assert len(first) == 200 and len({c.key for c in first}) == 200
    assert all(c.op == "upsert" and c.row and c.fingerprint for c in first)
    assert all(set(SYNCED) <= set(c.row or ()) for c in first)
    assert run(detector) == []


def test_an_update_is_reported_with_its_new_values(detector: ChangeDetector, legacy: Legacy) -> None:
    run(detector)
    itemno = legacy.item(7)
    legacy.update(itemno, "RENAMED")
    (change,) = run(detector)
    assert change.row is not None
    assert (change.key, change.op, change.row["description"]) == (f'["{itemno.strip()}"]', "upsert", "RENAMED")


def test_an_insert_is_reported(detector: ChangeDetector, legacy: Legacy) -> None:
    run(detector)
    legacy.execute(
        "INSERT INTO ITEMMAST VALUES ('ZNEW-0001      ', 'NEW', 'EA ', 100, 1, 'A', 0, '000000001', 20260201, 0, 999)"
    )
    assert [(c.key, c.op) for c in run(detector)] == [('["ZNEW-0001"]', "upsert")]


def test_what_was_not_delivered_is_reported_again(detector: ChangeDetector, legacy: Legacy) -> None:
    run(detector)
    legacy.update(legacy.item(3), "NOT YET SENT")
    first = run(detector, deliver=False)
    assert [c.key for c in run(detector)] == [c.key for c in first] and len(first) == 1


def test_a_delete_is_reported_by_detectors_that_see_deletes(detector: ChangeDetector, legacy: Legacy) -> None:
    run(detector)
    itemno = legacy.item(11)
    legacy.execute("DELETE FROM ITEMMAST WHERE ITEMNO = ?", itemno)
    changes = [(c.key, c.op) for c in run(detector)]
    assert changes == ([(f'["{itemno.strip()}"]', "delete")] if detector.sees_deletes else [])
