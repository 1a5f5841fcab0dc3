"""A mapped resource bound to its SQLAlchemy table and the codec of every field.

Built once per version at start-up, so request handling never re-reads the
mapping: ``Resource.fields[name].columns`` are the Core columns a field spans
(two for a date+time pair) and ``.codec`` converts its values both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from legacy_adapters.query.condition import MappingCondition
from legacy_adapters.query.rows import WarningThrottle
from legacy_adapters.query.values import ValueBounds, bounds_for
from legacy_adapters.transforms import FieldCodec, build_codec

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import FieldSpec, Mapping, ResourceSpec

__all__ = ("BoundField", "Resource", "bind_version", "split_table_name")


def split_table_name(table: str) -> tuple[str | None, str]:
    """``dbo.JOBMAST`` -> ("dbo", "JOBMAST"); a bare name has no schema. Brackets/quotes are stripped."""
    parts = [p.strip('[]"`') for p in table.rsplit(".", 1)]
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


@dataclass(frozen=True, slots=True)
class BoundField:
    """One API field: its spec, the columns it reads and the codec between the two forms."""

    name: str
    spec: FieldSpec
    codec: FieldCodec
    columns: tuple[sa.Column[object], ...]
    bounds: ValueBounds
    """What the stored column can hold: every caller value is checked against it before any arithmetic."""

    @property
    def rangeable(self) -> bool:
        """Stored order equals API order, so range filters on the columns are honest (NULLs never match)."""
        return self.codec.order_preserving

    @property
    def sortable(self) -> bool:
        """Stored order equals API order, so ORDER BY and range filters on the columns are honest.

        Whether the column holds NULL does not matter: NULL sorts lowest (``query/keyset.py``)
        and no range filter matches it.
        """
        return self.codec.order_preserving

    @property
    def stored_text(self) -> bool:
        """Its stored value is text compared as text (a string field without a code map): a key of
        this kind must be compared code point by code point where the collation ignores case."""
        return self.spec.type == "string" and self.codec.code_map is None

    @property
    def padded(self) -> bool:
        """Trailing spaces do not count when a value is compared with the stored one.

        True but for plain text (no transform, no code map), which is served as stored:
        there ``'C0042 '`` is not ``C0042``. A ``trim``/``strip`` field serves ``'C0042   '``
        as ``C0042``, and flags and codes are codes, whatever the CHAR pads them with.
        """
        return not (self.stored_text and self.spec.transform is None)

    @property
    def matchable(self) -> bool:
        """``like``/``ilike`` apply: served values are text, from one column or a code map's names."""
        plain = self.spec.transform in (None, "trim", "strip") and not self.codec.links[1:]
        return self.spec.type == "string" and len(self.columns) == 1 and (plain or self.codec.code_map is not None)


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource of one API version, ready for SQL building."""

    version: str
    name: str
    spec: ResourceSpec
    table: sa.Table
    fields: dict[str, BoundField]
    key: tuple[BoundField, ...]
    where: sa.ColumnElement[bool] | None = None
    relations: dict[str, Resource] = field(default_factory=dict)
    warnings: WarningThrottle = field(default_factory=WarningThrottle)
    """Repeated warnings about the same dirty stored value are held back for a while."""
    api_etag: bool = False
    """ETags hash the served values, not the stored ones: a migrating resource keeps its ETags on
    either database (``legacy_adapters/migration``)."""

    @property
    def qualified_name(self) -> str:
        return f"{self.version}.{self.name}"


def _bind(version: str, name: str, spec: ResourceSpec) -> Resource:
    schema, table_name = split_table_name(spec.table)
    metadata = sa.MetaData()
    column_names: list[str] = []
    for field_spec in spec.fields.values():
        for column in (field_spec.column, field_spec.time_column):
            if column and column not in column_names:
                column_names.append(column)
    # quote=True: legacy names are upper case, reserved words or hold spaces; the
    # dialect quotes them its own way ([JOBMAST], "JOBMAST", `JOBMAST`).
    table = sa.Table(table_name, metadata, *(sa.Column(c, quote=True) for c in column_names), schema=schema, quote=True)
    fields = {
        field_name: BoundField(
            name=field_name,
            spec=field_spec,
            codec=(codec := build_codec(field_spec)),
            columns=tuple(table.c[c] for c in codec.columns),
            bounds=bounds_for(field_spec),
        )
        for field_name, field_spec in spec.fields.items()
    }
    # text() reads ':name' as a bind parameter; a mapping's condition has none, so a colon
    # in it (a literal such as ':X' or '12:30') is escaped and reaches the database as written.
    where = MappingCondition(spec.where) if spec.where else None
    return Resource(
        version=version,
        name=name,
        spec=spec,
        table=table,
        fields=fields,
        key=tuple(fields[k] for k in spec.key_fields),
        where=where,
        api_etag=spec.migration is not None,
    )


def bind_version(mapping: Mapping, version: str) -> dict[str, Resource]:
    """Bind every resource of ``version``, then link relations to their bound targets."""
    specs = mapping.versions[version].resources
    resources = {name: _bind(version, name, spec) for name, spec in specs.items()}
    for resource in resources.values():
        for rel_name, relation in resource.spec.relations.items():
            resource.relations[rel_name] = resources[relation.resource]
    return resources
