"""Copy a generated demo database into another engine (PostgreSQL, MariaDB, SQL Server, SQLite over ODBC).

``load_demo(source, url)`` recreates the demo tables in the target — the same
upper-case, quoted table and column names, ``CHAR(n)`` kept as ``CHAR(n)``, no
primary or foreign keys, and after the load the same legacy indexes — then copies
every row through SQLAlchemy in multi-row ``INSERT``s sized under every engine's
parameter limit (SQL Server: 2,100). Existing demo tables in the target are dropped
first, so point it at a scratch database.

With ``bulk=True`` the rows go through each server's bulk path instead, in one
transaction, the indexes still built after the load: PostgreSQL's ``COPY FROM STDIN``
over psycopg (the URL's host, port, user, password and database; the tables are still
made through ``url``), MariaDB/MySQL's ``LOAD DATA LOCAL INFILE`` over ``url``'s own
connection from a temporary tab-separated file. Both read the same text format (tab
between fields, ``\\N`` for NULL, backslash escapes). Other engines use the INSERTs.
A million JOBMAST rows take ~2 minutes on a busy 2-core machine this way, against
~4 (PostgreSQL) and ~9.5 (MariaDB) minutes of INSERTs through ODBC.

    python -m legacy_adapters.demo.load .bridgehead/demo.db 'postgresql+pyodbc://postgres@127.0.0.1:5432/test'
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import legacy_adapters.dialects  # noqa: F401 - registers postgresql+pyodbc and sqlite+pyodbc

__all__ = ("DEMO_TABLES", "load_demo")

DEMO_TABLES = ("CUSTMAST", "ITEMMAST", "STKBAL", "JOBMAST", "JOBOPS")
_MAX_PARAMETERS = 900
"""Bound values per INSERT: under SQLite's historical 999 and SQL Server's 2,100."""
_MAX_ROWS = 500
"""Rows per INSERT: under SQL Server's 1,000-row VALUES limit."""


def _target_table(source: sa.Table, metadata: sa.MetaData, schema: str | None) -> sa.Table:
    columns = [sa.Column(c.name, _portable(c.type), nullable=c.nullable, quote=True) for c in source.columns]
    return sa.Table(source.name, metadata, *columns, schema=schema, quote=True, quote_schema=True)


def _portable(type_: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    # SQLite reflects what schema.sql wrote; keep the legacy shapes, in each engine's spelling.
    if isinstance(type_, sa.CHAR):
        return sa.CHAR(type_.length)
    if isinstance(type_, sa.String):
        return sa.VARCHAR(type_.length)
    if isinstance(type_, sa.Integer):
        return sa.Integer()
    return type_


def load_demo(
    source: Path | str,
    url: str | sa.URL,
    *,
    schema: str | None = None,
    tables: tuple[str, ...] = DEMO_TABLES,
    engine: sa.Engine | None = None,
    keep_schema: bool = False,
    bulk: bool = False,
) -> dict[str, int]:
    """Recreate the demo tables in ``url`` (optionally in ``schema``, e.g. ``dbo``) and copy the rows.

    With ``keep_schema`` the tables must exist already (``seed_mssql.sql``); they are
    emptied and filled, and neither they nor their indexes are recreated. With ``bulk``
    PostgreSQL and MariaDB/MySQL are filled by ``COPY`` and ``LOAD DATA LOCAL INFILE``.

    Returns:
        Rows copied per table.
    """
    source_engine = sa.create_engine(f"sqlite:///{source}")
    target = engine or sa.create_engine(url)
    counts: dict[str, int] = {}
    try:
        reflected = sa.MetaData()
        reflected.reflect(source_engine, only=list(tables))
        inspector = sa.inspect(source_engine)
        metadata = sa.MetaData()
        copies = {name: _target_table(reflected.tables[name], metadata, schema) for name in tables}
        with target.begin() as conn:
            for table in reversed(copies.values()):
                if keep_schema:
                    conn.execute(table.delete())
                else:
                    table.drop(conn, checkfirst=True)
            for table in copies.values():
                if not keep_schema:
                    table.create(conn)
        for name, table in copies.items():
            copy = _BULK.get(target.dialect.name, _copy) if bulk else _copy
            counts[name] = copy(source_engine, reflected.tables[name], target, table)
        if keep_schema:
            return counts
        with target.begin() as conn:
            for name, table in copies.items():
                for index in inspector.get_indexes(name):
                    columns = [table.c[c] for c in index["column_names"] if c is not None]
                    sa.Index(index["name"], *columns, unique=bool(index["unique"]), quote=True).create(conn)
    finally:
        source_engine.dispose()
        if engine is None:
            target.dispose()
    return counts


def _copy(source_engine: sa.Engine, source: sa.Table, target: sa.Engine, table: sa.Table) -> int:
    rows_per_insert = max(1, min(_MAX_ROWS, _MAX_PARAMETERS // len(table.columns)))
    names = [c.name for c in table.columns]
    copied = 0
    with source_engine.connect() as reader, target.begin() as writer:
        result = reader.execution_options(yield_per=rows_per_insert).execute(sa.select(source))
        for batch in result.partitions(rows_per_insert):
            if target.dialect.paramstyle == "qmark":
                # One driver-level statement per batch size: compiled once, not once per batch.
                writer.exec_driver_sql(_insert_sql(target.dialect, table, len(batch)), _flat(batch))
            else:
                writer.execute(table.insert().values([dict(zip(names, row, strict=True)) for row in batch]))
            copied += len(batch)
    return copied


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """Rows in the text format both COPY and LOAD DATA read: tabs between fields, ``\\N`` for NULL."""
    escapes = _ESCAPES
    for row in rows:
        yield "\t".join("\\N" if v is None else str(v).translate(escapes) for v in row) + "\n"


def _source_rows(source_engine: sa.Engine, source: sa.Table, table: sa.Table) -> Iterator[tuple[Any, ...]]:
    """Every row of ``source`` in ``table``'s column order, straight from the sqlite3 cursor."""
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    raw = source_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f'SELECT {names} FROM "{source.name}"')
        while batch := cursor.fetchmany(10_000):
            yield from batch
    finally:
        raw.close()


def _chunks(lines: Iterator[str], size: int = 1 << 20) -> Iterator[bytes]:
    buffer: list[str] = []
    held = 0
    for line in lines:
        buffer.append(line)
        held += len(line)
        if held >= size:
            yield "".join(buffer).encode()
            buffer, held = [], 0
    if buffer:
        yield "".join(buffer).encode()


def _copy_postgresql(source_engine: sa.Engine, source: sa.Table, target: sa.Engine, table: sa.Table) -> int:
    import psycopg

    url = target.url
    quote = target.dialect.identifier_preparer
    columns = ", ".join(quote.format_column(c) for c in table.columns)
    counter = [0]
    lines = _counted(_text_lines(_source_rows(source_engine, source, table)), counter)
    statement = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
    conn = psycopg.connect(
        host=url.host or "localhost", port=url.port or 5432, user=url.username, password=url.password,
        dbname=url.database,
    )  # fmt: skip
    with conn, conn.cursor() as cursor, cursor.copy(statement) as copy:  # commits on a clean exit: one transaction
        for chunk in _chunks(lines):
            copy.write(chunk)
    return counter[0]


def _copy_mysql(source_engine: sa.Engine, source: sa.Table, target: sa.Engine, table: sa.Table) -> int:
    quote = target.dialect.identifier_preparer
    columns = ", ".join(quote.format_column(c) for c in table.columns)
    counter = [0]
    handle, name = tempfile.mkstemp(prefix=f"load-{source.name}-", suffix=".tsv")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in _chunks(_counted(_text_lines(_source_rows(source_engine, source, table)), counter)):
                out.write(chunk)
        literal = name.replace("\\", "\\\\").replace("'", "\\'")
        with target.begin() as conn:
            conn.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{literal}' INTO TABLE {quote.format_table(table)} CHARACTER SET utf8mb4 "
                f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({columns})"
            )
            loaded = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        if loaded != counter[0]:  # LOAD DATA turns a bad line into a warning, not an error
            raise RuntimeError(f"LOAD DATA loaded {loaded} of {counter[0]} rows into {source.name}")
    finally:
        os.unlink(name)
    return counter[0]


def _counted(lines: Iterator[str], counter: list[int]) -> Iterator[str]:
    for line in lines:
        counter[0] += 1
        yield line


_BULK = {"postgresql": _copy_postgresql, "mysql": _copy_mysql, "mariadb": _copy_mysql}


def _insert_sql(dialect: sa.Dialect, table: sa.Table, rows: int) -> str:
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.format_column(c) for c in table.columns)
    row = "(" + ", ".join("?" * len(table.columns)) + ")"
    return f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES {', '.join([row] * rows)}"


def _flat(batch: Any) -> tuple[Any, ...]:
    return tuple(value for row in batch for value in row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a database written by create_demo_database")
    parser.add_argument("url", help="SQLAlchemy URL of the target database (its demo tables are replaced)")
    parser.add_argument("--schema", default=None, help="target schema, e.g. dbo")
    parser.add_argument("--keep-schema", action="store_true", help="fill existing tables (seed_mssql.sql)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = load_demo(args.source, args.url, schema=args.schema, keep_schema=args.keep_schema)
    rows = ", ".join(f"{t} {n}" for t, n in counts.items())
    print(f"loaded {rows} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
