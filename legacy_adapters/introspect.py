"""Live schema -> starter mapping: ``bridgehead introspect --url URL``.

Reads the catalogue through SQLAlchemy inspection and a bounded sample of each
table (``SELECT … LIMIT n`` / ``TOP n``), then proposes names, types, codecs,
keys and relations. The one whole-table read is for a table without a declared
key: its candidate key is counted (repeats and NULLs, each query stopping at
its first hit, under the statement timeout), because a key unique in 1,000
sampled rows may repeat in the next million. Everything that is a guess says so in a
YAML comment with its reason; the result loads, passes ``bridgehead check`` and
serves, so a user starts from a working API and corrects it, instead of from a
blank file. Value guesses live in ``_guesses.py``, names in ``_naming.py`` and
the YAML text in ``_starter_yaml.py``.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from legacy_adapters._guesses import FieldGuess, guess_field
from legacy_adapters._naming import field_name, resource_name, singular, words
from legacy_adapters._starter_yaml import render_mapping, scalar
from legacy_adapters.exceptions import DatabaseError, LegacyError

if TYPE_CHECKING:
    from legacy_adapters.database import Database

__all__ = ("SAMPLE_ROWS", "UNKEYED", "Relation", "TableModel", "introspect", "read_tables")

SAMPLE_ROWS = 1000
"""Rows read per table: enough to see the codes and sentinels, bounded on a 50-million-row table."""
UNKEYED = "the resource is left commented out"
"""Said of each table written without a key (the CLI counts them)."""
_RESERVED = frozenset({"sort", "fields", "embed", "limit", "cursor", "offset", "count"})
"""Query parameter names a field may not take (see mapping/validate.py)."""
_GENERIC_KEYS = frozenset({"ID", "KEY", "SEQ", "ROWID", "LINE", "LN"})
"""Key names every table has: matching them across tables would relate everything to everything."""


@dataclass
class Relation:
    """A guessed relation: the other resource and which of its fields match which of ours."""

    resource: str
    on: dict[str, str]
    many: bool
    why: str


@dataclass
class TableModel:
    """One table as the starter mapping will serve it."""

    name: str
    schema: str | None
    resource: str
    fields: dict[str, FieldGuess]
    """API field name -> guess, in column order."""
    sampled: int
    whole_table: bool
    """Fewer rows than the limit came back: the sample was the whole table."""
    key: tuple[str, ...] | None = None
    """Key columns; ``None``: no key, so the resource is written commented out."""
    key_why: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    where_hint: str | None = None
    relations: dict[str, Relation] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def field_of(self, column: str) -> str:
        return next(name for name, guess in self.fields.items() if guess.column == column)

    def columns(self) -> set[str]:
        return {g.column for g in self.fields.values() if g.skip is None}


def introspect(
    database: Database, *, schema: str | None = None, tables: Sequence[str] = (), sample_rows: int = SAMPLE_ROWS
) -> str:
    """Write a starter mapping (YAML text) for the tables of ``database``.

    Args:
        database: the legacy database to read.
        schema: the schema to read (``dbo``); the connection's default when omitted.
        tables: glob patterns such as ``JOB*`` (case-insensitive); every table when empty.
        sample_rows: most rows read from each table.

    Raises:
        DatabaseError: the catalogue or a sample could not be read (classified by the backend).
        LegacyError: no table matches ``tables``.
    """
    models = read_tables(database, schema=schema, tables=tables, sample_rows=sample_rows)
    return render_mapping(models, sample_rows=sample_rows)


def read_tables(
    database: Database, *, schema: str | None = None, tables: Sequence[str] = (), sample_rows: int = SAMPLE_ROWS
) -> list[TableModel]:
    """The tables as models with guessed fields, keys and relations (what ``introspect`` renders)."""
    try:
        inspector = sa.inspect(database.engine)
        names = inspector.get_table_names(schema=schema)
    except sa.exc.DBAPIError as exc:
        raise database.backend.classify(exc) from None
    chosen = [n for n in names if not tables or any(fnmatch.fnmatchcase(n.upper(), p.upper()) for p in tables)]
    if not chosen:
        where = f" in schema {schema!r}" if schema else ""
        raise LegacyError(f"no table{where} matches {', '.join(tables) or '*'} (tables: {', '.join(names) or 'none'})")
    models: list[TableModel] = []
    taken: set[str] = set()
    for name in sorted(chosen):
        model = _read_table(database, inspector, schema, name, sample_rows)
        model.resource = _unique(model.resource, taken)
        taken.add(model.resource)
        models.append(model)
    _guess_relations(models)
    return models


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def _reflect(what: str, call: Any, notes: list[str]) -> Any:
    """Run one catalogue call; a driver that cannot answer it costs a comment, not the run.

    psqlODBC returns PostgreSQL arrays as text, so SQLAlchemy's index reflection fails
    with an AssertionError there; any driver may lack a catalogue function. Keys are
    then guessed from the sample instead.
    """
    try:
        # Reflection through ODBC warns about details it cannot see (partial-index predicates
        # via sqliteodbc); what matters for a key is reported below, the rest is noise on stderr.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            return call()
    except Exception as exc:  # broad on purpose: see the docstring
        notes.append(f"could not read {what} through this driver ({type(exc).__name__}); keys may come from the sample")
    return None


def _flag(value: Any) -> bool:
    """A catalogue yes/no: sqliteodbc returns PRAGMA columns as text, where '0' would be truthy."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "y", "yes")
    return bool(value)


def _read_table(database: Database, inspector: sa.Inspector, schema: str | None, name: str, limit: int) -> TableModel:
    try:
        columns = inspector.get_columns(name, schema=schema)
    except sa.exc.DBAPIError as exc:
        raise database.backend.classify(exc) from None
    notes: list[str] = []
    pk = _reflect("the primary key", lambda: inspector.get_pk_constraint(name, schema=schema), notes) or {}
    indexes = _reflect("indexes", lambda: inspector.get_indexes(name, schema=schema), notes) or []
    uniques = _reflect("unique constraints", lambda: inspector.get_unique_constraints(name, schema=schema), notes) or []
    guesses = [guess_field(c, []) for c in columns]
    servable = [c for c, g in zip(columns, guesses, strict=True) if g.skip is None]
    table = sa.Table(
        name, sa.MetaData(), *(sa.Column(c["name"], quote=True) for c in servable), schema=schema, quote=True
    )
    # .limit() compiles to LIMIT, TOP or FETCH FIRST per dialect: the sample never scans a large table.
    rows = database.fetch_all(sa.select(*table.c).limit(limit)) if servable else []
    whole = len(rows) < limit
    sample = "the whole table" if whole else f"the {len(rows)} sampled rows"
    samples = {c["name"]: [row[i] for row in rows] for i, c in enumerate(servable)}
    fields: dict[str, FieldGuess] = {}
    for column in columns:
        guess = guess_field(column, samples.get(column["name"], []), sample=sample)
        fields[_unique(_api_name(column["name"]), set(fields))] = guess
    model = TableModel(name, schema, resource_name(name), fields, len(rows), whole, notes=notes)
    _choose_key(database, table, model, pk, indexes, uniques, rows, [c["name"] for c in servable])
    _note_pairs(model)
    for guess in fields.values():
        if guess.transform == "yes_no" and "deleted" in words(guess.column):
            model.where_hint = f"{{{guess.column}}} <> 'Y'"
    return model


def _api_name(column: str) -> str:
    name = field_name(column)
    return f"{name}_value" if name in _RESERVED else name


def _choose_key(
    database: Database,
    table: sa.Table,
    model: TableModel,
    pk: dict[str, Any],
    indexes: list[Any],
    uniques: list[Any],
    rows: list[Any],
    order: list[str],
) -> None:
    # Keyable includes columns declared NULL-able that hold no NULL: keyless legacy files declare
    # nearly every column so, and their natural key is among them.
    keyable = {g.column for g in model.fields.values() if g.keyable}
    declared = list(pk.get("constrained_columns") or ())
    if declared and set(declared) <= keyable:
        model.key = tuple(declared)
        model.key_why.append(f"primary key {pk.get('name') or ''}".rstrip())
        return
    unique_sets = [(i["name"], i["column_names"]) for i in indexes if _flag(i.get("unique"))]
    unique_sets += [(u["name"], u["column_names"]) for u in uniques]
    for index_name, cols in sorted(unique_sets, key=lambda item: len(item[1])):
        if cols and None not in cols and set(cols) <= keyable:
            model.key = tuple(cols)
            model.key_why.append(f"no primary key; unique index {index_name} on ({', '.join(cols)})")
            return
    model.key_why.append("the catalogue shows no primary key and no unique index")
    # Legacy tables lead with their key columns, and their plain indexes usually cover it.
    candidates = [tuple(i["column_names"]) for i in sorted(indexes, key=lambda i: len(i["column_names"]))]
    leading = [c for c in order if c in keyable][:3]
    candidates += [tuple(leading[:n]) for n in range(1, len(leading) + 1)]
    tried: set[tuple[str, ...]] = set()
    for cols in candidates:
        if not rows or not cols or None in cols or not set(cols) <= keyable or cols in tried:
            continue
        tried.add(cols)
        positions = [order.index(c) for c in cols]
        seen = {tuple(_normal(row[p]) for p in positions) for row in rows}
        listed = ", ".join(cols)
        if len(seen) < len(rows):
            model.key_why.append(f"({listed}) repeats in {_scope(model)}: not a key")
            continue
        if model.whole_table:
            model.key = cols
            model.key_why.append(f"guessed ({listed}): no repeated value and no NULL in the whole table")
            return
        verdict = _unique_in_table(database, table, cols)
        if verdict is False:
            model.key_why.append(f"({listed}) is unique in the sample but repeats (or is NULL) in the table")
            continue
        model.key = cols
        if verdict:
            model.key_why.append(f"guessed ({listed}): no repeated value and no NULL in the whole table (counted)")
        else:
            model.key_why.append(
                f"guessed ({listed}): no repeated value in the {len(rows)} sampled rows only"
                " (the table was too slow to count); check verifies it"
            )
        return
    model.key_why.append(f"nothing unique in {_scope(model)} either: {UNKEYED}; declare a key and run bridgehead check")


def _scope(model: TableModel) -> str:
    return "the whole table" if model.whole_table else f"the {model.sampled} sampled rows"


def _unique_in_table(database: Database, table: sa.Table, cols: tuple[str, ...]) -> bool | None:
    """Whether ``cols`` hold no NULL and no repeat in the whole table; None when the database was too slow.

    One grouped scan per keyless table, under the statement timeout: the sample alone would
    propose a key that repeats after row 1,000, and keep out one that is really unique.
    """
    columns = [table.c[c] for c in cols]
    repeats = sa.select(*columns).group_by(*columns).having(sa.func.count() > 1).limit(1)
    nulls = sa.select(sa.literal(1)).select_from(table).where(sa.or_(*(c.is_(None) for c in columns))).limit(1)
    try:
        return not database.fetch_all(repeats) and not database.fetch_all(nulls)
    except DatabaseError:
        return None


def _normal(value: Any) -> Any:
    # CHAR padding and a case-insensitive collation make 'AB ' and 'ab' the same key on SQL Server.
    return value.rstrip(" ").lower() if isinstance(value, str) else value


def _note_pairs(model: TableModel) -> None:
    """Point out a date column and a time column with the same prefix: one moment in two columns."""
    for date_field, date in model.fields.items():
        if date.date is None or not date_field.endswith("date"):
            continue
        for time_field, time in model.fields.items():
            if time.time is not None and time_field == date_field.removesuffix("date") + "time":
                # Only suggested: the time zone the legacy programs wrote in is not in the data.
                pair = (
                    f"{{column: {scalar(date.column)}, date: {date.date}, time_column: {scalar(time.column)},"
                    f" time: {time.time},"
                    " timezone: <IANA zone>, type: datetime}"
                )
                date.why.append(f"{date.column} + {time.column} may be one moment: {pair}")


def _guess_relations(models: list[TableModel]) -> None:
    """Relate tables whose columns carry another table's key under the same name."""
    served = [m for m in models if m.key is not None]
    for target in served:
        key = target.key or ()
        if all(c.upper() in _GENERIC_KEYS for c in key):
            continue
        for other in served:
            if other is target or not set(key) <= other.columns():
                continue
            names = set(other.fields) | set(other.relations)
            to_one = _unique(singular(target.resource), names)
            columns = ", ".join(f"{other.name}.{c}" for c in key)
            other.relations[to_one] = Relation(
                target.resource,
                {other.field_of(c): target.field_of(c) for c in key},
                many=False,
                why=f"guessed: {columns} matches the key of {target.name}",
            )
            back = _unique(other.resource, set(target.fields) | set(target.relations))
            target.relations[back] = Relation(
                other.resource,
                {target.field_of(c): other.field_of(c) for c in key},
                many=set(key) != set(other.key or ()),
                why=f"guessed: {columns} matches this table's key",
            )
