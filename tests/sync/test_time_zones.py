"""Time zones in sync (issue 12, item 8): the state store keeps aware UTC on every backend, and a
high-water mark on a local date + time pair loses no row across either DST transition.

The property test writes rows the way a legacy program does, stamping UPDDT/UPDTM with the wall
clock in Europe/London, through the autumn hour that happens twice and the spring hour that does
not exist (a clock left on GMT writes those), with detector passes between the writes. Ambiguous
and non-existent local times are generated, never filtered out.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping
from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import Reader
from sync.changes import HighWaterDetector
from sync.config import DetectorConfig, FieldMap, load_sync_config
from sync.connectors.shopify.fake import FakeShopify
from sync.state.memory import MemoryStore
from sync.state.sync_store import SyncStore
from sync.state.utc import UtcDateTime
from tests.sync.test_high_water import add_change_columns, item_no, sql

LONDON = ZoneInfo("Europe/London")
AUTUMN = dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)  # 01:00-02:00 London happens twice from 00:00 UTC
SPRING = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)  # 01:00-02:00 London does not exist; BST from 01:00 UTC


def test_sqlite_state_keeps_aware_utc(store: SyncStore) -> None:
    table = sa.Table("utc_probe", sa.MetaData(), sa.Column("at", UtcDateTime()))
    table.create(store.engine)
    london = dt.datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=LONDON)  # the second 01:30: 01:30 UTC
    with store.engine.begin() as conn:
        conn.execute(table.insert().values(at=london))
        back = conn.scalar(sa.select(table.c.at))
    # Compared in UTC: Python never finds a fold datetime equal to one in another zone.
    assert back.tzinfo is dt.UTC and back == london.astimezone(dt.UTC) and back.hour == 1
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.engine.begin() as conn:
        conn.execute(table.insert().values(at=dt.datetime(2026, 1, 1, 12, 0)))


def test_newest_with_a_high_water_detector_on_the_sqlite_store(
    writable_db: Path, tmp_path: Path, make_engine: Any, fake: FakeShopify, store: SyncStore
) -> None:
    mapping = add_change_columns(writable_db, tmp_path)
    config = load_sync_config(mapping.sync)
    fields = {**config.syncs["items"].fields, "title": FieldMap(template="{description}", owner="newest")}
    spec = msgspec.structs.replace(config.syncs["items"], mode="upsert", fields=fields,
                                   detector=DetectorConfig(kind="high_water", column="changed_at"))  # fmt: skip
    engine = make_engine()
    engine.mapping, engine.config = mapping, msgspec.structs.replace(config, syncs={"items": spec})
    assert engine.run("items").done["create"] == 200
    changed = item_no(writable_db, 0)
    product = next(p for p in fake.shop.products.values() if p["variants"][0]["sku"] == changed.strip())
    product["title"], product["updatedAt"] = "TYPED IN THE SHOP", "2026-02-01T10:00:00+00:00"
    sql(writable_db, "UPDATE ITEMMAST SET DESCR = 'LEGACY LATER', UPDDT = 20260301 WHERE ITEMNO = ?", changed)
    report = engine.run("items")  # the outbox's changed_at came back from SQLite: it must still compare
    assert report.status == "succeeded", report.error
    assert report.conflicts == 1 and product["title"] == "LEGACY LATER"  # 2026-03-01 09:00 London is later
    (conflict,) = store.conflicts("items")
    assert conflict["winner"] == "legacy"


# -- the property: no change is lost across DST ------------------------------------------------

ROWS = 5


@pytest.fixture(scope="module")
def dst_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Mapping, Path]:
    from legacy_adapters.demo import create_demo_database

    folder = tmp_path_factory.mktemp("dst")
    db = folder / "legacy.db"
    create_demo_database(db, rows=200)
    return add_change_columns(db, folder), db


def stamp(at: dt.datetime, stale_clock: bool) -> tuple[int, int]:
    """UPDDT/UPDTM as a legacy program writes them: London wall time, or GMT when its clock ignores DST."""
    wall = at.astimezone(dt.UTC if stale_clock else LONDON)
    return int(wall.strftime("%Y%m%d")), int(wall.strftime("%H%M%S"))


events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=180),  # minutes after the transition window opens
        st.integers(min_value=0, max_value=ROWS - 1),  # which row changes
        st.booleans(),  # a clock left on GMT (writes non-existent spring times)
        st.booleans(),  # a detector pass runs after this write
    ),
    min_size=1,
    max_size=12,
)


@seed(20261025)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from([AUTUMN, SPRING]), writes=events)
@example(start=AUTUMN, writes=[(50, 0, False, True), (70, 1, False, True)])  # 01:50 BST, then 01:10 GMT
@example(start=SPRING, writes=[(20, 0, True, True), (40, 1, False, True)])  # 00:50 "GMT", then 02:10 BST
def test_a_local_time_mark_loses_no_row_across_dst(
    dst_world: tuple[Mapping, Path], start: dt.datetime, writes: list[tuple[int, int, bool, bool]]
) -> None:
    mapping, db = dst_world
    items = bind_version(mapping, "v1")["items"]
    keys = [sql(db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1 OFFSET ?", n)[0][0] for n in range(ROWS)]
    sql(db, "UPDATE ITEMMAST SET DESCR = 'BASE', UPDDT = 20260101, UPDTM = 90000")
    store = MemoryStore()
    database = Database(mapping.database)
    reader = Reader(database)
    fields = tuple(items.fields[n] for n in ("item_number", "description", "price"))
    detector = HighWaterDetector("items", items, fields, reader, store, "changed_at", 50)

    def one_pass() -> None:
        changes = [c for batch in detector.detect() for c in batch]
        detector.commit()
        store.accept("items", {c.key: c.fingerprint for c in changes if c.fingerprint})

    try:
        one_pass()
        for n, (minutes, row, stale, then_pass) in enumerate(sorted(writes)):
            day, time = stamp(start + dt.timedelta(minutes=minutes, seconds=n), stale)
            sql(db, "UPDATE ITEMMAST SET DESCR = ?, UPDDT = ?, UPDTM = ? WHERE ITEMNO = ?",
                f"V{n}", day, time, keys[row])  # fmt: skip
            if then_pass:
                one_pass()
        one_pass()
        # Every row as it is now was delivered: nothing written in either DST hour was skipped.
        wanted = {f'["{k.strip()}"]' for k in keys}
        everything = HighWaterDetector("items", items, fields, reader, MemoryStore(), "changed_at", 50)
        now = {c.key: c.fingerprint for batch in everything.detect() for c in batch if c.key in wanted}
        delivered = store.fingerprints("items", list(now))
        lost = [k for k, digest in now.items() if delivered.get(k) != digest]
        assert lost == [], f"changes never detected: {lost}"
    finally:
        database.dispose()
