"""``bridgehead introspect`` on the AS/400-style distributor: the starter an expert would write.

Asserted on the YAML text itself, line by line, because the comments carry the
reasons and the layout is what a consultant reads first. That the same text
checks clean and serves the right values on SQLite and PostgreSQL is
``tests/db/test_distributor.py``'s job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from legacy_adapters.database import Database
from legacy_adapters.introspect import introspect
from legacy_adapters.mapping.model import DatabaseConfig
from legacy_adapters.samples.distributor import create_distributor

_HEADER = re.compile(r"^ {6}# [^:\n]+: \d+ columns, ", re.MULTILINE)


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("distributor") / "distributor.db"
    create_distributor(f"sqlite:///{path}")
    database = Database(DatabaseConfig(url=f"sqlite:///{path}"))
    try:
        return introspect(database)
    finally:
        database.dispose()


def section(text: str, table: str) -> str:
    start = text.index(f"      # {table}: ")
    following = _HEADER.search(text, start + 1)
    return text[start : following.start() if following else len(text)]


def field_line(text: str, table: str, name: str) -> str:
    """The field's flow mapping, or its block form joined into one line."""
    body = section(text, table)
    match = re.search(rf"^ {{10}}{name}: (\{{.*\}})$", body, re.MULTILINE)
    if match:
        return match.group(1)
    block = re.search(rf"^ {{10}}{name}:\n((?: {{12}}.*\n)+)", body, re.MULTILINE)
    assert block, f"no field {name} in {table}"
    return ", ".join(line.strip() for line in block.group(1).splitlines() if not line.strip().startswith("#"))


def test_resources_are_named_in_plural_snake_case(starter: str) -> None:
    names = re.findall(r"^ {6}(?:# )?([a-z_]+):\n {8}(?:# )?table:", starter, re.MULTILINE)
    assert names == ["customers", "items", "orders", "order_lines", "ship_logs"]
    assert "_omers" not in starter and "_ive" not in starter  # no CUST+OMERS, no ACT+IVE
    assert 'table: "ITEM MASTER"' in starter and "table: ORDER\n" in starter


def test_keyless_tables_get_their_natural_key_counted_on_the_whole_table(starter: str) -> None:
    lines = section(starter, "ORDLINES")
    assert "\n      order_lines:\n        table: ORDLINES\n        key: [order_number, line]\n" in lines
    assert "# key: guessed (ORDNO, LINE): no repeated value and no NULL in the whole table (counted)\n" in lines
    ship = section(starter, "SHIPLOG")
    assert "\n        key: [branch, carrier, sequence]\n" in ship
    # The DBA's index on (BRANCH, CARRIER) is not unique, and the sample already shows it.
    assert "# key: (BRANCH, CARRIER) repeats in the 1000 sampled rows: not a key\n" in ship
    assert "left commented out" not in starter


def test_the_order_to_lines_relation_is_found(starter: str) -> None:
    orders = section(starter, "ORDER")
    assert 'order_lines: {resource: order_lines, "on": {order_number: order_number}, many: true}' in orders
    assert 'ship_logs: {resource: ship_logs, "on": {order_number: order_number}, many: true}' in orders
    lines = section(starter, "ORDLINES")
    assert 'order: {resource: orders, "on": {order_number: order_number}, many: false}' in lines
    assert 'item: {resource: items, "on": {item_number: item_number}, many: false}' in lines


def test_nullable_only_where_the_data_holds_nulls(starter: str) -> None:
    # ORDLINES declares every column NULL-able and holds no NULL: sortable fields, with the reason.
    assert field_line(starter, "ORDLINES", "order_number") == "{column: ORDNO, type: integer}"
    assert (
        "# declared NULL-able but no NULL in the 1000 sampled rows: not marked nullable (check verifies)\n"
        "          order_number: {column: ORDNO"
    ) in section(starter, "ORDLINES")
    assert "nullable: true" in field_line(starter, "ORDER", "ship_date")
    assert "nullable: true" in field_line(starter, "CUSTOMERS", "email")
    assert "nullable" not in field_line(starter, "CUSTOMERS", "region")


@pytest.mark.parametrize(
    ("table", "name", "spec"),
    [
        ("ORDER", "order_date", "{column: ORDDT, type: date, date: yyyyddd}"),
        ("ORDER", "order_time", "{column: ORDTM, type: time, time: hhmm}"),
        ("ORDER", "rush", "{column: RUSH, type: boolean, transform: boolean, bool_values: [T, F]}"),
        ("ORDER", "ship_date", '{column: "SHIP DATE", type: date, date: cyymmdd, nullable: true}'),
        ("CUSTOMERS", "created_date", "{column: CRTDT, type: date, date: cyymmdd}"),
        ("ITEM MASTER", "last_received_date", "{column: LRCVDT, type: date, date: cyyddd, null_if: [0]}"),
        ("ITEM MASTER", "last_received_time", "{column: LRCVTM, type: time, time: hhmmss}"),
        ("ITEM MASTER", "discontinued", "{column: DISCONT, type: boolean, transform: yes_no}"),
        ("ORDLINES", "due_date", '{column: "DUE DT", type: date, date: yymmdd}'),
        ("ORDLINES", "promised_date", "{column: PROMDT, type: date, date: yyyymmdd}"),
        ("SHIPLOG", "ship_time", "{column: SHPTM, type: time, time: hhmm}"),
        ("SHIPLOG", "user", "{column: USER, type: string, transform: trim, length: 10}"),
    ],
)
def test_encodings_are_guessed_from_the_data(starter: str, table: str, name: str, spec: str) -> None:
    assert field_line(starter, table, name).startswith(spec.removesuffix("}"))


def test_every_guess_says_why(starter: str) -> None:
    orders = section(starter, "ORDER")
    assert re.search(
        r"# every sampled value \(\d+ distinct, 2024\d{3}\.\.2026\d{3}\) reads as a YYYYDDD date\n", orders
    )
    assert "below 2400 with minutes < 60: HHMM (as HHMMSS every time would fall before 00:24)" in orders
    assert "# only 'T' and 'F' sampled: a flag (T = true)\n" in orders
    # '??' is noticed: the map skeleton and what an unmapped code becomes, commented out.
    assert re.search(r"# unknown codes: '\?\?' on \d+ rows of 1000 sampled look like no code", orders)
    assert "            # map: {CN: cn, IN: in, OP: op, PK: pk, SH: sh}\n" in orders
    assert "            # unmapped: null" in orders
    ship = section(starter, "SHIPLOG")
    assert (
        "# SHPDT + SHPTM may be one moment: {column: SHPDT, date: cyymmdd, time_column: SHPTM, time: hhmm,"
        " timezone: <IANA zone>, type: datetime}\n"
    ) in ship


def test_the_command_counts_no_table_left_without_a_key(starter: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from legacy_adapters.cli import introspect_command

    db = tmp_path / "d.db"
    create_distributor(f"sqlite:///{db}", rows=300)
    out = tmp_path / "starter.yaml"
    result = CliRunner().invoke(introspect_command, ["--url", f"sqlite:///{db}", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "tables left commented out for want of a key: 0" in result.output
