"""``bridgehead check --indexes`` tells which list orders an index gives, on every backend.

A list's ORDER BY ends with the key (a total order for keyset pages). An index gives the
whole order only if the key follows the sort's columns in it, declared or appended by the
engine as its row locator: InnoDB appends the primary key, PostgreSQL and a SQLite rowid
table append nothing a list orders by, a SQLite ``WITHOUT ROWID`` table appends its primary
key and an ``INTEGER PRIMARY KEY`` is the rowid. Each case is a table here, read back
through the real catalogue of each backend; the report must say what the database does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from scratch_db import MAPPING_HEAD, SCRATCH_BACKENDS, scratch_url

from gateway.cli import main
from legacy_adapters.database import Database
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.order_indexes import OrderReport, order_reports
from tests.conftest import JWT_SECRET

MAPPING = (
    MAPPING_HEAD
    + """\
      things:
        table: ORDIDX
        key: key
        anonymous: true
        fields:
          key: {column: K, type: string, length: 8}
          due: {column: DUE, type: integer, nullable: true}
          status: {column: ST, type: string, length: 1, nullable: true}
          qty: {column: QTY, type: integer, nullable: true}
          bin: {column: BIN, type: integer, nullable: true}
          colour: {column: COLOUR, type: string, nullable: true, map: {R: red, G: green}}
      loose:
        table: ORDLOOSE
        key: key
        anonymous: true
        fields:
          key: {column: K, type: string, length: 8}
          due: {column: DUE, type: integer, nullable: true}
"""
)
SQLITE_ONLY = """
      clustered:
        table: ORDWR
        key: key
        anonymous: true
        fields:
          key: {column: K, type: string, length: 8}
          status: {column: ST, type: string, length: 1, nullable: true}
      rowid:
        table: ORDINT
        key: key
        anonymous: true
        fields:
          key: {column: K, type: integer}
          status: {column: ST, type: string, length: 1, nullable: true}
"""


@pytest.fixture(scope="module", params=SCRATCH_BACKENDS)
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The tables on one backend, and the mapping file that serves them."""
    tmp = tmp_path_factory.mktemp("order-indexes")
    url = scratch_url(request.param, tmp)
    sqlite = url.startswith("sqlite")
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        things = sa.Table(
            "ORDIDX",
            metadata,
            sa.Column("K", sa.String(8), primary_key=True, quote=True),
            *(sa.Column(c, sa.Integer, quote=True) for c in ("DUE", "QTY", "BIN")),
            *(sa.Column(c, sa.String(1), quote=True) for c in ("ST", "COLOUR")),
            quote=True,
        )
        sa.Index("ORDIDX_DUE_K", things.c.DUE, things.c.K)
        sa.Index("ORDIDX_ST", things.c.ST)
        sa.Index("ORDIDX_ST_DUE", things.c.ST, things.c.DUE)
        sa.Index("ORDIDX_ST_QTY_K", things.c.ST, things.c.QTY, things.c.K)
        loose = sa.Table(
            "ORDLOOSE",
            metadata,
            sa.Column("K", sa.String(8), nullable=False, quote=True),
            sa.Column("DUE", sa.Integer, quote=True),
            quote=True,
        )  # no primary key, no unique index: as legacy tables often are
        sa.Index("ORDLOOSE_DUE_K", loose.c.DUE, loose.c.K)
        metadata.drop_all(engine)
        metadata.create_all(engine)
        if sqlite:
            with engine.begin() as conn:
                for table in ("ORDWR", "ORDINT"):
                    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
                conn.exec_driver_sql('CREATE TABLE "ORDWR" ("K" VARCHAR(8) PRIMARY KEY, "ST" CHAR(1)) WITHOUT ROWID')
                conn.exec_driver_sql('CREATE INDEX "ORDWR_ST" ON "ORDWR" ("ST")')
                conn.exec_driver_sql('CREATE TABLE "ORDINT" ("K" INTEGER PRIMARY KEY, "ST" CHAR(1))')
                conn.exec_driver_sql('CREATE INDEX "ORDINT_ST" ON "ORDINT" ("ST")')
    finally:
        engine.dispose()
    path = tmp / "mapping.yaml"
    path.write_text(MAPPING % {"db": url, "secret": JWT_SECRET} + (SQLITE_ONLY if sqlite else ""))
    return request.param, path


def reports(path: Path) -> dict[tuple[str, str], OrderReport]:
    mapping = parse_mapping(path.read_text(), source=str(path))
    database = Database(mapping.database)
    try:
        return {(r.path.rsplit(".", 1)[1], r.sort): r for r in order_reports(mapping, database)}
    finally:
        database.dispose()


def test_an_index_holding_the_sort_then_the_key_gives_the_order(case: tuple[str, Path]) -> None:
    found = reports(case[1])
    assert found["things", "due"].index == "ORDIDX_DUE_K"
    assert found["things", "due"].equal_first == ()
    # The key comes first in the primary key's index, read forwards or backwards.
    for sort in ("", "key", "-key"):
        assert found["things", sort].served, found["things", sort]
        assert found["things", sort].order == (("K DESC",) if sort == "-key" else ("K",))


def test_columns_before_the_sort_are_named_as_the_filters_a_list_needs(case: tuple[str, Path]) -> None:
    report = reports(case[1])["things", "qty"]
    assert (report.index, report.equal_first) == ("ORDIDX_ST_QTY_K", ("status (ST)",))
    assert str(report).endswith("read in order from index ORDIDX_ST_QTY_K, after '=' filters on status (ST)")


def test_a_descending_sort_needs_its_own_index_as_the_key_stays_ascending(case: tuple[str, Path]) -> None:
    # ORDER BY DUE DESC, K: (DUE, K) read backwards is DUE DESC, K DESC.
    report = reports(case[1])["things", "-due"]
    assert not report.served
    assert report.order == ("DUE DESC", "K")
    assert report.partial == ("ORDIDX_DUE_K", "ORDIDX_ST_DUE")  # the fewest columns before the sort first
    assert report.suggest == (("DUE DESC", "K"), ("ST", "DUE DESC", "K"))
    assert "indexes ORDIDX_DUE_K, ORDIDX_ST_DUE give the sort but not the key after it" in str(report)
    assert "an index on (DUE DESC, K) or (ST, DUE DESC, K) would give it" in str(report)


def test_no_index_at_all_is_said_with_the_index_that_would_serve(case: tuple[str, Path]) -> None:
    report = reports(case[1])["things", "bin"]
    assert (report.served, report.partial, report.suggest) == (False, (), (("BIN", "K"),))
    assert str(report) == (
        "versions.v1.resources.things: sort=bin (BIN, K): no index gives it, so the database sorts every"
        " matching row for each page; an index on (BIN, K) would give it"
    )


def test_only_sortable_fields_are_reported(case: tuple[str, Path]) -> None:
    sorts = {sort for resource, sort in reports(case[1]) if resource == "things"}
    # Not colour: a code map does not sort as its API values do.
    assert sorts == {"", "key", "-key", "due", "-due", "status", "-status", "qty", "-qty", "bin", "-bin"}


def test_the_engines_row_locator_counts_as_the_key(case: tuple[str, Path]) -> None:
    backend, path = case
    found = reports(path)
    status = found["things", "status"]
    if backend == "mariadb-odbc":  # InnoDB: every secondary index ends with the primary key
        assert status.index == "ORDIDX_ST"
    else:  # PostgreSQL, a SQLite rowid table with a text key: the index ends at ST
        assert (status.index, status.suggest) == (None, (("ST", "K"),))
        assert set(status.partial) == {"ORDIDX_ST", "ORDIDX_ST_DUE", "ORDIDX_ST_QTY_K"}
    if backend.startswith("sqlite"):
        assert found["clustered", "status"].index == "ORDWR_ST"  # WITHOUT ROWID: the index ends with K
        assert found["rowid", "status"].index == "ORDINT_ST"  # K is the rowid every index ends with


def test_a_text_key_no_unique_index_holds_is_unservable_where_case_is_ignored(case: tuple[str, Path]) -> None:
    backend, path = case
    report = reports(path)["loose", "due"]
    if backend == "mariadb-odbc":
        # Two keys that differ by case may both be stored: the tie-break compares bytes, no index gives that.
        assert not report.served
        assert report.unservable is not None and "code point by code point" in str(report)
    else:
        assert report.index == "ORDLOOSE_DUE_K"


def test_check_prints_the_report_and_still_exits_zero(case: tuple[str, Path]) -> None:
    result = CliRunner().invoke(main, ["check", "-c", str(case[1]), "--quick", "--indexes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "order: versions.v1.resources.things: sort=due (DUE, K): read in order from index ORDIDX_DUE_K" in lines
    assert any(line.startswith("order: versions.v1.resources.things: sort=bin (BIN, K): no index") for line in lines)
    orders = [line for line in lines if line.startswith("order: ")]
    served = sum(1 for line in orders if ": read in order from index " in line)
    summary = f"{case[1]}: {served} order(s) read from an index, {len(orders) - served} sorted for every page"
    assert summary in lines
    # Without the flag, check says nothing of orders.
    plain = CliRunner().invoke(main, ["check", "-c", str(case[1]), "--quick"])
    assert plain.exit_code == 0 and "order:" not in plain.output
