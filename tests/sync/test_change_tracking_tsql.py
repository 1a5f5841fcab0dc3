"""Change Tracking detector: its statements compiled as T-SQL, and its version bookkeeping.

No SQL Server runs here. The statements are compiled with the ``mssql+pyodbc``
dialect (``paramstyle="qmark"``, as pyodbc sends them) and compared with the
documented forms. The bookkeeping (version taken before the load, reinit below
the minimum valid version, deletes by key, re-reads by key) is a *unit test of
the state machine*: a Python ``FakeChangeSource`` stands in for the three
Change Tracking functions, while rows are re-read for real from a copy of the
demo database and state lives in a real SQLite state store.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.reader import Reader
from sync.changes import ChangeTrackingDetector, make_detector
from sync.changes.base import Change, fingerprint
from sync.changes.change_tracking import (
    CtRow,
    changes_statement,
    current_version_statement,
    min_valid_version_statement,
)
from sync.config import DetectorConfig
from sync.exceptions import Fatal
from sync.state.sync_store import SyncStore

TSQL = mssql.pyodbc.dialect(paramstyle="qmark")


def tsql(statement: sa.ClauseElement) -> tuple[str, list[Any]]:
    compiled = statement.compile(dialect=TSQL)
    return " ".join(str(compiled).split()), [compiled.params[name] for name in compiled.positiontup or ()]


@pytest.fixture
def resources(sync_mapping: Mapping) -> dict[str, Resource]:
    return bind_version(sync_mapping, next(iter(sync_mapping.versions)))


# -- T-SQL ----------------------------------------------------------------------------------


def test_changes_statement_is_changetable_with_one_bound_version(resources: dict[str, Resource]) -> None:
    items = resources["items"]
    schema_table = sa.Table("ITEMMAST", sa.MetaData(), sa.Column("ITEMNO", quote=True), schema="dbo", quote=True)
    sql, params = tsql(changes_statement(dataclasses.replace(items, table=schema_table), 42))
    assert sql == (
        "SELECT ct.[SYS_CHANGE_OPERATION], ct.[SYS_CHANGE_VERSION], ct.[ITEMNO] "
        "FROM CHANGETABLE(CHANGES dbo.[ITEMMAST], ?) AS ct ORDER BY ct.[SYS_CHANGE_VERSION]"
    )
    assert params == [42]


def test_changes_statement_lists_every_key_column_of_a_composite_key(resources: dict[str, Resource]) -> None:
    sql, params = tsql(changes_statement(resources["stock"], 7))
    assert "ct.[ITEMNO], ct.[WHSE] FROM CHANGETABLE(CHANGES [STKBAL], ?) AS ct" in sql
    assert params == [7]


def test_version_functions_compile_in_tsql() -> None:
    assert tsql(current_version_statement())[0].startswith("SELECT CHANGE_TRACKING_CURRENT_VERSION() AS ")
    sql, params = tsql(min_valid_version_statement("dbo.[ITEMMAST]"))
    assert sql.startswith("SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(?)) AS ")
    assert params == ["dbo.[ITEMMAST]"]  # the name is bound, never spliced into the text


# -- the state machine, against a fake change source ------------------------------------------


@dataclasses.dataclass
class FakeChangeSource:
    """CHANGE_TRACKING_CURRENT_VERSION / MIN_VALID_VERSION and CHANGETABLE output, held in Python."""

    version: int = 100
    min_valid: int | None = 1
    rows: list[CtRow] = dataclasses.field(default_factory=list)
    calls: list[str] = dataclasses.field(default_factory=list)

    def current_version(self) -> int | None:
        self.calls.append("current")
        return self.version

    def min_valid_version(self) -> int | None:
        self.calls.append("min_valid")
        return self.min_valid

    def changes(self, since: int) -> Iterator[CtRow]:
        self.calls.append(f"changes>{since}")
        return iter(sorted((r for r in self.rows if r[1] > since), key=lambda r: r[1]))


@pytest.fixture
def legacy_db(sync_mapping: Mapping) -> Iterator[Database]:
    database = Database(sync_mapping.database)
    yield database
    database.dispose()


def detector(
    resources: dict[str, Resource], db: Database, store: SyncStore, source: FakeChangeSource
) -> ChangeTrackingDetector:
    items = resources["items"]
    return ChangeTrackingDetector("items", items, tuple(items.fields.values()), Reader(db), store, 50, source)


def run(det: ChangeTrackingDetector, store: SyncStore, *, deliver: bool = True) -> list[Change]:
    """One pass; ``deliver`` stores the fingerprints as the engine does once records reach the shop."""
    changes = [c for batch in det.detect() for c in batch]
    det.commit()
    if deliver:
        store.accept("items", {c.key: c.fingerprint for c in changes if c.fingerprint})
        store.forget("items", [c.key for c in changes if c.op == "delete"])
    return changes


def stored_item(db: Path, n: int) -> str:
    """The n-th ITEMNO as stored (CHAR, right-padded): what CHANGETABLE hands back."""
    with sqlite3.connect(db) as conn:
        value = conn.execute("SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1 OFFSET ?", (n,)).fetchone()[0]
    conn.close()
    return str(value)


def execute(db: Path, sql: str, *params: Any) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)
    conn.close()


def test_initial_load_is_a_full_diff_and_stores_the_version_taken_before_it(
    resources: dict[str, Resource], legacy_db: Database, store: SyncStore
) -> None:
    source = FakeChangeSource(version=100)
    det = detector(resources, legacy_db, store, source)
    changes = []
    for batch in det.detect():
        changes += batch
        source.version = 999  # commits during the load: must be read again next pass, not skipped
    det.commit()
    assert det.reinitialised == "initial"
    assert len(changes) == 200 and {c.op for c in changes} == {"upsert"}
    assert store.get_cursor("items") == {"version": 100}  # 999 would skip what committed mid-load
    assert not any(c.startswith("changes") for c in source.calls)


def test_incremental_pass_reads_deletes_by_key_and_rereads_inserts_and_updates(
    resources: dict[str, Resource], legacy_db: Database, store: SyncStore, writable_db: Path
) -> None:
    source = FakeChangeSource(version=100)
    det = detector(resources, legacy_db, store, source)
    run(det, store)
    renamed, deleted, untouched, vanished = (stored_item(writable_db, n) for n in (0, 1, 2, 3))
    execute(writable_db, "UPDATE ITEMMAST SET DESCR = 'RENAMED' WHERE ITEMNO = ?", renamed)
    execute(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO IN (?, ?)", deleted, vanished)
    execute(writable_db, "INSERT INTO ITEMMAST VALUES ('ZNEW-0001      ', 'NEW', 'EA ', 100, 1, 'A', 0, '000000001')")
    source.rows = [
        ("U", 90, (stored_item(writable_db, 5),)),  # at or below the cursor: already read
        ("U", 101, (renamed,)),
        ("D", 102, (deleted,)),
        ("U", 103, (untouched,)),  # an unmapped column changed: same fingerprint, nothing to send
        ("I", 104, ("ZNEW-0001      ",)),
        ("U", 105, (vanished,)),  # deleted after the change was recorded: reads back as nothing
    ]
    source.version = 110
    changes = {c.key: c for c in run(det, store)}
    assert det.reinitialised is None and "changes>100" in source.calls
    key = lambda stored: f'["{stored.strip()}"]'  # noqa: E731
    assert set(changes) == {key(renamed), key(deleted), '["ZNEW-0001"]', key(vanished)}
    assert changes[key(renamed)].row is not None and changes[key(renamed)].row["description"] == "RENAMED"
    assert changes[key(renamed)].fingerprint == fingerprint(changes[key(renamed)].row)
    assert changes[key(deleted)].op == changes[key(vanished)].op == "delete"
    assert changes['["ZNEW-0001"]'].op == "upsert"
    assert store.get_cursor("items") == {"version": 110}
    assert run(det, store) == [] and "changes>110" in source.calls  # nothing new since


def test_uncommitted_pass_leaves_the_version_so_changes_are_read_again(
    resources: dict[str, Resource], legacy_db: Database, store: SyncStore, writable_db: Path
) -> None:
    source = FakeChangeSource(version=100)
    det = detector(resources, legacy_db, store, source)
    run(det, store)
    execute(writable_db, "UPDATE ITEMMAST SET DESCR = 'X' WHERE ITEMNO = ?", stored_item(writable_db, 0))
    source.rows, source.version = [("U", 101, (stored_item(writable_db, 0),))], 101
    first = [c for batch in det.detect() for c in batch]  # the engine crashed before commit()
    again = run(det, store)
    assert len(first) == len(again) == 1 and first[0].key == again[0].key


def test_version_older_than_min_valid_reinitialises_with_a_full_diff(
    resources: dict[str, Resource], legacy_db: Database, store: SyncStore, writable_db: Path
) -> None:
    source = FakeChangeSource(version=100)
    det = detector(resources, legacy_db, store, source)
    run(det, store)
    gone = stored_item(writable_db, 0)
    execute(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO = ?", gone)
    source.min_valid, source.version = 150, 160  # cleanup removed the change rows we needed
    changes = run(det, store)
    assert det.reinitialised == "expired"
    assert not any(c.startswith("changes") for c in source.calls[-2:])
    # The full diff against delivered fingerprints still finds the delete the change rows lost.
    assert [(c.op, c.key) for c in changes] == [("delete", f'["{gone.strip()}"]')]
    assert store.get_cursor("items") == {"version": 160}


def test_untracked_table_stops_the_run(resources: dict[str, Resource], legacy_db: Database, store: SyncStore) -> None:
    det = detector(resources, legacy_db, store, FakeChangeSource(min_valid=None))
    with pytest.raises(Fatal, match="change tracking is not enabled"):
        list(det.detect())
    assert store.get_cursor("items") is None


def test_registry_builds_change_tracking_from_the_config(
    resources: dict[str, Resource], legacy_db: Database, store: SyncStore
) -> None:
    items = resources["items"]
    made = make_detector(DetectorConfig(kind="change_tracking"), "items", items, (), Reader(legacy_db), store)
    assert isinstance(made, ChangeTrackingDetector) and made.sees_deletes
