"""The clean twin of a legacy resource: a table whose columns are the API fields, and the resource bound to it.

The clean table holds API values as the database's own types (DATE, NUMERIC with the
field's places, BOOLEAN, timestamps with a zone, text without padding), so its codecs
are identities; the few conversions left are the driver's (a number's places, a
timestamp's zone). Same field names, types, key and relations as the legacy
resource, so the gateway checks every request against the legacy resource and only
the SQL runs on the twin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import sqlalchemy as sa

from legacy_adapters.mapping.model import DeleteSpec
from legacy_adapters.query.resource import BoundField, Resource, split_table_name
from legacy_adapters.transforms import FieldCodec, Undecodable
from legacy_adapters.transforms.numbers import DecimalValue, WholeNumber

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import FieldSpec, ResourceSpec
    from legacy_adapters.transforms.base import Transform

__all__ = ("HIDDEN", "bind_twin", "clean_table", "indexed_fields", "twin_table_name")

HIDDEN = "bh_hidden"
"""A clean table's column for rows the legacy ``where`` hides (soft-deleted ones): they are copied
too, so their keys stay taken (a POST answers 409 as on the legacy table), a DELETE hides rather
than removes, and rolling back loses nothing."""


def twin_table_name(name: str, spec: ResourceSpec) -> str:
    """The clean table's (possibly schema-qualified) name: ``migration.table``, else the resource's name."""
    return (spec.migration.table if spec.migration is not None else None) or name


def _places(spec: FieldSpec) -> int | None:
    return spec.scale if spec.scale is not None else spec.decimals


def _text_width(spec: FieldSpec) -> int | None:
    """The longest value a text field can serve: its map's longest name, else its declared length."""
    if spec.map:
        names = [*spec.map.values()]
        if spec.unmapped is not None and not isinstance(spec.unmapped, str):
            names.append(spec.unmapped.default)
        return None if spec.unmapped == "raw" else max(len(n) for n in names)
    return spec.length


def _column_type(spec: FieldSpec, indexed: bool) -> sa.types.TypeEngine[Any]:
    match spec.type:
        case "string":
            width = _text_width(spec)
            # Indexed text needs a bound on SQL Server (no index on NVARCHAR(MAX)); 450 fits its key limit.
            # Unbounded: Unicode() is NVARCHAR(max) there (UnicodeText would be the deprecated NTEXT).
            return sa.Unicode(width) if width else (sa.Unicode(450) if indexed else sa.Unicode())
        case "integer":
            return sa.BigInteger()
        case "decimal":
            places = _places(spec)
            # Without declared places PostgreSQL's bare NUMERIC keeps each value's own.
            return sa.Numeric(28, places, asdecimal=True) if places is not None else sa.Numeric(asdecimal=True)
        case "number":
            return sa.Float(53)
        case "date":
            return sa.Date()
        case "time":
            return sa.Time()
        case "datetime":
            return sa.DateTime(timezone=True)
        case "boolean":
            return sa.Boolean(create_constraint=False)
    raise ValueError(f"no column type for {spec.type!r}")


def indexed_fields(spec: ResourceSpec) -> list[str]:
    """Fields worth an index besides the key: default sort, row filters and relation links."""
    names: list[str] = []
    for name in spec.default_sort or ():
        names.append(name.lstrip("-"))
    names.extend(n for n in spec.row_filter or {} if "." not in n)
    for relation in spec.relations.values():
        names.extend(relation.on)
    key = set(spec.key_fields)
    return [n for n in dict.fromkeys(names) if n not in key and n in spec.fields]


def clean_table(name: str, spec: ResourceSpec, metadata: sa.MetaData | None = None) -> sa.Table:
    """The clean table of resource ``name``: one typed column per field, the key as primary key, indexes."""
    metadata = metadata if metadata is not None else sa.MetaData()
    schema, table_name = split_table_name(twin_table_name(name, spec))
    key = spec.key_fields
    indexed = set(indexed_fields(spec))
    columns = [
        sa.Column(
            field_name,
            _column_type(field_spec, field_name in key or field_name in indexed),
            primary_key=field_name in key,
            # Every other column may hold NULL: a legacy value that cannot be decoded is served (and copied) as null.
            nullable=field_name not in key,
        )
        for field_name, field_spec in spec.fields.items()
    ]
    if spec.where is not None:
        columns.append(
            sa.Column(HIDDEN, sa.Boolean(create_constraint=False), nullable=False, server_default=sa.false())
        )
    table = sa.Table(table_name, metadata, *columns, schema=schema)
    for field_name in sorted(indexed):
        sa.Index(f"ix_{table_name}_{field_name}"[:60], table.c[field_name])
    return table


@dataclass(frozen=True, slots=True)
class InZone:
    """A timestamp column served in the zone the legacy field is served in (the API shows its offset)."""

    zone: dt.tzinfo
    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> Any:
        if isinstance(raw, str):
            try:
                raw = dt.datetime.fromisoformat(raw)
            except ValueError:
                raise Undecodable(f"{raw!r} is not a timestamp") from None
        if not isinstance(raw, dt.datetime):
            raise Undecodable(f"expected a timestamp, got {raw!r}")
        # A driver handing back a naive value gives the UTC time the column holds.
        aware = raw if raw.tzinfo is not None else raw.replace(tzinfo=dt.UTC)
        return aware.astimezone(self.zone)

    def to_legacy(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return value


@dataclass(frozen=True, slots=True)
class NativeBoolean:
    """A BOOLEAN/BIT column: drivers give bool, 0/1 or '0'/'1'."""

    order_preserving: bool = field(default=True, init=False)

    def to_api(self, raw: Any) -> Any:
        if isinstance(raw, bool):
            return raw
        if raw in (0, 1, "0", "1"):
            return raw in (1, "1")
        raise Undecodable(f"expected a boolean, got {raw!r}")

    def to_legacy(self, value: Any) -> Any:
        return value


def _links(spec: FieldSpec) -> tuple[Transform, ...]:
    match spec.type:
        case "integer":
            return (WholeNumber(),)
        case "decimal":
            return (DecimalValue(_places(spec)),)
        case "boolean":
            return (NativeBoolean(),)
        case "datetime":
            return (InZone(ZoneInfo(spec.timezone) if spec.timezone else dt.UTC),)
    return ()


def _twin_field_spec(name: str, spec: FieldSpec, sentinels: bool) -> FieldSpec:
    return msgspec.structs.replace(
        spec, column=name, transform=None, date=None, time=None, pivot_year=None, map=None, unmapped=None,
        null_if=None, scale=None, decimals=_places(spec) if spec.type == "decimal" else None, bool_values=None,
        time_column=None, timezone=None, nullable=spec.nullable or sentinels,
    )  # fmt: skip


def _twin_delete(spec: ResourceSpec) -> DeleteSpec | None:
    """A soft delete hides the row in the clean table too; a hard delete removes it."""
    if spec.delete is None:
        return None
    if spec.delete.column and spec.where is not None:
        return DeleteSpec(column=HIDDEN, value=True)
    return DeleteSpec(hard=True)


def bind_twin(legacy: Resource) -> Resource:
    """The legacy resource bound to its clean table (no ``where``, hard deletes, the clean table's actions)."""
    spec = legacy.spec
    migration = spec.migration
    table = clean_table(legacy.name, spec)
    fields: dict[str, BoundField] = {}
    for name, bound in legacy.fields.items():
        fields[name] = BoundField(
            name=name,
            spec=_twin_field_spec(name, bound.spec, bool(bound.codec.sentinels)),
            codec=FieldCodec((name,), _links(bound.spec)),
            columns=(table.c[name],),
            bounds=bound.bounds,  # what a caller may send is the legacy field's rule
        )
    twin_spec = msgspec.structs.replace(
        spec,
        table=twin_table_name(legacy.name, spec),
        fields={name: f.spec for name, f in fields.items()},
        where=None,
        defaults={},
        delete=_twin_delete(spec),
        actions=dict(migration.actions) if migration is not None else {},
        database=migration.to if migration is not None else spec.database,
    )
    return Resource(
        version=legacy.version,
        name=legacy.name,
        spec=twin_spec,
        table=table,
        fields=fields,
        key=tuple(fields[f.name] for f in legacy.key),
        where=table.c[HIDDEN] == False if HIDDEN in table.c else None,  # noqa: E712  (SQL, not Python)
        api_etag=True,
    )
