"""Which keys the database itself keeps unique, so their order needs no tie-break.

A text key's ORDER BY breaks case ties by the binary form where the collation ignores
case (``query/exact.py``), which no index can serve: on MariaDB a page of a million-row
table went from an index range scan to a sort of every row after the cursor. A unique
index (or primary key) on the key's columns, or on some of them, already makes case
variants impossible under the column's collation, and then the plain order is total.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from legacy_adapters.exceptions import LegacyError
from legacy_adapters.query.exact import ignores_case

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import Resource

__all__ = ("UNIQUE_IN_DATABASE", "mark_unique_keys")

UNIQUE_IN_DATABASE = "bridgehead_unique_in_database"
"""``Column.info`` flag: the column is (part of) a key a unique index of the database holds."""

log = structlog.get_logger("bridgehead.unique")


def mark_unique_keys(resources: Iterable[Resource], database_of: Callable[[Resource], Database]) -> None:
    """Flag the key columns of every resource whose key a unique index covers (only where collations ignore case).

    Read once when the app is made; a database that cannot be asked leaves the tie-break in (correct, slower).
    """
    unreachable: set[int] = set()
    # v1 and v2 (and their resources) often share a table: its catalogue is read once.
    read: dict[tuple[int, str | None, str], list[list[Any]] | None] = {}
    for resource in resources:
        database = database_of(resource)
        if not ignores_case(database.dialect) or id(database) in unreachable:
            continue
        table = resource.table
        where = (id(database), table.schema, table.name)
        if where not in read:
            read[where] = _unique_column_lists(database, table, unreachable)
        unique = read[where]
        if unique is None:
            continue
        key = {str(c.name).lower() for f in resource.key for c in f.columns}  # str: a quoted_name keeps its case
        if any(cols and {str(c).lower() for c in cols if c is not None} <= key for cols in unique):
            for field in resource.key:
                for column in field.columns:
                    column.info[UNIQUE_IN_DATABASE] = True


def _unique_column_lists(database: Database, table: sa.Table, unreachable: set[int]) -> list[list[Any]] | None:
    """The column lists of ``table``'s primary key, unique indexes and unique constraints; None if not read."""
    try:
        with database.errors():
            inspector = database.inspector()
            name, schema = table.name, table.schema
            unique: list[list[Any]] = [list(inspector.get_pk_constraint(name, schema).get("constrained_columns") or [])]
            unique += [list(i["column_names"]) for i in inspector.get_indexes(name, schema) if i["unique"]]
            unique += [list(u["column_names"]) for u in inspector.get_unique_constraints(name, schema)]
    except LegacyError as exc:  # the database is away (serve may start before it): ask it no more
        log.info("unique indexes not read; text keys keep their tie-break", error=type(exc).__name__)
        unreachable.add(id(database))
        return None
    except (NotImplementedError, LookupError, sa.exc.SQLAlchemyError) as exc:
        log.info("unique indexes not read; text keys keep their tie-break", table=table.name, error=type(exc).__name__)
        return None
    return unique
