"""The demo database generator and the demo mapping that serves it.

Small builds only (a few hundred jobs), so the file runs in about a second; the
million-row timing is a benchmark, not a test.
"""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
from datetime import date
from typing import TYPE_CHECKING

import pytest

from legacy_adapters.demo import (
    DEMO_MAPPING_PATH,
    DIRTY_KINDS,
    DemoSummary,
    create_demo_database,
)
from legacy_adapters.demo import generate as generate_module
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.mapping.model import Mapping, ResourceSpec

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROWS = 500
TABLES = ("CUSTMAST", "ITEMMAST", "STKBAL", "JOBMAST", "JOBOPS")


def _contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in TABLES}


def _columns(db: sqlite3.Connection, table: str) -> dict[str, str]:
    return {row[1]: row[2].upper() for row in db.execute(f"PRAGMA table_info({table})")}


def _load_demo_mapping() -> Mapping:
    # Stand-in for the loader's ${VAR} / ${VAR:-default} expansion.
    text = re.sub(
        r"\$\{(\w+)(?::-([^}]*))?\}",
        lambda m: m.group(2) if m.group(2) is not None else f"test-{m.group(1).lower()}",
        DEMO_MAPPING_PATH.read_text(encoding="utf-8"),
    )
    return parse_mapping(text.replace("test-bridgehead_jwt_secret", "x" * 32))


def _every_resource(mapping: Mapping) -> list[tuple[str, ResourceSpec]]:
    """Each version's resources (v2's item_costs reads ITEMMAST too), named version.resource."""
    return [(f"{v}.{n}", r) for v, version in mapping.versions.items() for n, r in version.resources.items()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    return path, create_demo_database(path, rows=ROWS, seed=1998)


@pytest.fixture
def db(built: tuple[Path, DemoSummary]) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(built[0])
    yield connection
    connection.close()


def test_counts_scale_with_rows(built: tuple[Path, DemoSummary], db: sqlite3.Connection) -> None:
    path, summary = built
    counts = {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}
    assert counts == {
        "CUSTMAST": summary.customers,
        "ITEMMAST": summary.items,
        "STKBAL": summary.stock,
        "JOBMAST": summary.jobs,
        "JOBOPS": summary.operations,
    }
    assert (summary.jobs, summary.customers, summary.items) == (ROWS, 25, 50)
    assert 2 * summary.items <= summary.stock <= 3 * summary.items
    assert 3 * summary.jobs <= summary.operations <= 5 * summary.jobs
    assert summary.path == path
    assert not [p for p in path.parent.iterdir() if p != path], "temporary files left behind"


def test_same_seed_same_contents_other_seed_differs(tmp_path: Path, built: tuple[Path, DemoSummary]) -> None:
    again = create_demo_database(tmp_path / "again.db", rows=ROWS, seed=1998)
    other = create_demo_database(tmp_path / "other.db", rows=ROWS, seed=7)
    reference = _contents(built[0])
    assert _contents(again.path) == reference
    assert again.dirty == built[1].dirty
    other_contents = _contents(other.path)
    assert all(other_contents[table] != reference[table] for table in TABLES)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_process_build_writes_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks so that 500 jobs are enough to split the work between processes.
    monkeypatch.setattr(generate_module, "_JOB_BLOCK", 100)
    serial = create_demo_database(tmp_path / "serial.db", rows=ROWS, seed=3)
    monkeypatch.setattr(generate_module, "_PARALLEL_FROM", 1)
    monkeypatch.setattr(generate_module.os, "cpu_count", lambda: 2)
    parallel = create_demo_database(tmp_path / "parallel.db", rows=ROWS, seed=3)
    assert _contents(parallel.path) == _contents(serial.path)
    assert parallel.dirty == serial.dirty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parallel.db", "serial.db"]


def test_rebuild_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "demo.db"
    create_demo_database(path, rows=40, seed=1)
    summary = create_demo_database(path, rows=60, seed=1)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM JOBMAST").fetchone()[0] == summary.jobs == 60


def test_rows_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows"):
        create_demo_database(tmp_path / "none.db", rows=0)


def _valid_yyyymmdd(value: int) -> bool:
    try:
        date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return False
    return True


def test_every_dirty_kind_is_present(built: tuple[Path, DemoSummary], db: sqlite3.Connection) -> None:
    summary = built[1]
    assert set(summary.dirty) == set(DIRTY_KINDS)
    assert all(count >= 2 for count in summary.dirty.values()), summary.dirty

    def scalar(sql: str) -> int:
        return int(db.execute(sql).fetchone()[0])

    due_dates = [row[0] for row in db.execute("SELECT DUEDT FROM JOBMAST WHERE DUEDT NOT IN (0, 99999999)")]
    assert sum(not _valid_yyyymmdd(d) for d in due_dates) == summary.dirty["invalid_due_date"]
    assert scalar("SELECT COUNT(*) FROM JOBMAST WHERE JSTAT = 'X'") == summary.dirty["unknown_status"]
    trailing = scalar("SELECT COUNT(*) FROM JOBMAST WHERE NOTES LIKE '% '")
    assert trailing == summary.dirty["notes_trailing_spaces"]
    assert (
        scalar("SELECT COUNT(*) FROM CUSTMAST WHERE EMAIL LIKE ' %' AND EMAIL LIKE '% '")
        == summary.dirty["email_surrounding_spaces"]
    )
    assert scalar("SELECT COUNT(*) FROM JOBMAST WHERE DELFLG = 'Y'") == summary.dirty["deleted_job"]
    assert scalar("SELECT COUNT(*) FROM CUSTMAST WHERE DELFLG = 'Y'") == summary.dirty["deleted_customer"]
    near_duplicates = scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM CUSTMAST GROUP BY LOWER(REPLACE(TRIM(CUSTNM), '  ', ' '))"
        " HAVING COUNT(DISTINCT CUSTNM) > 1)"
    )
    assert near_duplicates >= 1
    # Sentinels the mapping turns into null, not dirt but needed by the API tests.
    assert scalar("SELECT COUNT(*) FROM JOBMAST WHERE DUEDT = 0") > 0
    assert scalar("SELECT COUNT(*) FROM JOBMAST WHERE DUEDT = 99999999") > 0
    assert scalar("SELECT COUNT(*) FROM STKBAL WHERE CNTDT = ''") > 0
    assert scalar("SELECT COUNT(*) FROM JOBOPS WHERE STRDT = 0") > 0
    # C0001 is the customer the docs show; it stays clean and visible.
    assert db.execute("SELECT DELFLG FROM CUSTMAST WHERE CUSTNO = 'C0001   '").fetchone() == ("N",)


def test_dates_are_between_1998_and_2027(db: sqlite3.Connection) -> None:
    low, high = db.execute("SELECT MIN(ORDDT), MAX(ORDDT) FROM JOBMAST").fetchone()
    assert 19980101 <= low <= high <= 20271231
    low, high = db.execute("SELECT MIN(STRDT), MAX(STRDT) FROM JOBOPS WHERE STRDT <> 0").fetchone()
    assert 19980101 <= low <= high <= 20271231
    assert all(_valid_yyyymmdd(row[0]) for row in db.execute("SELECT ORDDT FROM JOBMAST"))
    assert all(60000 <= row[0] < 180000 for row in db.execute("SELECT ORDTM FROM JOBMAST"))


def test_char_columns_are_padded_to_their_width(db: sqlite3.Connection) -> None:
    for table in TABLES:
        for column, declared in _columns(db, table).items():
            if width := re.fullmatch(r"CHAR\((\d+)\)", declared):
                lengths = db.execute(f"SELECT MIN(LENGTH({column})), MAX(LENGTH({column})) FROM {table}")
                assert lengths.fetchone() == (int(width[1]),) * 2, f"{table}.{column}"
    assert db.execute("SELECT JOBNO FROM JOBMAST ORDER BY rowid").fetchone()[0] == "J000001   "


def test_no_foreign_keys_and_no_timestamp_columns(db: sqlite3.Connection) -> None:
    for table in TABLES:
        assert db.execute(f"PRAGMA foreign_key_list({table})").fetchall() == []
        types = _columns(db, table).values()
        assert not [t for t in types if any(word in t for word in ("DATE", "TIME"))], table
        primary_key = [row for row in db.execute(f"PRAGMA table_info({table})") if row[5]]
        assert primary_key == [], f"{table} declares a primary key"


def test_legacy_indexes(db: sqlite3.Connection) -> None:
    indexes = {
        row[1]: (table, bool(row[2]))
        for table in TABLES
        for row in db.execute(f"PRAGMA index_list({table})")
        if not row[1].startswith("sqlite_")
    }
    assert indexes["JOBMAST_K1"] == ("JOBMAST", True)
    assert indexes["JOBOPS_K1"] == ("JOBOPS", True)
    assert [unique for table, unique in indexes.values() if table == "STKBAL"] == [False]
    columns = [row[2] for row in db.execute("PRAGMA index_info(STKBAL_X1)")]
    assert columns == ["ITEMNO", "WHSE"]


def test_demo_mapping_decodes() -> None:
    mapping = _load_demo_mapping()
    v1 = mapping.versions["v1"]
    assert set(v1.resources) == {"customers", "items", "stock", "jobs", "job_invoices", "operations"}
    assert mapping.database.url == "sqlite:///.bridgehead/demo.db"
    assert v1.resources["items"].anonymous
    assert v1.resources["items"].fields["standard_cost"].scope == "costs:read"
    assert v1.resources["jobs"].actions["release"].scope == "jobs:release"
    assert v1.resources["stock"].key_fields == ("item_number", "warehouse")
    for resource in v1.resources.values():
        for relation in resource.relations.values():
            target = v1.resources[relation.resource]
            assert set(relation.on) <= set(resource.fields)
            assert set(relation.on.values()) <= set(target.fields)


def test_mapping_columns_exist(db: sqlite3.Connection) -> None:
    for name, resource in _every_resource(_load_demo_mapping()):
        columns = _columns(db, resource.table)
        for field_name, field in resource.fields.items():
            assert field.column in columns, f"{name}.{field_name}: {field.column}"
            if field.time_column is not None:
                assert field.time_column in columns, f"{name}.{field_name}: {field.time_column}"
            if field.length is not None and columns[field.column].startswith("CHAR"):
                assert columns[field.column] == f"CHAR({field.length})", f"{name}.{field_name}"
        if resource.where:
            condition = resource.where.replace("{", '"').replace("}", '"')  # {COLUMN} placeholders
            db.execute(f"SELECT COUNT(*) FROM {resource.table} WHERE {condition}")


def test_declared_keys_are_unique(db: sqlite3.Connection) -> None:
    for name, resource in _every_resource(_load_demo_mapping()):
        key = ", ".join(resource.fields[field].column for field in resource.key_fields)
        duplicates = db.execute(
            f"SELECT {key}, COUNT(*) FROM {resource.table} GROUP BY {key} HAVING COUNT(*) > 1"
        ).fetchall()
        assert duplicates == [], f"{name} key ({key}) repeats"


def test_a_demo_database_from_before_the_paid_columns_is_upgraded(tmp_path: Path) -> None:
    from legacy_adapters.demo import upgrade_demo_database

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE JOBMAST (JOBNO CHAR(10) NOT NULL, DELFLG CHAR(1) NOT NULL)")
        old.execute("INSERT INTO JOBMAST VALUES ('J000001   ', 'N')")
    assert upgrade_demo_database(path) == ["JOBMAST.PAIDFL", "JOBMAST.PAIDDT"]
    assert upgrade_demo_database(path) == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT PAIDFL, PAIDDT FROM JOBMAST").fetchall() == [("N", 0)]
