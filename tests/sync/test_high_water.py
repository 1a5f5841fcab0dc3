"""High-water detector on a copy of the demo DB with an updated-at pair and a rowversion-like column added.

ITEMMAST gains ``UPDDT``/``UPDTM`` (YYYYMMDD + HHMMSS, the usual legacy "last
changed" pair, mapped as one ``date_time`` field) and ``ROWVER`` (an integer
bumped on every write, as a SQL Server ``rowversion`` is). The boundary tests
stamp many rows with one second, the case a ``>`` cursor loses and a naive
``>=`` cursor sends twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from legacy_adapters.database import Database
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, load_mapping
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.reader import Reader
from sync.changes import HighWaterDetector
from sync.changes.base import Change
from sync.config import DetectorConfig, load_sync_config
from sync.connectors.shopify.fake import FakeShopify
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ

SKU_LINE = "          sku: {column: SKU, type: integer, transform: zero_padded, length: 9}\n"
EXTRA_FIELDS = (
    "          changed_at: {column: UPDDT, time_column: UPDTM, type: datetime, transform: date_time,"
    " timezone: Europe/London}\n"
    "          row_version: {column: ROWVER, type: integer}\n"
)
SYNCED = ("item_number", "description", "price")
"""The fields a sync would send: the high-water column is not among them."""


def sql(db: Path, statement: str, *params: Any) -> list[Any]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(statement, params).fetchall()
    conn.close()
    return rows


def add_change_columns(writable_db: Path, tmp_path: Path) -> Mapping:
    """Add UPDDT/UPDTM and ROWVER to ITEMMAST and return the demo mapping with fields for them."""
    sql(writable_db, "ALTER TABLE ITEMMAST ADD COLUMN UPDDT INTEGER NOT NULL DEFAULT 20260115")
    sql(writable_db, "ALTER TABLE ITEMMAST ADD COLUMN UPDTM INTEGER NOT NULL DEFAULT 90000")
    sql(writable_db, "ALTER TABLE ITEMMAST ADD COLUMN ROWVER INTEGER NOT NULL DEFAULT 0")
    sql(writable_db, "UPDATE ITEMMAST SET ROWVER = rowid")
    text = DEMO_MAPPING_PATH.read_text()
    assert SKU_LINE in text, "the demo mapping changed: update this test's patch"
    patched = tmp_path / "bridgehead.yaml"
    patched.write_text(text.replace(SKU_LINE, SKU_LINE + EXTRA_FIELDS))
    return load_mapping(patched, demo_environ(writable_db))


@pytest.fixture
def hw_mapping(writable_db: Path, tmp_path: Path) -> Mapping:
    return add_change_columns(writable_db, tmp_path)


@pytest.fixture
def items(hw_mapping: Mapping) -> Resource:
    return bind_version(hw_mapping, "v1")["items"]


@pytest.fixture
def reader(hw_mapping: Mapping) -> Iterator[Reader]:
    database = Database(hw_mapping.database)
    yield Reader(database)
    database.dispose()


class CountingReader(Reader):
    """Counts rows read, to show a pass reads only rows at or above the mark."""

    read = 0

    def stream(self, query: Any) -> Iterator[dict[str, Any]]:
        for row in super().stream(query):
            self.read += 1
            yield row


def make(items: Resource, reader: Reader, store: SyncStore, column: str, batch: int = 7) -> HighWaterDetector:
    fields = tuple(items.fields[n] for n in SYNCED)
    return HighWaterDetector("items", items, fields, reader, store, column, batch)


def run(det: HighWaterDetector, store: SyncStore, *, deliver: bool | set[str] = True) -> list[Change]:
    """One pass and commit; ``deliver`` (all, or a set of keys) stores fingerprints as delivery does."""
    changes = [c for batch in det.detect() for c in batch]
    det.commit()
    if deliver:
        sent = {c.key: c.fingerprint for c in changes if deliver is True or c.key in deliver}
        store.accept("items", {k: v for k, v in sent.items() if v})
    return changes


def item_no(db: Path, n: int) -> str:
    return str(sql(db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1 OFFSET ?", n)[0][0])


def key(stored: str) -> str:
    return f'["{stored.strip()}"]'


def test_rowversion_mark_reads_only_newer_rows(items: Resource, store: SyncStore, writable_db: Path) -> None:
    database = Database(load_mapping(DEMO_MAPPING_PATH, demo_environ(writable_db)).database)
    counting = CountingReader(database)
    det = make(items, counting, store, "row_version")
    first = run(det, store)
    assert len(first) == 200 and len({c.key for c in first}) == 200
    assert store.get_cursor("items") == {"mark": 200}
    counting.read = 0
    assert run(det, store) == []
    assert counting.read == 1, "a pass must read from the mark, not the whole table"
    changed = item_no(writable_db, 10)
    sql(writable_db, "UPDATE ITEMMAST SET PRICE = PRICE + 1, ROWVER = 201 WHERE ITEMNO = ?", changed)
    assert [c.key for c in run(det, store)] == [key(changed)]
    assert store.get_cursor("items") == {"mark": 201}
    database.dispose()


def test_rows_sharing_the_mark_across_passes_are_neither_lost_nor_sent_twice(
    items: Resource, reader: Reader, store: SyncStore, writable_db: Path
) -> None:
    det = make(items, reader, store, "changed_at")
    first = run(det, store)  # every row carries 2026-01-15 09:00:00: one value, split over 29 batches
    assert len(first) == 200 and len({c.key for c in first}) == 200
    assert first[0].changed_at is not None and first[0].changed_at.isoformat().startswith("2026-01-15T09:00:00")
    assert run(det, store) == [], "rows at the mark were sent twice"
    # Written in the same second as the mark, after the pass that set it: a '>' cursor would lose these.
    rewritten, later = item_no(writable_db, 3), item_no(writable_db, 4)
    sql(writable_db, "UPDATE ITEMMAST SET DESCR = 'SAME SECOND' WHERE ITEMNO = ?", rewritten)
    sql(writable_db, "INSERT INTO ITEMMAST VALUES ('ZNEW-0001      ', 'NEW', 'EA ', 100, 1, 'A', 0, '000000001',"
                     " 20260115, 90000, 300)")  # fmt: skip
    sql(writable_db, "UPDATE ITEMMAST SET PRICE = 1, UPDDT = 20260116 WHERE ITEMNO = ?", later)
    changes = run(det, store)
    assert sorted(c.key for c in changes) == sorted([key(rewritten), '["ZNEW-0001"]', key(later)])
    assert next(c for c in changes if c.key == key(rewritten)).row["description"] == "SAME SECOND"  # type: ignore[index]
    assert store.get_cursor("items")["mark"].startswith("2026-01-16T09:00:00")
    assert run(det, store) == []


def test_a_row_read_but_not_delivered_is_read_again(
    items: Resource, reader: Reader, store: SyncStore, writable_db: Path
) -> None:
    det = make(items, reader, store, "changed_at")
    run(det, store)
    a, b = item_no(writable_db, 0), item_no(writable_db, 1)
    sql(writable_db, "UPDATE ITEMMAST SET PRICE = 7, UPDDT = 20260117 WHERE ITEMNO IN (?, ?)", a, b)
    assert len(run(det, store, deliver={key(a)})) == 2  # b failed at the shop: its fingerprint did not move
    assert [c.key for c in run(det, store)] == [key(b)], "an undelivered row at the mark was lost"


def test_a_touch_without_a_synced_change_sends_nothing(
    items: Resource, reader: Reader, store: SyncStore, writable_db: Path
) -> None:
    det = make(items, reader, store, "row_version")
    run(det, store)
    sql(
        writable_db, "UPDATE ITEMMAST SET STDCOST = STDCOST + 1, ROWVER = 500 WHERE ITEMNO = ?", item_no(writable_db, 0)
    )
    assert run(det, store) == []
    assert store.get_cursor("items") == {"mark": 500}


def test_engine_with_a_high_water_sync_sends_only_what_changed(
    hw_mapping: Mapping, make_engine: Any, fake: FakeShopify, writable_db: Path
) -> None:
    config = load_sync_config(hw_mapping.sync)
    spec = msgspec.structs.replace(
        config.syncs["items"], mode="upsert", detector=DetectorConfig(kind="high_water", column="changed_at")
    )
    engine = make_engine()
    engine.mapping, engine.config = hw_mapping, msgspec.structs.replace(config, syncs={"items": spec})
    assert engine.run("items").done["create"] == 200
    writes = len(fake.shop.writes)
    assert sum(engine.run("items").planned.values()) == 0 and len(fake.shop.writes) == writes
    changed = item_no(writable_db, 0)
    sql(writable_db, "UPDATE ITEMMAST SET DESCR = 'AT THE MARK' WHERE ITEMNO = ?", changed)
    report = engine.run("items")
    assert report.done["update"] == 1 and len(fake.shop.writes) == writes + 1
    product = next(p for p in fake.shop.products.values() if p["variants"][0]["sku"] == changed.strip())
    assert product["title"] == "AT THE MARK"
