"""The T-SQL our reads become on SQL Server, checked without a server.

Each request goes through the real path (query string -> ``parse_list_params``
-> ``ReadQuery`` -> ``Reader``) against the SQLite demo database; the statements
the reader executed there are recorded and the very same objects are compiled
for ``mssql+pyodbc``. The dialect is set up as ``initialize()`` leaves it after
connecting to SQL Server 2022 (or 2008 R2, where paging differs), with pyodbc's
``qmark`` parameters, and compiled as pyodbc receives it: IN lists expanded,
``TOP n`` rendered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, sqlite

from gateway.auth.guards import authorize_read
from gateway.auth.principal import Principal
from gateway.exceptions import BadRequest
from gateway.params import parse_list_params
from legacy_adapters.database import Database, Prepared
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.query.builder import build_select, order_for, selected_columns
from legacy_adapters.query.exact import exact_value
from legacy_adapters.query.keyset import Keyset
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.reader import Embed, Page, Reader, ReadQuery, _KeyEquals
from legacy_adapters.writer import StoredRow, _unchanged

if TYPE_CHECKING:
    from legacy_adapters.mapping import Mapping

ADMIN = Principal("admin", frozenset({"admin"}))
PORTAL = Principal("portal", frozenset({"jobs:read"}), {"customer_id": "C0042"})
DELETED = "([DELFLG] <> 'Y')"


def exact(column: str, marks: str = "= ?") -> str:
    """A text comparison as SQL Server gets it: narrowed by the index, then compared code point by code point."""
    return f"({column} {marks} AND {column} COLLATE Latin1_General_100_BIN2_UTF8 {marks})"


def key_order(column: str, direction: str = "ASC") -> str:
    """A text key's ORDER BY term: the collation's order, its ties broken code point by code point."""
    return f"{column} {direction}, {column} COLLATE Latin1_General_100_BIN2_UTF8 {direction}"


def key_after(column: str, op: str = ">") -> str:
    """A keyset cursor past a text key, in ``key_order``'s order."""
    return f"({column} {op} ? OR {column} = ? AND {column} COLLATE Latin1_General_100_BIN2_UTF8 {op} ?)"


JOBNO_ORDER = key_order("[JOBMAST].[JOBNO]")
OPS_ORDER = f"{key_order('[JOBOPS].[JOBNO]')}, [JOBOPS].[OPSEQ] ASC"
OPS_OF_JOB = (
    "([JOBOPS].[JOBNO] = [JOBMAST].[JOBNO] "
    "AND [JOBOPS].[JOBNO] COLLATE Latin1_General_100_BIN2_UTF8 = [JOBMAST].[JOBNO])"
)

JOB_COLUMNS = ", ".join(
    f"[JOBMAST].[{c}]"
    for c in ("JOBNO", "CUSTNO", "ITEMNO", "JSTAT", "ORDDT", "ORDTM", "DUEDT", "RUSHFL", "QTY", "PRIO", "NOTES")
)


def sql_server(version: tuple[int, ...] = (16, 0, 1000)) -> sa.Dialect:
    """``mssql+pyodbc`` as it is after connecting: pyodbc's paramstyle and the server's paging features."""
    dialect = mssql.pyodbc.dialect(paramstyle="qmark")  # pyodbc.paramstyle == "qmark"
    dialect.server_version_info = version
    dialect._setup_version_attributes()  # what initialize() does on the first connection
    return dialect


def tsql(statement: sa.ClauseElement, dialect: sa.Dialect | None = None) -> tuple[str, list[Any]]:
    """The SQL text pyodbc is given (whitespace collapsed) and its positional parameters."""
    compiled = statement.compile(dialect=dialect or sql_server(), compile_kwargs={"render_postcompile": True})
    params = [compiled.params[name] for name in compiled.positiontup or ()]
    return " ".join(compiled.string.split()), params


class Recording:
    """The real demo database, remembering every statement the reader runs on it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.statements: list[sa.Select[Any]] = []
        self.prepared_values: list[dict[str, Any]] = []

    def fetch_all(self, statement: sa.Select[Any]) -> list[Sequence[Any]]:
        self.statements.append(statement)
        return self.database.fetch_all(statement)

    def scalar(self, statement: sa.Select[Any]) -> Any:
        self.statements.append(statement)
        return self.database.scalar(statement)

    def stream(self, statement: sa.Select[Any]) -> Iterator[Sequence[Any]]:
        self.statements.append(statement)
        return self.database.stream(statement)

    def prepare(self, statement: sa.Select[Any]) -> Any:
        self.statements.append(statement)
        return self.database.prepare(statement)

    def fetch_prepared(self, prepared: Any, values: dict[str, Any]) -> list[Sequence[Any]]:
        self.prepared_values.append(values)
        return self.database.fetch_prepared(prepared, values)


@pytest.fixture(scope="module")
def resources(demo_mapping: Mapping) -> dict[str, Resource]:
    return bind_version(demo_mapping, "v1")


@pytest.fixture(scope="module")
def database(demo_mapping: Mapping) -> Iterator[Database]:
    db = Database(demo_mapping.database)
    yield db
    db.dispose()


@pytest.fixture
def recording(database: Database) -> Recording:
    return Recording(database)


def list_page(
    recording: Recording,
    mapping: Mapping,
    resource: Resource,
    query: Sequence[tuple[str, str]],
    principal: Principal = ADMIN,
    after: tuple[Any, ...] | None = None,
) -> Page:
    """What ``GET /v1/<resource>?<query>`` does (gateway/resources.py list_rows), without HTTP."""
    access = authorize_read(resource, principal)
    params = parse_list_params(query, resource, access, mapping.api)
    embeds = []
    for name in params.embeds:
        target = resource.relations[name]
        target_access = authorize_read(target, principal)
        embeds.append(Embed(name, target, tuple(target_access.fields.values()), target_access.conditions))
    conditions = (*access.conditions, *params.filters)
    query_ = ReadQuery(
        resource, params.fields, conditions, params.sort, params.limit, after, params.offset, tuple(embeds)
    )
    page = Reader(recording).page(query_)  # type: ignore[arg-type]
    if params.count:
        Reader(recording).count(resource, conditions)  # type: ignore[arg-type]
    return page


def list_sql(
    recording: Recording,
    mapping: Mapping,
    resource: Resource,
    query: Sequence[tuple[str, str]],
    principal: Principal = ADMIN,
    dialect: sa.Dialect | None = None,
) -> tuple[str, list[Any]]:
    list_page(recording, mapping, resource, query, principal)
    return tsql(recording.statements[0], dialect)


# -- statement shape: quoting, TOP, OFFSET FETCH ------------------------------------------------------


def test_first_page_is_top_with_brackets_and_order_by(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    query = [("status", "released"), ("due_date[lt]", "2026-12-01"), ("limit", "20")]
    text, params = list_sql(recording, demo_mapping, resources["jobs"], query)

    assert text == (
        f"SELECT TOP 21 {JOB_COLUMNS} FROM [JOBMAST] "
        f"WHERE {DELETED} AND [JOBMAST].[JSTAT] COLLATE Latin1_General_100_BIN2_UTF8 = ? "
        "AND [JOBMAST].[DUEDT] < ? AND [JOBMAST].[DUEDT] IS NOT NULL AND ([JOBMAST].[DUEDT] NOT IN (?, ?)) "
        f"ORDER BY {JOBNO_ORDER}"
    )
    assert params == ["R", 20261201, 0, 99999999]


def test_sqlite_and_sql_server_compile_the_same_select(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    page = list_page(recording, demo_mapping, resources["jobs"], [("status", "released"), ("limit", "5")])
    statement = recording.statements[0]

    assert len(page.rows) == 5 and {row["status"] for row in page.rows} == {"released"}
    lite = statement.compile(dialect=sqlite.dialect())
    assert '"JOBMAST"."JSTAT" = ?' in lite.string and "LIMIT ?" in lite.string
    text, params = tsql(statement)
    assert "[JOBMAST].[JSTAT] COLLATE Latin1_General_100_BIN2_UTF8 = ?" in text and text.startswith("SELECT TOP 6 ")
    assert "LIMIT" not in text and '"' not in text
    assert params == ["R"]


def test_offset_page_is_offset_fetch_after_order_by(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    query = [("status", "released"), ("offset", "40"), ("limit", "20")]
    text, params = list_sql(recording, demo_mapping, resources["jobs"], query)

    assert "TOP" not in text
    assert text.endswith(
        f"WHERE {DELETED} AND [JOBMAST].[JSTAT] COLLATE Latin1_General_100_BIN2_UTF8 = ? "
        f"ORDER BY {JOBNO_ORDER} "
        "OFFSET ? ROWS FETCH FIRST ? ROWS ONLY"
    )
    assert params == ["R", 40, 21]


def test_offset_page_on_sql_server_2008_numbers_rows_instead(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    query = [("offset", "40"), ("limit", "20")]
    text, params = list_sql(recording, demo_mapping, resources["jobs"], query, dialect=sql_server((10, 50, 1600)))

    assert "OFFSET" not in text and "FETCH" not in text
    assert (
        "ROW_NUMBER() OVER (ORDER BY [JOBMAST].[JOBNO] ASC, [JOBMAST].[JOBNO] COLLATE Latin1_General_100_BIN2 ASC)"
        in text
    )
    assert text.endswith("WHERE mssql_rn > ? AND mssql_rn <= ? + ?")
    assert params == [40, 21, 40]


# -- values are bound, never spliced ------------------------------------------------------------------

MARKER = "ZQX"


@pytest.mark.parametrize(
    "query",
    [
        [("customer_id", f"{MARKER}01")],
        [("customer_id[in]", f"{MARKER}01,{MARKER}02")],
        [("job_number[gte]", f"{MARKER}9")],
        [("customer_id[like]", f"{MARKER}*")],
        [("notes[like]", f"*{MARKER}*")],
        [("notes[ne]", f"{MARKER}'; DROP TABLE JOBMAST; --")],
        [("notes", f"{MARKER}' OR '1'='1")],
    ],
    ids=lambda q: q[0][0],
)
def test_user_values_are_parameters_not_sql(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource], query: list[tuple[str, str]]
) -> None:
    text, params = list_sql(recording, demo_mapping, resources["jobs"], query)

    assert MARKER not in text
    assert any(MARKER in str(p) for p in params)


def test_row_filter_claim_is_a_parameter(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    portal = Principal("portal", frozenset({"jobs:read"}), {"customer_id": f"{MARKER}42"})
    text, params = list_sql(recording, demo_mapping, resources["jobs"], [], principal=portal)

    assert MARKER not in text
    assert f"WHERE {DELETED} AND {exact('[JOBMAST].[CUSTNO]')} ORDER BY" in text
    assert params == [f"{MARKER}42   "] * 2


# -- every operator in legacy terms -------------------------------------------------------------------

DUE_PRESENT = "[JOBMAST].[DUEDT] IS NOT NULL AND ([JOBMAST].[DUEDT] NOT IN (?, ?))"


BIN2 = "COLLATE Latin1_General_100_BIN2_UTF8"
# Codes compare by code point (the default collation would take 'r' for 'R'; query/exact.py).
EXACT = "[JOBMAST].[JSTAT] COLLATE Latin1_General_100_BIN2_UTF8"
KNOWN_STATUS = f"{EXACT} IN (?, ?, ?, ?)"
NOTES_LIKE = (
    f"[JOBMAST].[NOTES] {BIN2} LIKE ? ESCAPE '\\' AND [JOBMAST].[NOTES] IS NOT NULL AND ([JOBMAST].[NOTES] NOT IN (?))"
)


@pytest.mark.parametrize(
    ("parameter", "value", "where", "params"),
    [
        ("status", "released", "[JOBMAST].[JSTAT] COLLATE Latin1_General_100_BIN2_UTF8 = ?", ["R"]),
        # A code the map does not know is served as null: it differs from nothing.
        ("status[ne]", "on_hold", f"{KNOWN_STATUS} AND {EXACT} != ?", ["R", "H", "C", "P", "H"]),
        ("status[in]", "released,on_hold", f"{EXACT} IN (?, ?)", ["R", "H"]),
        ("due_date", "2026-12-01", f"[JOBMAST].[DUEDT] = ? AND {DUE_PRESENT}", [20261201, 0, 99999999]),
        ("due_date[ne]", "2026-12-01", f"[JOBMAST].[DUEDT] != ? AND {DUE_PRESENT}", [20261201, 0, 99999999]),
        ("due_date[lt]", "2026-12-01", f"[JOBMAST].[DUEDT] < ? AND {DUE_PRESENT}", [20261201, 0, 99999999]),
        ("due_date[lte]", "2026-12-01", f"[JOBMAST].[DUEDT] <= ? AND {DUE_PRESENT}", [20261201, 0, 99999999]),
        ("due_date[gt]", "2026-12-01", f"[JOBMAST].[DUEDT] > ? AND {DUE_PRESENT}", [20261201, 0, 99999999]),
        ("due_date[gte]", "2026-12-01", f"[JOBMAST].[DUEDT] >= ? AND {DUE_PRESENT}", [20261201, 0, 99999999]),
        ("due_date[isnull]", "true", "([JOBMAST].[DUEDT] IS NULL OR [JOBMAST].[DUEDT] IN (?, ?))", [0, 99999999]),
        ("due_date[isnull]", "false", DUE_PRESENT, [0, 99999999]),
        ("notes[isnull]", "true", "([JOBMAST].[NOTES] IS NULL OR [JOBMAST].[NOTES] IN (?))", [""]),
        # CHAR(8): the value is padded the way the column stores it.
        ("customer_id[in]", "C0001,C0002", exact("[JOBMAST].[CUSTNO]", "IN (?, ?)"), ["C0001   ", "C0002   "] * 2),
        ("customer_id", "C0001", exact("[JOBMAST].[CUSTNO]"), ["C0001   "] * 2),
        # A trailing * absorbs the pad spaces and keeps the index usable; anything else compares trimmed.
        # Code points, whatever the column's collation: like is case-sensitive, ilike spells out cases.
        ("customer_id[like]", "C00*", f"[JOBMAST].[CUSTNO] {BIN2} LIKE ? ESCAPE '\\'", ["C00%"]),
        ("customer_id[like]", "*42", f"rtrim([JOBMAST].[CUSTNO]) {BIN2} LIKE ? ESCAPE '\\'", ["%42"]),
        ("customer_id[ilike]", "c0*", f"[JOBMAST].[CUSTNO] {BIN2} LIKE ? ESCAPE '\\'", ["[Cc]0%"]),
        # NOTES = '' is served as null (null_if), so no pattern may match it.
        ("notes[like]", "*50%_off*", NOTES_LIKE, ["%50\\%\\_off%", ""]),
        # A backslash escapes the next character of the API pattern: \\ is one backslash, \* a star.
        ("notes[like]", "a\\\\b\\**", NOTES_LIKE, ["a\\\\b*%", ""]),
        # '[' is a character class in SQL Server's LIKE: a literal bracket must not become one.
        ("notes[like]", "[URGENT]*", NOTES_LIKE, ["\\[URGENT]%", ""]),
        ("rush", "true", exact("[JOBMAST].[RUSHFL]"), ["Y", "Y"]),
        ("rush", "false", exact("[JOBMAST].[RUSHFL]"), ["N", "N"]),
        ("priority", "true", "[JOBMAST].[PRIO] = ?", [1]),
        ("quantity[gte]", "12.5", "[JOBMAST].[QTY] >= ?", [1250]),
        ("quantity", "0.07", "[JOBMAST].[QTY] = ?", [7]),
        # Two columns, one instant: no row values in T-SQL, so the comparison is spelled out.
        (
            "ordered_at[gt]",
            "2026-01-15T10:30:00Z",
            "([JOBMAST].[ORDDT] > ? OR [JOBMAST].[ORDDT] = ? AND [JOBMAST].[ORDTM] > ?)",
            [20260115, 20260115, 103000],
        ),
        (
            "ordered_at[lte]",
            "2026-07-01T10:30:00+00:00",  # 11:30 in London (BST), the zone the legacy system wrote
            "([JOBMAST].[ORDDT] < ? OR [JOBMAST].[ORDDT] = ? AND [JOBMAST].[ORDTM] <= ?)",
            [20260701, 20260701, 113000],
        ),
        (
            "ordered_at",
            "2026-01-15T10:30:00Z",
            "[JOBMAST].[ORDDT] = ? AND [JOBMAST].[ORDTM] = ?",
            [20260115, 103000],
        ),
    ],
)
def test_operator_translation(
    recording: Recording,
    demo_mapping: Mapping,
    resources: dict[str, Resource],
    parameter: str,
    value: str,
    where: str,
    params: list[Any],
) -> None:
    text, bound = list_sql(recording, demo_mapping, resources["jobs"], [(parameter, value)])

    assert f" WHERE {DELETED} AND {where} ORDER BY {JOBNO_ORDER}" in text
    assert bound == params


@pytest.mark.parametrize(
    ("query", "parameter", "detail"),
    [
        (
            [("status[lt]", "released")],
            "status[lt]",
            "status cannot be compared with lt: its stored values do not sort like its API values",
        ),
        ([("sort", "status")], "sort", "status cannot be sorted: its stored values do not sort like its API values"),
        ([("due_date[like]", "2026*")], "due_date[like]", "like applies to text fields; due_date is not plain text"),
        ([("status", "shipped")], "status", "'shipped' is not one of: complete, on_hold, planned, released"),
        (
            [("due_date[gt]", "2026-13-01")],
            "due_date[gt]",
            "expected an ISO 8601 date such as 2026-12-01, got '2026-13-01'",
        ),
        ([("customer_id", "C00000001")], "customer_id", None),
    ],
)
def test_refused_filters_say_why_before_any_sql(
    recording: Recording,
    demo_mapping: Mapping,
    resources: dict[str, Resource],
    query: list[tuple[str, str]],
    parameter: str,
    detail: str | None,
) -> None:
    with pytest.raises(BadRequest) as caught:
        list_page(recording, demo_mapping, resources["jobs"], query)

    [error] = caught.value.errors
    assert error["parameter"] == parameter
    if detail is not None:
        assert error["detail"] == detail
    else:
        assert "8" in error["detail"]  # names the CHAR(8) width the value exceeds
    assert recording.statements == []


# -- keyset pagination without row values -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "first_op", "order_by"),
    [
        ("due_date", "> ?", "[JOBMAST].[DUEDT] ASC, [JOBMAST].[JOBNO] ASC"),
        # NULL sorts lowest, so descending it comes after every value (SQL Server's own order).
        ("-due_date", "< ? OR [JOBMAST].[DUEDT] IS NULL", f"[JOBMAST].[DUEDT] DESC, {JOBNO_ORDER}"),
    ],
)
def test_keyset_next_page_is_spelled_out(
    recording: Recording,
    demo_mapping: Mapping,
    resources: dict[str, Resource],
    sort: str,
    first_op: str,
    order_by: str,
) -> None:
    query = [("sort", sort), ("limit", "5"), ("due_date[isnull]", "false")]
    first = list_page(recording, demo_mapping, resources["jobs"], query)
    assert first.last is not None
    second = list_page(recording, demo_mapping, resources["jobs"], query, after=first.last)
    text, params = tsql(recording.statements[1])

    due, job = first.last
    assert (
        f"AND ([JOBMAST].[DUEDT] {first_op} OR [JOBMAST].[DUEDT] = ? AND {key_after('[JOBMAST].[JOBNO]')}) "
        f"ORDER BY {order_by}"
    ) in text
    assert ") > (" not in text and ") < (" not in text  # no (a, b) > (?, ?): T-SQL has no row values
    assert params == [0, 99999999, due, due, job, job, job]
    # The page really continues where the first ended, in the same order.
    seen = [row["job_number"] for row in first.rows]
    assert not set(seen) & {row["job_number"] for row in second.rows}
    dates = [row["due_date"] for row in (*first.rows, *second.rows)]
    assert dates == sorted(dates, reverse=sort.startswith("-"))


def test_keyset_over_three_columns_keeps_or_equal_on_the_last_only(resources: dict[str, Resource]) -> None:
    jobs = resources["jobs"]
    order = order_for(jobs, ((jobs.fields["ordered_at"], True),))
    statement = build_select(jobs, selected_columns((), order), [Keyset(order, (20260115, 103000, "J1"))], order)
    text, params = tsql(statement)

    assert (
        "WHERE ([DELFLG] <> 'Y') AND ([JOBMAST].[ORDDT] < ? OR [JOBMAST].[ORDDT] IS NULL "
        "OR [JOBMAST].[ORDDT] = ? AND ([JOBMAST].[ORDTM] < ? OR [JOBMAST].[ORDTM] IS NULL) "
        f"OR [JOBMAST].[ORDDT] = ? AND [JOBMAST].[ORDTM] = ? AND {key_after('[JOBMAST].[JOBNO]')}) "
        f"ORDER BY [JOBMAST].[ORDDT] DESC, [JOBMAST].[ORDTM] DESC, {JOBNO_ORDER}"
    ) in text
    assert params == [20260115, 20260115, 103000, 20260115, 103000, "J1", "J1", "J1"]


# -- count, embeds, row filters -----------------------------------------------------------------------


def test_count_has_the_same_where_and_no_paging(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    list_page(recording, demo_mapping, resources["jobs"], [("rush", "true"), ("count", "exact")])
    text, params = tsql(recording.statements[-1])

    assert text == f"SELECT count(*) AS count_1 FROM [JOBMAST] WHERE {DELETED} AND {exact('[JOBMAST].[RUSHFL]')}"
    assert params == ["Y", "Y"]


def test_embed_is_one_in_list_query_with_padded_keys(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    page = list_page(recording, demo_mapping, resources["jobs"], [("limit", "3"), ("embed", "operations")])
    assert len(recording.statements) == 2
    text, _ = tsql(recording.statements[1])

    assert text.startswith("SELECT [JOBOPS].[JOBNO], [JOBOPS].[OPSEQ], ")
    # Compiled once per shape: three keys bound into a list of four (powers of two), the last one again.
    assert text.endswith(f"FROM [JOBOPS] WHERE {exact('[JOBOPS].[JOBNO]', 'IN (?, ?, ?, ?)')} ORDER BY {OPS_ORDER}")
    keys = sorted(f"{row['job_number']:<10}" for row in page.rows)
    assert list(recording.prepared_values[-1].values()) == [*keys, keys[-1]]


def test_row_filter_through_a_relation_is_an_exists_subquery(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    text, params = list_sql(recording, demo_mapping, resources["operations"], [("limit", "10")], principal=PORTAL)

    assert (
        f"FROM [JOBOPS] WHERE EXISTS (SELECT * FROM [JOBMAST] WHERE {OPS_OF_JOB} "
        f"AND {exact('[JOBMAST].[CUSTNO]')} AND {DELETED}) ORDER BY {OPS_ORDER}"
    ) in text
    assert text.startswith("SELECT TOP 11 [JOBOPS].[JOBNO]")
    assert params == ["C0042   "] * 2


def test_embedded_rows_keep_the_row_filter(
    recording: Recording, demo_mapping: Mapping, resources: dict[str, Resource]
) -> None:
    page = list_page(
        recording, demo_mapping, resources["jobs"], [("embed", "operations"), ("limit", "2")], principal=PORTAL
    )
    assert len(page.rows) == 2, "the demo customer C0042 should have jobs"
    text, _ = tsql(recording.statements[1])

    assert text.endswith(
        f"FROM [JOBOPS] WHERE {exact('[JOBOPS].[JOBNO]', 'IN (?, ?)')} AND (EXISTS (SELECT * FROM [JOBMAST] "
        f"WHERE {OPS_OF_JOB} AND {exact('[JOBMAST].[CUSTNO]')} AND {DELETED})) "
        f"ORDER BY {OPS_ORDER}"
    )
    keys = sorted(f"{row['job_number']:<10}" for row in page.rows)
    # Compiled once per shape (the row filter's too): the keys and the token's claim are bound.
    assert list(recording.prepared_values[-1].values()) == [*keys, "C0042   "]


def test_get_by_key_reads_at_most_two_rows(recording: Recording, resources: dict[str, Resource]) -> None:
    jobs = resources["jobs"]
    Reader(recording).get(jobs, (f"{MARKER}1",), tuple(jobs.fields.values()))  # type: ignore[arg-type]
    text, params = tsql(recording.statements[0])

    assert text.startswith("SELECT TOP 2 [JOBMAST].[JOBNO]")
    # Narrowed by the index, then compared code point by code point: the one key bound twice.
    assert text.endswith(f"WHERE {DELETED} AND {exact('[JOBMAST].[JOBNO]')}")
    # Prepared once per resource: the key arrives as a parameter value, never in the SQL.
    assert params == [None, None]
    assert list(recording.prepared_values[-1].values()) == [f"{MARKER}1".ljust(10)]  # CHAR(10)


# -- identifiers a 1998 schema really has -------------------------------------------------------------

ODD_NAMES = """\
database:
  url: sqlite:///unused.db
versions:
  v1:
    resources:
      orders:
        table: "{table}"
        key: order_number
        anonymous: true
        where: "[CLOSED FLAG] <> 'Y' AND NOTE <> ':X'"
        fields:
          order_number: {{column: ORDER, type: string, transform: trim}}
          customer_id: {{column: CUST NO, type: string, transform: trim}}
          select: {{column: SELECT, type: integer}}
"""


@pytest.mark.parametrize(
    ("table", "rendered"),
    [
        # A lower-case, non-reserved schema needs no brackets; forcing them would turn a
        # three-part Legacy.dbo.JOBMAST into one identifier [Legacy.dbo].
        ("dbo.JOBMAST", "dbo.[JOBMAST]"),
        ("[dbo].[JOBMAST]", "dbo.[JOBMAST]"),
        ("Sales Data.JOB MAST", "[Sales Data].[JOB MAST]"),
        ("Legacy.dbo.JOBMAST", "[Legacy].dbo.[JOBMAST]"),
        ("ORDER", "[ORDER]"),
    ],
)
def test_schema_reserved_words_and_spaces_are_quoted(table: str, rendered: str) -> None:
    mapping = parse_mapping(ODD_NAMES.format(table=table), environ={})
    orders = bind_version(mapping, "v1")["orders"]
    fields = tuple(orders.fields.values())
    statement = build_select(
        orders, selected_columns(fields), [], order_for(orders, ((orders.fields["customer_id"], False),)), 5
    )
    text, params = tsql(statement)

    assert text == (
        f"SELECT TOP 5 {rendered}.[ORDER], {rendered}.[CUST NO], {rendered}.[SELECT] FROM {rendered} "
        # The mapping's own condition goes through as written, colon and all; nothing in it is a parameter.
        "WHERE ([CLOSED FLAG] <> 'Y' AND NOTE <> ':X') "
        f"ORDER BY {rendered}.[CUST NO] ASC, {key_order(f'{rendered}.[ORDER]')}"
    )
    assert params == []


def test_mapping_where_with_a_colon_runs(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE "ORDER" ("ORDER" TEXT, "CUST NO" TEXT, "SELECT" INT, NOTE TEXT, "CLOSED FLAG" TEXT)'
        )
        conn.exec_driver_sql("""INSERT INTO "ORDER" VALUES ('A', 'C1', 1, ':X', 'N'), ('B', 'C1', 2, 'ok', 'N')""")
    mapping = parse_mapping(ODD_NAMES.format(table="ORDER"), environ={})
    orders = bind_version(mapping, "v1")["orders"]
    statement = build_select(orders, selected_columns(tuple(orders.fields.values())))
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    engine.dispose()

    assert [tuple(r) for r in rows] == [("B", "C1", 2)]


# -- text keys: code point by code point, trailing spaces as the mapping serves them ------------------

CODES = """\
database:
  url: sqlite:///unused.db
versions:
  v1:
    resources:
      codes:
        table: CODES
        key: code
        anonymous: true
        writable: true
        fields:
          code: {column: CODE, type: string}
          label: {column: LABEL, type: string, transform: trim, length: 8}
"""
BIN2 = "COLLATE Latin1_General_100_BIN2_UTF8"


@pytest.fixture
def codes() -> Resource:
    return bind_version(parse_mapping(CODES, environ={}), "v1")["codes"]


def test_prepared_get_by_key_binds_the_key_twice(recording: Recording, resources: dict[str, Resource]) -> None:
    """The narrowed comparison names the key's placeholder twice: the prepared plan must bind it twice."""
    jobs = resources["jobs"]
    Reader(recording).get(jobs, ("J000001",), tuple(jobs.fields.values()))  # type: ignore[arg-type]
    prepared = Prepared(recording.statements[0], sql_server())

    assert prepared.sql.endswith(f"WHERE {DELETED} AND {exact('[JOBMAST].[JOBNO]')}")
    sql, parameters = prepared.bind({"key_0_0": "J000001   "})
    # TOP is a literal-execute value: written into the text as SQLAlchemy's execute does, not bound.
    assert sql.startswith("SELECT TOP 2 [JOBMAST].") and sql.endswith(prepared.sql.split("WHERE", 1)[1])
    assert parameters == ("J000001   ", "J000001   ")  # key, key


def test_a_plain_text_key_counts_trailing_spaces_on_sql_server(codes: Resource) -> None:
    """Its value is served as stored, so 'ab' must not find 'ab ' (SQL Server's = ignores trailing spaces)."""
    text, params = tsql(sa.select(codes.table).where(_KeyEquals(codes.fields["code"], "ab").clause()))

    assert text.endswith(f"WHERE ([CODES].[CODE] = ? AND ([CODES].[CODE] + N'.') {BIN2} = (? + N'.'))")
    assert params == ["ab", "ab"]


def test_a_plain_text_key_orders_and_pages_with_its_spaces(codes: Resource) -> None:
    order = order_for(codes, ())
    statement = build_select(codes, selected_columns((), order), [Keyset(order, ("ab",))], order, 3)
    text, params = tsql(statement)

    assert text.endswith(
        f"WHERE ([CODES].[CODE] > ? OR [CODES].[CODE] = ? AND ([CODES].[CODE] + N'.') {BIN2} > (? + N'.')) "
        f"ORDER BY [CODES].[CODE] ASC, ([CODES].[CODE] + N'.') {BIN2} ASC"
    )
    assert params == ["ab", "ab", "ab"]


def test_compare_and_set_names_every_text_column_exactly(codes: Resource) -> None:
    """A PATCH or DELETE must not change a row whose values differ only by case from those it read."""
    table = sa.table("CODES", sa.column("CODE"), sa.column("LABEL"))
    before = StoredRow({"CODE": "ab", "LABEL": "Red     "}, {}, "etag")
    text, params = tsql(sa.select(sa.literal(1)).where(*_unchanged(sql_server(), table, before, codes)))

    assert text.endswith(
        f"WHERE ([CODES].[CODE] = ? AND ([CODES].[CODE] + N'.') {BIN2} = (? + N'.')) "
        f"AND ([CODES].[LABEL] = ? AND [CODES].[LABEL] {BIN2} = ?)"
    )
    assert params == [1, "ab", "ab", "Red     ", "Red     "]


def test_the_key_check_groups_text_code_point_by_code_point(codes: Resource) -> None:
    column = codes.table.c.CODE
    text, _ = tsql(sa.select(sa.func.min(column)).group_by(exact_value(column, padded=False)))

    assert text == f"SELECT min([CODES].[CODE]) AS min_1 FROM [CODES] GROUP BY ([CODES].[CODE] + N'.') {BIN2}"


def test_a_prepared_statement_with_an_in_list_binds_alike_every_time() -> None:
    """IN lists are expanded per execution (SQLAlchemy pops what it expands): the second run needs it too."""
    table = sa.table("T", sa.column("A"), sa.column("B"))
    prepared = Prepared(sa.select(table.c.A).where(table.c.B.in_([1, 2, 3])).limit(5), sql_server())

    assert prepared.bind() == prepared.bind() == prepared.bind({})
    sql, parameters = prepared.bind()
    assert sql.startswith("SELECT TOP 5 ") and "IN (?, ?, ?)" in sql and parameters == (1, 2, 3)
