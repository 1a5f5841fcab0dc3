"""``bridgehead introspect`` on the demo database: the starter mapping loads, checks clean and serves.

The demo schema is the introspector's target audience in miniature: no primary
keys, CHAR-padded codes, packed dates with sentinels, Y/N and 1/0 flags. Each
guess the issue names is asserted on the generated mapping itself (decoded
with ``parse_mapping``), and the written comments are asserted where the
issue says a comment must explain.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy.dialects import mssql

from gateway import create_app
from gateway.cli import mint_token
from legacy_adapters._guesses import guess_field
from legacy_adapters._naming import field_name, resource_name
from legacy_adapters.check import check_mapping
from legacy_adapters.cli import introspect_command
from legacy_adapters.database import Database
from legacy_adapters.introspect import introspect
from legacy_adapters.mapping.load import parse_mapping
from legacy_adapters.mapping.model import DatabaseConfig, FieldSpec, Mapping, ResourceSpec
from tests.conftest import JWT_SECRET

DEMO_TABLES = ("CUSTMAST", "ITEMMAST", "JOBMAST", "JOBOPS", "STKBAL")


def open_database(path: Path) -> Database:
    return Database(DatabaseConfig(url=f"sqlite:///{path}"))


def environ(db_path: Path) -> dict[str, str]:
    return {
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db_path}",
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{db_path.with_name(db_path.stem + '-introspect-state.db')}",
    }


@pytest.fixture(scope="module")
def text(demo_db_path: Path) -> str:
    database = open_database(demo_db_path)
    try:
        return introspect(database)
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def mapping(text: str, demo_db_path: Path) -> Mapping:
    return parse_mapping(text, source="introspected.yaml", environ=environ(demo_db_path))


def resource_of(mapping: Mapping, table: str) -> ResourceSpec:
    (found,) = [r for r in mapping.versions["v1"].resources.values() if r.table == table]
    return found


def field_of(resource: ResourceSpec, column: str) -> FieldSpec:
    (found,) = [f for f in resource.fields.values() if f.column == column]
    return found


_HEADER = re.compile(r"^ {6}# [^:\n]+: \d+ columns, ", re.MULTILINE)


def section(text: str, table: str) -> str:
    """The lines written for one table: from its header comment to the next table's."""
    start = text.index(f"      # {table}: ")
    following = _HEADER.search(text, start + 1)
    return text[start : following.start() if following else len(text)]


def test_the_mapping_decodes_with_secrets_from_the_environment(text: str, mapping: Mapping) -> None:
    resources = mapping.versions["v1"].resources
    assert {r.table for r in resources.values()} == set(DEMO_TABLES)
    assert set(resources) == {"customers", "items", "jobs", "job_operations", "stock_balances"}
    assert "  url: ${BRIDGEHEAD_DB_URL}\n" in text
    assert "  hs256_secret: ${BRIDGEHEAD_JWT_SECRET}\n" in text
    assert JWT_SECRET not in text
    for name, resource in resources.items():
        assert resource.scopes.read == f"{name}:read"
        assert not resource.anonymous


def test_the_mapping_passes_a_thorough_check(mapping: Mapping) -> None:
    database = Database(mapping.database)
    try:
        findings = check_mapping(mapping, database, thorough=True)
    finally:
        database.dispose()
    assert [f for f in findings if f.severity == "error"] == []
    # The demo's dirty rows (20230231 in DUEDT) are decoded as null: a warning, as for the hand-written mapping.
    assert any(f.path.endswith(".due_date") for f in findings)


def test_the_mapping_serves(mapping: Mapping, demo_db_path: Path) -> None:
    auth = mapping.auth
    assert auth is not None and auth.hs256_secret is not None
    token = mint_token(
        auth.hs256_secret,
        subject="t",
        scopes=["admin"],
        claims={},
        ttl_s=600,
        issuer=auth.issuer,
        audience=auth.audience,
    )
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(mapping)) as client:
        assert client.get("/v1/jobs").status_code == 401
        jobs = client.get("/v1/jobs?limit=3&sort=job_number&embed=customer", headers=headers)
        assert jobs.status_code == 200, jobs.text
        first = jobs.json()["data"][0]
        with sqlite3.connect(demo_db_path) as db:
            jobno, custno, rush = db.execute("SELECT JOBNO, CUSTNO, RUSHFL FROM JOBMAST ORDER BY JOBNO").fetchone()
        assert first["job_number"] == jobno.rstrip()
        assert first["rush_flag"] is (rush == "Y")
        assert first["customer"]["customer_number"] == custno.rstrip()
        one = client.get(f"/v1/jobs/{jobno.rstrip()}", headers=headers)
        assert one.status_code == 200 and one.json()["job_number"] == jobno.rstrip()
        assert client.get("/v1/jobs?due_date[lt]=2000-01-01&limit=1", headers=headers).status_code == 200
        for name in mapping.versions["v1"].resources:
            response = client.get(f"/v1/{name}?limit=5", headers=headers)
            assert response.status_code == 200, (name, response.text)
            assert len(response.json()["data"]) == 5


def test_packed_dates_flags_and_char_keys_are_guessed(mapping: Mapping) -> None:
    jobs = resource_of(mapping, "JOBMAST")
    due = field_of(jobs, "DUEDT")
    assert (due.type, due.date, due.null_if) == ("date", "yyyymmdd", [0, 99999999])
    rush = field_of(jobs, "RUSHFL")
    assert (rush.type, rush.transform) == ("boolean", "yes_no")
    assert field_of(jobs, "PRIO").transform == "one_zero"
    opened = field_of(resource_of(mapping, "CUSTMAST"), "OPENDT")
    assert (opened.type, opened.date, opened.null_if) == ("date", "cyymmdd", None)
    assert field_of(resource_of(mapping, "ITEMMAST"), "LASTRCV").date == "cyyddd"  # JD Edwards julian
    counted = field_of(resource_of(mapping, "STKBAL"), "CNTDT")
    assert (counted.date, counted.null_if) == ("mm/dd/yyyy", [""])
    job_number = field_of(jobs, "JOBNO")
    assert (job_number.transform, job_number.length) == ("trim", 10)
    assert field_of(jobs, "CUSTNO").length == 8
    assert jobs.key == "job_number"
    assert resource_of(mapping, "JOBOPS").key == ["job_number", "operation_sequence"]
    # A VARCHAR has no padding to trim; declared NULL-able but holding no NULL, it is not marked nullable.
    notes = field_of(jobs, "NOTES")
    assert (notes.transform, notes.nullable) == (None, False)
    assert field_of(resource_of(mapping, "CUSTMAST"), "EMAIL").nullable is True  # 4 NULLs in 100 rows


def test_the_reasons_are_written_as_comments(text: str) -> None:
    jobs = section(text, "JOBMAST")
    assert re.search(
        r"# every sampled value \(\d+ distinct, \d+\.\.\d+\) reads as a YYYYMMDD date; 0 and 99999999 read as null\n",
        jobs,
    )
    assert "unique index JOBMAST_K1" in jobs
    assert "# ORDDT + ORDTM may be one moment" in jobs
    # A status column: a map skeleton to finish by hand, commented out so the file still loads.
    assert re.search(r"\n {12}# map: \{C: c, H: h, .*X: x\}\n", jobs)
    assert "where: \"{DELFLG} <> 'Y'\"" in jobs


def test_stkbal_has_no_key_and_the_mapping_says_so(text: str, mapping: Mapping) -> None:
    assert "# key: the catalogue shows no primary key and no unique index\n" in section(text, "STKBAL")
    assert "the catalogue shows no primary key and no unique index" not in section(text, "JOBMAST")
    # The sample is the whole (small) table, so the unique pair is offered, and check verifies it.
    assert resource_of(mapping, "STKBAL").key == ["item_number", "warehouse"]
    assert "guessed (ITEMNO, WHSE): no repeated value and no NULL in the whole table" in section(text, "STKBAL")


def test_relations_are_guessed_from_key_column_names(text: str, mapping: Mapping) -> None:
    jobs = resource_of(mapping, "JOBMAST")
    customer = jobs.relations["customer"]
    assert (customer.resource, customer.on, customer.many) == (
        "customers",
        {"customer_number": "customer_number"},
        False,
    )
    assert "# guessed: JOBMAST.CUSTNO matches the key of CUSTMAST\n" in section(text, "JOBMAST")
    back = resource_of(mapping, "CUSTMAST").relations["jobs"]
    assert (back.resource, back.many) == ("jobs", True)
    assert resource_of(mapping, "JOBOPS").relations["job"].on == {"job_number": "job_number"}
    # STKBAL's key includes WHSE, which no other table has: nothing points at stock balances by it.
    assert all(
        r.resource != "stock_balances" or r.many
        for t in DEMO_TABLES
        for r in resource_of(mapping, t).relations.values()
    )


def test_only_a_bounded_sample_is_read(demo_db_path: Path) -> None:
    database = open_database(demo_db_path)
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", record)
    database.observe_statements(lambda statement, parameters, _seconds: statements.append((statement, parameters)))
    try:
        text = introspect(database, sample_rows=50)
    finally:
        database.dispose()
    reads = [(s, p) for s, p in statements if re.search(r"\bFROM\s+\"?(CUSTMAST|ITEMMAST|JOBMAST|JOBOPS|STKBAL)\b", s)]
    samples = [(s, p) for s, p in reads if "GROUP BY" not in s and "IS NULL" not in s]
    assert len(samples) == len(DEMO_TABLES)
    for statement, parameters in samples:
        assert re.search(r"\bLIMIT\b", statement), statement
        assert "COUNT(" not in statement.upper() and "ORDER BY" not in statement.upper()
        assert 50 in tuple(parameters), (statement, parameters)
    # A keyless table's candidate key is verified on the whole table: one grouped query for
    # repeats and one for NULLs, each stopping at its first hit. JOBMAST has a unique index.
    verifications = [s for s, p in reads if (s, p) not in samples]
    assert all("LIMIT" in s for s in verifications)
    assert len(verifications) % 2 == 0 and not any('"JOBMAST"' in s for s in verifications)
    assert "# JOBOPS: 9 columns, 50 rows sampled (first 50 rows)\n" in text
    # 50 rows are not the table: the key guessed from them was counted on the whole table.
    assert "guessed (ITEMNO, WHSE): no repeated value and no NULL in the whole table (counted)" in section(
        text, "STKBAL"
    )


def test_glob_selects_tables(demo_db_path: Path) -> None:
    database = open_database(demo_db_path)
    try:
        text = introspect(database, tables=["job*"])
    finally:
        database.dispose()
    mapping = parse_mapping(text, environ=environ(demo_db_path))
    assert {r.table for r in mapping.versions["v1"].resources.values()} == {"JOBMAST", "JOBOPS"}
    # The relation to customers is not offered when customers are not in the mapping.
    assert "customer" not in resource_of(mapping, "JOBMAST").relations


@pytest.fixture
def awkward_db(tmp_path: Path) -> Iterator[Path]:
    """A table named with a space and columns named like YAML words and query parameters; a keyless log."""
    path = tmp_path / "awkward.db"
    with sqlite3.connect(path) as db:
        db.execute(
            'CREATE TABLE "ORDER LINES" ("ORDER" CHAR(6) NOT NULL, "Y" CHAR(1) NOT NULL, COUNT INTEGER NOT NULL)'
        )
        db.execute('CREATE UNIQUE INDEX OL_K ON "ORDER LINES" ("ORDER")')
        db.executemany('INSERT INTO "ORDER LINES" VALUES (?, ?, ?)', [("A1", "Y", 3), ("A2", "N", 4)])
        db.execute("CREATE TABLE AUDLOG (MSG VARCHAR(40) NOT NULL, LVL CHAR(1) NOT NULL)")
        db.executemany("INSERT INTO AUDLOG VALUES (?, ?)", [("same", "E"), ("same", "E")])
    yield path


def test_awkward_names_are_quoted_and_a_keyless_table_is_commented_out(awkward_db: Path) -> None:
    database = open_database(awkward_db)
    try:
        text = introspect(database)
        mapping = parse_mapping(text, environ=environ(awkward_db))
        assert [f for f in check_mapping(mapping, database) if f.severity == "error"] == []
    finally:
        database.dispose()
    (lines,) = mapping.versions["v1"].resources.values()
    assert lines.table == "ORDER LINES"
    assert {f.column: name for name, f in lines.fields.items()} == {"ORDER": "order", "Y": "y", "COUNT": "count_value"}
    assert 'table: "ORDER LINES"' in text and 'column: "Y"' in text
    audlog = section(text, "AUDLOG")
    assert "# key: the catalogue shows no primary key and no unique index\n" in audlog
    assert "nothing unique in the whole table either: the resource is left commented out" in audlog
    assert re.search(r"\n {6}# aud_logs:\n", audlog) and "order_lines" not in audlog


def test_index_reflection_failure_falls_back_to_the_sample(demo_db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError  # what psqlODBC's text-typed arrays make SQLAlchemy raise

    monkeypatch.setattr(sa.engine.reflection.Inspector, "get_indexes", broken)
    database = open_database(demo_db_path)
    try:
        text = introspect(database, tables=["JOBMAST"])
    finally:
        database.dispose()
    jobs = section(text, "JOBMAST")
    assert "could not read indexes through this driver (AssertionError)" in jobs
    assert "the catalogue shows no primary key and no unique index" in jobs and "guessed (JOBNO)" in jobs
    assert resource_of(parse_mapping(text, environ=environ(demo_db_path)), "JOBMAST").key == "job_number"


@pytest.mark.parametrize(
    ("type_", "values", "expected"),
    [
        (mssql.MONEY(), [Decimal("12.5000")], ("decimal", None)),
        (mssql.BIT(), [True, False], ("boolean", None)),
        (mssql.UNIQUEIDENTIFIER(), [], ("string", None)),
        (mssql.DATETIME2(), [], ("datetime", None)),
        (sa.NUMERIC(9, 2), [Decimal("1.50")], ("decimal", None)),
        (sa.CHAR(8), ["20261201"], ("string", "trim")),  # a comment suggests yyyymmdd
        (sa.INTEGER(), [1261201, 980302, 0], ("date", "cyymmdd")),
        (sa.INTEGER(), [143005, 0, 235959], ("integer", None)),  # a time only when named like one
        (sa.INTEGER(), [20261201, 12345], ("integer", None)),  # one value that is no date: no guess
        (sa.VARCHAR(1), ["A", "I", "A"], ("boolean", "active_inactive")),
        (sa.CHAR(1), ["1", "0"], ("boolean", "one_zero")),
        (sa.CHAR(1), ["A"], ("string", "trim")),  # one code alone is not a flag
    ],
)
def test_types_and_values_give_api_types(type_: Any, values: list[Any], expected: tuple[str, str | None]) -> None:
    guess = guess_field({"name": "OPENDT" if expected[1] == "cyymmdd" else "X1", "type": type_}, values)
    assert (guess.type, guess.transform or guess.date) == expected
    assert guess.skip is None


def test_types_without_an_api_form_are_left_out_with_the_reason() -> None:
    guess = guess_field({"name": "ROWVER", "type": mssql.TIMESTAMP(), "nullable": False}, [])
    assert guess.skip is not None and "TIMESTAMP" in guess.skip


@pytest.mark.parametrize(
    ("legacy", "api"),
    [
        ("CUSTNO", "customer_number"),
        ("JOBNBR", "job_number"),
        ("ORDNUM", "order_number"),
        ("DUEDT", "due_date"),
        ("ORDTM", "order_time"),
        ("QTY", "quantity"),
        ("OPDESC", "operation_description"),
        ("DESCR", "description"),
        ("JSTAT", "j_status"),
        ("RUSHFL", "rush_flag"),
        ("DELFLG", "deleted_flag"),
        ("INVAMT", "invoice_amount"),
        ("NOTES", "notes"),  # a word, not NO + TES
        ("CustNo", "customer_number"),
        ("ship_to_addr", "ship_to_address"),
        ("ZORK", "zork"),  # unknown: plain snake_case
        ("2NDADDR", "c_2_nd_address"),
    ],
)
def test_legacy_names_become_api_names(legacy: str, api: str) -> None:
    assert field_name(legacy) == api


def test_table_names_become_plural_resources() -> None:
    assert [resource_name(t) for t in ("CUSTMAST", "JOBOPS", "STKBAL", "ITEMMST", "INVHIST")] == [
        "customers",
        "job_operations",
        "stock_balances",
        "items",
        "invoice_histories",
    ]
    # Whole words are not cut into an abbreviation and leftovers (CUST + OMERS -> customer_omers).
    assert [resource_name(t) for t in ("CUSTOMERS", "CUSTOMER", "ORDER", "ITEM MASTER", "ORDLINES", "SHIPLOG")] == [
        "customers",
        "customers",
        "orders",
        "items",
        "order_lines",
        "ship_logs",
    ]
    assert [field_name(c) for c in ("ACTIVE", "CRLIMIT", "SHPTM", "LRCVDT", "SHIP DATE")] == [
        "active",
        "credit_limit",
        "ship_time",
        "last_received_date",
        "ship_date",
    ]


def test_the_command_writes_a_file_and_will_not_overwrite_it(demo_db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bridgehead.yaml"
    args = ["--tables", "CUST*,ITEM*", "-o", str(out)]
    env = {"BRIDGEHEAD_DB_URL": f"sqlite:///{demo_db_path}"}
    first = CliRunner().invoke(introspect_command, args, env=env)
    assert first.exit_code == 0, first.output
    mapping = parse_mapping(out.read_text(encoding="utf-8"), environ=environ(demo_db_path))
    assert set(mapping.versions["v1"].resources) == {"customers", "items"}
    again = CliRunner().invoke(introspect_command, args, env=env)
    assert again.exit_code == 2 and "--force" in again.output
    assert CliRunner().invoke(introspect_command, [*args, "--force"], env=env).exit_code == 0
    broken = CliRunner().invoke(introspect_command, ["--url", "nosuchdb://user:hunter2@host/x"])
    assert broken.exit_code == 2 and "hunter2" not in broken.output and "Traceback" not in broken.output


def test_digit_dates_in_a_text_column_are_suggested_not_applied() -> None:
    guess = guess_field({"name": "SHIPDT", "type": sa.CHAR(8)}, ["20261201", "19980302 "])
    assert (guess.transform, guess.length) == ("trim", 8)
    assert any("date: yyyymmdd" in why for why in guess.why)
    assert not any("yyyymmdd" in why for why in guess_field({"name": "X", "type": sa.CHAR(8)}, ["20261341"]).why)
