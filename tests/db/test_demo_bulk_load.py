"""``load_demo(bulk=True)``: COPY (PostgreSQL) and LOAD DATA LOCAL INFILE (MariaDB) leave what the INSERTs leave.

Both bulk paths read one text format (tabs between fields, ``\\N`` for NULL, backslash
escapes), so the values that format must escape are planted in the source: a tab, a
newline, a carriage return, a backslash, the two characters ``\\N`` (a string, not
NULL), an empty string, a real NULL and non-ASCII text.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from scratch_db import scratch_url

from legacy_adapters.demo import create_demo_database
from legacy_adapters.demo.load import load_demo

pytestmark = pytest.mark.odbc

AWKWARD = ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N", "", None, "Größe, 寸法 ✓", "end\\"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    """A small demo database, and the NOTES planted per job number."""
    path = tmp_path_factory.mktemp("bulk") / "demo.db"
    create_demo_database(path, rows=300)
    with sqlite3.connect(path) as conn:
        keys = [r[0] for r in conn.execute("SELECT JOBNO FROM JOBMAST ORDER BY JOBNO LIMIT ?", (len(AWKWARD),))]
        conn.executemany("UPDATE JOBMAST SET NOTES = ? WHERE JOBNO = ?", list(zip(AWKWARD, keys, strict=True)))
    conn.close()
    return path, {k.rstrip(): v for k, v in zip(keys, AWKWARD, strict=True)}


def _contents(url: str, source: Path, tables: tuple[str, ...]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of ``tables`` in ``url``, in a fixed order (the columns are the source's)."""
    with sqlite3.connect(source) as conn:
        columns = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    conn.close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            found = {}
            for name, names in columns.items():
                table = sa.table(name, *(sa.column(c) for c in names))
                found[name] = [tuple(r) for r in db.execute(sa.select(table).order_by(*table.c)).all()]
            return found
    finally:
        engine.dispose()


@pytest.mark.parametrize("case_id", ["postgresql-odbc", "mariadb-odbc"])
def test_bulk_load_matches_inserts(case_id: str, source: tuple[Path, dict[str, str | None]], tmp_path: Path) -> None:
    path, planted = source
    url = scratch_url(case_id, tmp_path)
    tables = ("STKBAL", "JOBMAST")
    inserted_counts = load_demo(path, url, tables=tables)
    inserted = _contents(url, path, tables)
    bulk_counts = load_demo(path, url, tables=tables, bulk=True)
    bulk = _contents(url, path, tables)

    assert bulk_counts == inserted_counts == {"STKBAL": len(inserted["STKBAL"]), "JOBMAST": 300}
    assert bulk == inserted
    notes = {str(row[0]).rstrip(): row[10] for row in bulk["JOBMAST"]}
    assert {key: notes[key] for key in planted} == planted


def test_bulk_load_builds_the_indexes_after_the_rows(
    source: tuple[Path, dict[str, str | None]], tmp_path: Path
) -> None:
    url = scratch_url("mariadb-odbc", tmp_path)
    load_demo(source[0], url, tables=("JOBMAST",), bulk=True)
    engine = sa.create_engine(url)
    try:
        names = {i["name"] for i in sa.inspect(engine).get_indexes("JOBMAST")}
    finally:
        engine.dispose()
    assert names == {"JOBMAST_K1", "JOBMAST_X1", "JOBMAST_X2", "JOBMAST_X3"}
