"""NULL-aware ORDER BY and keyset predicates compile to one order on every dialect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite

from legacy_adapters.query.keyset import Keyset, SortKey

TABLE = sa.table("JOBMAST", sa.column("DUEDT"), sa.column("JOBNO"))
DIALECTS = {
    "mssql": mssql.dialect(),
    "mysql": mysql.dialect(),
    "postgresql": postgresql.dialect(),
    "sqlite": sqlite.dialect(),
}


def compiled(descending: bool, after: tuple[object, ...], dialect: str) -> str:
    order = (SortKey(TABLE.c.DUEDT, descending, nullable=True), SortKey(TABLE.c.JOBNO))
    statement = sa.select(TABLE).where(Keyset(order, after).clause()).order_by(*(k.order_by() for k in order))
    return " ".join(str(statement.compile(dialect=DIALECTS[dialect])).split())


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("descending", [False, True])
def test_null_sorts_lowest_everywhere(dialect: str, descending: bool) -> None:
    sql = compiled(descending, (20260101, "J1"), dialect)
    if dialect == "postgresql":  # PostgreSQL alone puts NULL highest by default
        assert ("DESC NULLS LAST" if descending else "ASC NULLS FIRST") in sql
    else:  # the others sort NULL lowest themselves; SQL Server and MariaDB would reject NULLS FIRST
        assert "NULLS" not in sql
    # Descending, NULL comes after every value, so a page ending on a value continues into the NULLs.
    assert ("IS NULL" in sql) is descending


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_a_null_cursor_value_compares_with_is_null(dialect: str) -> None:
    ascending = compiled(False, (None, "J1"), dialect)
    assert "IS NOT NULL OR" in ascending and "IS NULL AND" in ascending
    assert "= NULL" not in ascending and "> NULL" not in ascending
    descending = compiled(True, (None, "J1"), dialect)
    assert "IS NOT NULL" not in descending.split("WHERE")[1]  # nothing is below NULL
    assert "IS NULL AND" in descending


def test_order_terms_do_not_share_a_cache_key() -> None:
    one = SortKey(TABLE.c.DUEDT, False, nullable=True).order_by()
    other = SortKey(TABLE.c.JOBNO, True, nullable=True).order_by()
    assert one._generate_cache_key() != other._generate_cache_key()
