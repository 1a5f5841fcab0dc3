"""Which database answers a read of a migrating resource, and the translation of a read to the clean twin.

The gateway (and the sync engine) check every request against the legacy resource and
hand the ``RoutedReader`` the same ``ReadQuery`` as always. In ``cutover`` the query is
restated on the twin: its fields, filters and sort bound to the clean columns, its
cursor position translated through API values. A cursor always carries the legacy
stored values, so one issued before a phase change still works after it and both
databases issue the same cursor for the same page. In ``shadow`` the legacy answer is
served and the same query is handed to a ``ShadowSink`` to be answered again from the
twin off the request path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from legacy_adapters.exceptions import MappingError
from legacy_adapters.migration.twin import bind_twin
from legacy_adapters.query.builder import Condition, order_for
from legacy_adapters.query.resource import BoundField, Resource
from legacy_adapters.reader import Embed, Page, Reader, ReadQuery
from legacy_adapters.transforms import Undecodable, Unencodable

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping, Phase

__all__ = ("Route", "RoutedReader", "ShadowSink", "open_databases", "rebind", "translate_position")


def open_databases(mapping: Mapping, default: Database) -> dict[str | None, Database]:
    """Every database of the mapping by name, ``None`` for the default one (``default``, already open).

    Engines connect on first use, so a database no resource reads yet costs nothing.
    """
    from legacy_adapters.database import Database

    databases: dict[str | None, Database] = {None: default}
    for name, config in mapping.databases.items():
        databases[name] = default if config == mapping.database else Database(config)
    return databases


@dataclass(frozen=True, slots=True)
class Route:
    """A migrating resource: its legacy binding, its clean twin, and the phase it is in."""

    legacy: Resource
    twin: Resource
    legacy_database: str | None
    twin_database: str

    @property
    def phase(self) -> Phase:
        return self.legacy.spec.phase


class ShadowSink(Protocol):
    """Receives served answers to compare with the twin's, off the request path."""

    def offer(self, route: Route, kind: str, served: Any, replay: Any) -> None:
        """``replay()`` answers the same request from the twin; compare it with ``served`` later (or never)."""
        ...


_SHADOWED = ("shadow", "dual_write")
"""Phases whose reads are served from legacy and replayed on the twin."""


def rebind(condition: Any, twin: Resource) -> Any:
    """``condition`` with every bound field it holds replaced by the twin's field of the same name."""
    if not dataclasses.is_dataclass(condition) or isinstance(condition, type):
        raise TypeError(f"cannot move {type(condition).__name__} to the clean table")
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(condition):
        value = getattr(condition, item.name)
        if isinstance(value, BoundField):
            changes[item.name] = twin.fields[value.name]
        elif isinstance(value, tuple) and value and all(isinstance(v, BoundField) for v in value):
            changes[item.name] = tuple(twin.fields[v.name] for v in value)
        elif item.name in ("links", "columns"):  # a relation reached through raw columns (Related)
            raise TypeError(f"cannot move {type(condition).__name__} to the clean table")
    return dataclasses.replace(condition, **changes) if changes else condition


def translate_position(
    source: Resource, target: Resource, sort: Sequence[tuple[str, bool]], values: Sequence[Any]
) -> tuple[Any, ...]:
    """A keyset position (stored sort values in ``source``'s order) restated in ``target``'s stored values."""
    source_order = order_for(source, [(source.fields[n], d) for n, d in sort])
    stored = {key.column.name: value for key, value in zip(source_order, values, strict=True)}
    names = [*dict.fromkeys([*(n for n, _ in sort), *(f.name for f in source.key)])]
    out: dict[str, Any] = {}
    for name in names:
        mine, theirs = source.fields[name], target.fields[name]
        parts = tuple(stored.get(c.name) for c in mine.columns)
        try:
            api = mine.codec.to_api(parts if len(parts) > 1 else parts[0])
        except Undecodable:
            api = None
        try:
            encoded = theirs.codec.to_legacy(api)
        except Unencodable:
            encoded = None
        for column, part in zip(theirs.columns, encoded if len(theirs.columns) > 1 else (encoded,), strict=True):
            out[column.name] = part
    target_order = order_for(target, [(target.fields[n], d) for n, d in sort])
    return tuple(out[key.column.name] for key in target_order)


def _describe(query: ReadQuery) -> str:
    """``list sort=-due_date filters=status,due_date[gt]``: what a compared list asked (names, never values)."""
    parts = ["list"]
    if query.sort:
        parts.append("sort=" + ",".join(("-" if d else "") + f.name for f, d in query.sort))
    asked = [p for p in (getattr(c, "parameter", None) for c in query.conditions) if p and not p.startswith("claims.")]
    if asked:
        parts.append("filters=" + ",".join(dict.fromkeys(asked)))
    return " ".join(parts)


def _sort_names(query: ReadQuery) -> list[tuple[str, bool]]:
    return [(f.name, d) for f, d in query.sort]


class RoutedReader(Reader):
    """A ``Reader`` over several databases: each resource is read where its phase says.

    ``database`` (the default database) stays what the write code and readiness use for
    resources that do not move.
    """

    def __init__(
        self,
        mapping: Mapping,
        databases: dict[str | None, Database],
        versions: dict[str, dict[str, Resource]],
        shadow: ShadowSink | None = None,
    ) -> None:
        super().__init__(databases[None])
        self.databases = databases
        self.shadow = shadow
        self.routes: dict[str, Route] = {}
        for resources in versions.values():
            for resource in resources.values():
                migration = resource.spec.migration
                if migration is None:
                    continue
                twin = bind_twin(resource)
                self.routes[resource.qualified_name] = Route(resource, twin, resource.spec.database, migration.to)
        for route in self.routes.values():  # twins link to what their relations are served from
            for name, target in route.legacy.relations.items():
                route.twin.relations[name] = target
        # One plain reader per database for serving, one more for the twins' shadow reads.
        self._serving = {name: Reader(db, embeds=self._serving_embed) for name, db in databases.items()}
        self._shadowing = {name: Reader(db, embeds=self._shadow_embed) for name, db in databases.items()}
        self.mapping = mapping

    # -- where things live ---------------------------------------------------------------------------

    def route(self, resource: Resource) -> Route | None:
        """The migration route of a (legacy-bound) resource, None when it does not move."""
        route = self.routes.get(resource.qualified_name)
        # Any binding of the legacy resource (the sync engine binds its own); never the twin itself.
        return route if route is not None and resource is not route.twin else None

    def database_of(self, name: str | None) -> Database:
        try:
            return self.databases[name]
        except KeyError:
            raise MappingError(f"unknown database {name!r}", path="databases") from None

    def served_from(self, resource: Resource) -> tuple[Reader, Resource]:
        """The reader and binding that answer reads of ``resource`` in its current phase."""
        route = self.route(resource)
        if route is not None and route.phase == "cutover":
            return self._serving[route.twin_database], route.twin
        return self._serving[resource.spec.database], resource

    def _serving_embed(self, embed: Embed) -> tuple[Reader, Embed]:
        reader, target = self.served_from(embed.target)
        return reader, self._embed_on(embed, target)

    def _shadow_embed(self, embed: Embed) -> tuple[Reader, Embed]:
        route = self.route(embed.target)
        if route is None:
            return self._serving_embed(embed)
        return self._shadowing[route.twin_database], self._embed_on(embed, route.twin)

    @staticmethod
    def _embed_on(embed: Embed, target: Resource) -> Embed:
        if target is embed.target:
            return embed
        return Embed(
            embed.name,
            target,
            tuple(target.fields[f.name] for f in embed.fields),
            tuple(rebind(c, target) for c in embed.conditions),
        )

    # -- queries restated on the twin ----------------------------------------------------------------

    def on_twin(self, query: ReadQuery, twin: Resource) -> ReadQuery:
        """``query`` bound to ``twin``; its ``after`` position translated from legacy stored values."""
        sort = _sort_names(query)
        after = None
        if query.after is not None:
            after = translate_position(query.resource, twin, sort, query.after)
        return ReadQuery(
            twin,
            tuple(twin.fields[f.name] for f in query.fields),
            tuple(rebind(c, twin) for c in query.conditions),
            tuple((twin.fields[f.name], d) for f, d in query.sort),
            query.limit,
            after=after,
            offset=query.offset,
            embeds=query.embeds,  # the twin reader's embed route moves them
        )

    def _twin_page(self, route: Route, query: ReadQuery, reader: Reader) -> Page:
        page = reader.page(self.on_twin(query, route.twin))
        if page.last is not None:  # cursors always carry legacy stored values
            page.last = translate_position(route.twin, route.legacy, _sort_names(query), page.last)
        page.order = query.order
        return page

    # -- the Reader interface ------------------------------------------------------------------------

    def page(self, query: ReadQuery) -> Page:
        route = self.route(query.resource)
        if route is None:
            return self._serving[query.resource.spec.database].page(query)
        if route.phase == "cutover":
            return self._twin_page(route, query, self._serving[route.twin_database])
        served = self._serving[route.legacy_database].page(query)
        if route.phase in _SHADOWED and self.shadow is not None:
            shadow_reader = self._shadowing[route.twin_database]
            self.shadow.offer(route, _describe(query), served, lambda: self._twin_page(route, query, shadow_reader))
        return served

    def count(self, resource: Resource, conditions: Sequence[Condition]) -> int:
        route = self.route(resource)
        if route is None:
            return self._serving[resource.spec.database].count(resource, conditions)
        twin_reader = self._serving[route.twin_database]
        if route.phase == "cutover":
            return twin_reader.count(route.twin, [rebind(c, route.twin) for c in conditions])
        served = self._serving[route.legacy_database].count(resource, conditions)
        if route.phase in _SHADOWED and self.shadow is not None:
            moved = [rebind(c, route.twin) for c in conditions]
            self.shadow.offer(route, "count", served, lambda: twin_reader.count(route.twin, moved))
        return served

    def get(
        self,
        resource: Resource,
        key: Sequence[Any],
        fields: Sequence[BoundField],
        conditions: Sequence[Condition] = (),
        embeds: Sequence[Embed] = (),
    ) -> tuple[dict[str, Any], str] | None:
        route = self.route(resource)
        if route is None:
            return self._serving[resource.spec.database].get(resource, key, fields, conditions, embeds)

        def on_twin(reader: Reader) -> tuple[dict[str, Any], str] | None:
            twin = route.twin
            moved = [rebind(c, twin) for c in conditions]
            return reader.get(twin, key, [twin.fields[f.name] for f in fields], moved, embeds)

        if route.phase == "cutover":
            return on_twin(self._serving[route.twin_database])
        served = self._serving[route.legacy_database].get(resource, key, fields, conditions, embeds)
        if route.phase in _SHADOWED and self.shadow is not None:
            shadow_reader = self._shadowing[route.twin_database]
            self.shadow.offer(route, "get", served, lambda: on_twin(shadow_reader))
        return served

    def stream(self, query: ReadQuery, *, batch_size: int = 2000, limit: int | None = None) -> Iterator[dict[str, Any]]:
        reader, resource = self.served_from(query.resource)
        moved = query if resource is query.resource else self.on_twin(query, resource)
        return reader.stream(moved, batch_size=batch_size, limit=limit)

    def stream_batches(
        self, query: ReadQuery, *, batch_size: int = 2000, limit: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        reader, resource = self.served_from(query.resource)
        moved = query if resource is query.resource else self.on_twin(query, resource)
        return reader.stream_batches(moved, batch_size=batch_size, limit=limit)

    def dispose(self) -> None:
        """Close every database but the default one (its owner closes that)."""
        for name, database in self.databases.items():
            if name is not None and database is not self.database:
                database.dispose()
