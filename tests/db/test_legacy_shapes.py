"""What the loader builds, and legacy column shapes read through real drivers.

The demo tables keep their legacy shape in each engine (CHAR(n), no keys, the
same indexes). A second table has what the demo lacks: a schema, a name with a
space, reserved words as column names, DECIMAL money, a BIT/BOOLEAN flag, a
DATETIME without zone, and no primary key.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from db_backends import JWT_SECRET, prepared_url
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.mapping import load_mapping

pytestmark = pytest.mark.odbc

ENGINES = ["postgresql-odbc", "mariadb-odbc", "sqlite-odbc"]


@pytest.mark.parametrize("case_id", ENGINES)
def test_loader_keeps_legacy_shape(case_id: str, demo_db_path: Path, tmp_path_factory: Any) -> None:
    engine = sa.create_engine(prepared_url(case_id, demo_db_path, tmp_path_factory))
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("JOBMAST")}
        assert isinstance(columns["JOBNO"]["type"], sa.CHAR) and columns["JOBNO"]["type"].length == 10
        assert isinstance(columns["NOTES"]["type"], sa.VARCHAR)
        if case_id != "sqlite-odbc":  # sqliteodbc answers PRAGMA table_info's notnull as text
            assert columns["NOTES"]["nullable"] and not columns["JOBNO"]["nullable"]
        if case_id == "postgresql-odbc":
            # psqlODBC returns arrays as text, which SQLAlchemy's index reflection cannot read.
            with engine.connect() as conn:
                definitions = {
                    name: sql
                    for name, sql in conn.exec_driver_sql(
                        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'JOBMAST'"
                    )
                }
                keys = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                    "WHERE t.relname IN ('STKBAL', 'JOBMAST') AND c.contype IN ('p', 'f')"
                ).scalar()
            assert "UNIQUE" in definitions["JOBMAST_K1"] and "UNIQUE" not in definitions["JOBMAST_X2"]
            assert definitions["JOBMAST_X2"].endswith('("JSTAT", "DUEDT")')
            assert keys == 0
            return
        if case_id == "sqlite-odbc":  # index reflection trips over the same text-typed PRAGMA values
            with engine.connect() as conn:
                sql = dict(
                    tuple(r)
                    for r in conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'JOBMAST'")
                )
            assert sql["JOBMAST_K1"].startswith("CREATE UNIQUE INDEX") and "PRIMARY KEY" not in sql["JOBMAST"]
            return
        assert not inspector.get_pk_constraint("STKBAL")["constrained_columns"]
        indexes = {i["name"]: i for i in inspector.get_indexes("JOBMAST")}
        assert indexes["JOBMAST_K1"]["unique"] and not indexes["JOBMAST_X2"]["unique"]
        assert indexes["JOBMAST_X2"]["column_names"] == ["JSTAT", "DUEDT"]
        assert not {i["name"]: i for i in inspector.get_indexes("STKBAL")}["STKBAL_X1"]["unique"]
    finally:
        engine.dispose()


DDL = {
    "postgresql-odbc": [
        'CREATE SCHEMA IF NOT EXISTS "LEGACY"',
        'DROP TABLE IF EXISTS "LEGACY"."Order Details"',
        'CREATE TABLE "LEGACY"."Order Details" ("Order ID" CHAR(10) NOT NULL, "Select" INTEGER NOT NULL, '
        '"Order Date" TIMESTAMP NOT NULL, "Amount" NUMERIC(19,4) NOT NULL, "Paid" BOOLEAN NOT NULL)',
    ],
    "mariadb-odbc": [
        "CREATE DATABASE IF NOT EXISTS `LEGACY`",
        "DROP TABLE IF EXISTS `LEGACY`.`Order Details`",
        "CREATE TABLE `LEGACY`.`Order Details` (`Order ID` CHAR(10) NOT NULL, `Select` INT NOT NULL, "
        "`Order Date` DATETIME(3) NOT NULL, `Amount` DECIMAL(19,4) NOT NULL, `Paid` BIT(1) NOT NULL)",
    ],
}
ROWS = [
    ("A1", 1, dt.datetime(2026, 3, 29, 1, 30, 15, 123000), Decimal("1250.5000"), True),
    ("A1", 2, dt.datetime(1998, 12, 31, 23, 59, 59), Decimal("0.0100"), False),
    ("B22", 1, dt.datetime(2026, 1, 1), Decimal("-3.2500"), True),
]
MAPPING = """
database: {url: "${BRIDGEHEAD_DB_URL}", statement_timeout_s: 5}
auth: {issuer: bridgehead-demo, audience: bridgehead, hs256_secret: "${BRIDGEHEAD_JWT_SECRET}"}
versions:
  v1:
    resources:
      lines:
        table: LEGACY.Order Details
        key: [order_id, line]
        fields:
          order_id: {column: Order ID, type: string, transform: trim, length: 10}
          line: {column: Select, type: integer}
          ordered: {column: Order Date, type: datetime}
          amount: {column: Amount, type: decimal}
          paid: {column: Paid, type: boolean}
"""


@pytest.mark.parametrize("case_id", list(DDL))
def test_legacy_column_shapes_through_the_api(
    case_id: str, demo_db_path: Path, tmp_path_factory: Any, tmp_path: Path, admin: dict[str, str]
) -> None:
    url = prepared_url(case_id, demo_db_path, tmp_path_factory)
    engine = sa.create_engine(url)
    table = sa.Table(
        "Order Details",
        sa.MetaData(),
        *(sa.Column(n, quote=True) for n in ("Order ID", "Select", "Order Date", "Amount", "Paid")),
        schema="LEGACY",
        quote=True,
        quote_schema=True,
    )
    with engine.begin() as conn:
        for statement in DDL[case_id]:
            conn.exec_driver_sql(statement)
        # Literal values: this test is about reading (MariaDB Connector/ODBC drops the fraction
        # of a bound DATETIME parameter, which matters to writes, not here).
        name = engine.dialect.identifier_preparer.format_table(table)
        for oid, line, ordered, amount, paid in ROWS:
            conn.exec_driver_sql(
                f"INSERT INTO {name} VALUES ('{oid}', {line}, '{ordered:%Y-%m-%d %H:%M:%S.%f}', {amount}, {paid})"
            )
    engine.dispose()
    path = tmp_path / "legacy.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    mapping = load_mapping(path, {"BRIDGEHEAD_DB_URL": url, "BRIDGEHEAD_JWT_SECRET": JWT_SECRET})
    with TestClient(create_app(mapping)) as client:
        listed = client.get("/v1/lines?sort=order_id,line", headers=admin)
        assert listed.status_code == 200, listed.text
        assert listed.json()["data"] == [
            {"order_id": "A1", "line": 1, "ordered": "2026-03-29T01:30:15.123000", "amount": 1250.5, "paid": True},
            {"order_id": "A1", "line": 2, "ordered": "1998-12-31T23:59:59", "amount": 0.01, "paid": False},
            {"order_id": "B22", "line": 1, "ordered": "2026-01-01T00:00:00", "amount": -3.25, "paid": True},
        ]
        one = client.get("/v1/lines/B22,1", headers=admin)
        assert one.status_code == 200, one.text
        assert one.json()["order_id"] == "B22"
        assert client.get("/v1/lines?paid=false", headers=admin).json()["data"][0]["line"] == 2
