"""Read API rows out of the legacy database: pages, single rows, counts, embeds, exports.

A ``ReadQuery`` says what to read in API terms already checked by the caller;
``Reader`` turns it into statements, runs them and decodes the rows. Embedding a
relation costs one extra query per page (keys batched into ``IN`` lists), never
one per row.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from legacy_adapters.exceptions import KeyNotUnique
from legacy_adapters.query.builder import Condition, build_count, build_select, order_for, selected_columns
from legacy_adapters.query.exact import exact_in, stored_equals
from legacy_adapters.query.keyset import Keyset, SortKey
from legacy_adapters.query.plan_cache import PlanCache
from legacy_adapters.query.rows import RowDecoder
from legacy_adapters.transforms import Unencodable

if TYPE_CHECKING:
    from legacy_adapters.compiled import Prepared
    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import BoundField, Resource

__all__ = ("Embed", "Page", "ReadQuery", "Reader", "etag_of", "row_etag")

PLAN_CACHE_SIZE = 512
"""Page plans kept per reader (one per shape: resource, fields, sort, embeds), and as many compiled pages."""

# SQL Server accepts at most 2,100 parameters per statement; stay well below.
_IN_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Embed:
    """A relation to attach to each row: its name, its fields and the conditions its rows must meet."""

    name: str
    target: Resource
    fields: tuple[BoundField, ...]
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadQuery:
    resource: Resource
    fields: tuple[BoundField, ...]
    conditions: tuple[Condition, ...] = ()
    sort: tuple[tuple[BoundField, bool], ...] = ()
    limit: int = 50
    after: tuple[Any, ...] | None = None
    """Stored sort values of the previous page's last row (keyset)."""
    offset: int | None = None
    embeds: tuple[Embed, ...] = ()

    @property
    def order(self) -> tuple[SortKey, ...]:
        return order_for(self.resource, self.sort)


@dataclass(slots=True)
class Page:
    rows: list[dict[str, Any]]
    last: tuple[Any, ...] | None
    """Stored sort values of the last row when another page follows, else None."""
    order: tuple[SortKey, ...] = field(default_factory=tuple)


def row_etag(raw: Sequence[Any]) -> str:
    """A strong validator from every mapped column's stored value (legacy rows have no rowversion)."""
    return hashlib.blake2b(msgspec.msgpack.encode(list(raw)), digest_size=16).hexdigest()


def etag_of(resource: Resource, raw: Sequence[Any], row: dict[str, Any]) -> str:
    """``row_etag`` of the stored values, or of the served ones for a resource with ``api_etag``."""
    if resource.api_etag:
        return hashlib.blake2b(msgspec.msgpack.encode([row[n] for n in resource.fields]), digest_size=16).hexdigest()
    return row_etag(raw)


EmbedRoute = Callable[[Embed], tuple["Reader", Embed]]
"""Where an embed's rows are read: the reader of the database holding its target (see ``migration``)."""


class Reader:
    """Runs read queries against one database."""

    def __init__(self, database: Database, *, embeds: EmbedRoute | None = None) -> None:
        self.database = database
        self._prepared: dict[str, _ByKey] = {}
        self._embed_route = embeds
        self._plans: PlanCache[_PagePlan] = PlanCache(PLAN_CACHE_SIZE)
        self._page_sql: PlanCache[Prepared] = PlanCache(PLAN_CACHE_SIZE)
        self._filtered_sql: PlanCache[Prepared] = PlanCache(PLAN_CACHE_SIZE)
        self._embed_plans: PlanCache[_EmbedPlan] = PlanCache(PLAN_CACHE_SIZE)
        self._embed_sql: PlanCache[Prepared] = PlanCache(PLAN_CACHE_SIZE)

    def page(self, query: ReadQuery) -> Page:
        """One page of rows, plus the keyset position of its last row when more rows follow."""
        key = _plan_key(query)
        plan = self._plans.get(key, lambda: _PagePlan.make(query))
        order = plan.order
        prepared = self._prepared_page(key, query, plan)
        if prepared is not None:
            raw_rows = self.database.fetch_prepared(*prepared)
        else:
            conditions = list(query.conditions)
            if query.after is not None:
                conditions.append(Keyset(order, query.after))
            statement = build_select(query.resource, plan.columns, conditions, order, query.limit + 1, query.offset)
            raw_rows = self.database.fetch_all(statement)
        # The order ends with the key, so it is total only if the key is unique: two neighbours with
        # the same sort values (the limit+1'th row included) mean the next page would skip rows.
        _refuse_repeats(query.resource, raw_rows, plan.order_at)
        more = len(raw_rows) > query.limit
        if more:
            raw_rows = raw_rows[: query.limit]
        rows = plan.decoder.decode_all(raw_rows)
        if query.embeds:
            self._attach(query, rows)
            for extra in plan.hidden:  # relation keys read only to attach embeds
                for row in rows:
                    row.pop(extra, None)
        last = plan.order_at(raw_rows[-1]) if more and raw_rows else None
        return Page(rows=rows, last=last, order=order)

    def _prepared_page(
        self, key: Hashable, query: ReadQuery, plan: _PagePlan
    ) -> tuple[Prepared, dict[str, Any]] | None:
        """The page's statement compiled once per shape, and this page's values for it; None: built per page.

        A shape is the plan's (resource, fields, sort, embeds), each filter's (field, operator and
        what its SQL depends on besides the values: ``Comparison.shape``), the keyset cursor's
        NULL and text positions, and the limit. Filter and cursor values are bound parameters.
        Offset pages and conditions without a shape (``like``, two-column fields) are built
        per page and compiled once per SQLAlchemy cache key (``Database.fetch_all``).
        """
        if query.offset is not None:
            return None
        shapes = _shapes_of(query.conditions)
        if shapes is None:
            return None
        keyset = Keyset(plan.order, query.after) if query.after is not None else None
        page_key = (key, shapes, keyset.shape if keyset is not None else None, query.limit)

        values: dict[str, Any] = {}
        _condition_values(query.conditions, values)
        if keyset is not None:
            values.update(keyset.values("bh_after_"))

        def compile_page() -> Prepared:
            clauses = _templates(query.conditions)
            if keyset is not None:
                clauses.append(_Clause(keyset.template("bh_after_")))
            statement = build_select(query.resource, plan.columns, clauses, plan.order, query.limit + 1)
            return _prepare_template(self.database, statement, values)

        return self._page_sql.get(page_key, compile_page), values

    def count(self, resource: Resource, conditions: Sequence[Condition]) -> int:
        return int(self.database.scalar(build_count(resource, conditions)))

    def get(
        self,
        resource: Resource,
        key: Sequence[Any],
        fields: Sequence[BoundField],
        conditions: Sequence[Condition] = (),
        embeds: Sequence[Embed] = (),
    ) -> tuple[dict[str, Any], str] | None:
        """One row by its API key values, with its ETag; None when no visible row has that key."""
        if conditions:  # row filters: compiled once per their shapes, or built for this read
            values = _key_values(resource, key)
            by_key = self._by_key(resource, values)
            prepared = self._filtered_by_key(resource, by_key, conditions) if values is not None else None
            if prepared is not None and values is not None:
                _condition_values(conditions, values)
                raw_rows = self.database.fetch_prepared(prepared, values)
            else:
                key_conditions = [_KeyEquals(f, v) for f, v in zip(resource.key, key, strict=True)]
                statement = build_select(resource, by_key.columns, [*key_conditions, *conditions], limit=2)
                raw_rows = self.database.fetch_all(statement)
        else:
            values = _key_values(resource, key)
            by_key = self._by_key(resource, values)
            raw_rows = self.database.fetch_prepared(by_key.prepared, values) if values is not None else []
        if not raw_rows:
            return None
        if len(raw_rows) > 1:  # the statement reads two rows for exactly this
            raise _not_unique(resource)
        full = by_key.decoder.decode(raw_rows[0])
        row = {f.name: full[f.name] for f in fields}
        query = ReadQuery(resource, tuple(fields), embeds=tuple(embeds))
        if embeds:
            holder = [full]
            self._attach(query, holder)
            row.update({e.name: full[e.name] for e in embeds})
        return row, etag_of(resource, raw_rows[0], full)

    def _filtered_by_key(self, resource: Resource, by_key: _ByKey, conditions: Sequence[Condition]) -> Prepared | None:
        """The get-by-key with row filters, compiled once per their shapes (``Comparison.shape``, as a
        page's filters); None when one has no shape (``like``, a two-column field)."""
        shapes = _shapes_of(conditions)
        if shapes is None:
            return None

        def compile_get() -> Prepared:
            clauses: list[Condition] = [_Clause(_key_clause(resource, by_key.text)), *_templates(conditions)]
            return self.database.prepare(build_select(resource, by_key.columns, clauses, limit=2))

        return self._filtered_sql.get((resource.qualified_name, by_key.text, shapes), compile_get)

    def _by_key(self, resource: Resource, values: dict[str, Any] | None = None) -> _ByKey:
        """The prepared get-by-key; ``values`` (stored key parts) say which parts are text.

        A text part is compared code point by code point (``exact_in``): on MariaDB and SQL
        Server its placeholder then appears twice, and the prepared plan binds it twice.
        Which parts are text is the codec's business (a ``zero_padded`` integer is stored as
        text), so the statement is made for the first key seen and again should another's differ.
        """
        name = resource.qualified_name
        cached = self._prepared.get(name)
        text = _text_mask(values) if values is not None else None
        if cached is None or (text is not None and cached.text != text):
            all_fields = tuple(resource.fields.values())
            columns = selected_columns(all_fields)
            statement = build_select(resource, columns, [_Clause(_key_clause(resource, text))], limit=2)
            decoder = RowDecoder.for_columns(resource, all_fields, columns)
            cached = _ByKey(columns, self.database.prepare(statement), decoder, text or frozenset())
            self._prepared[name] = cached
        return cached

    def stream(self, query: ReadQuery, *, batch_size: int = 2000, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every matching row in sort order (the first ``limit`` when given), decoded as it arrives (constant memory).

        One statement, streamed; on a driver that buffers whole results, the same
        order read in keyset batches of ``batch_size`` (``Database.stream``'s ``pages``).
        """
        for batch in self.stream_batches(query, batch_size=batch_size, limit=limit):
            yield from batch

    def stream_batches(
        self, query: ReadQuery, *, batch_size: int = 2000, limit: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """``stream``, one driver fetch at a time: each batch decoded in one go (an export's chunk).

        ``limit``: at most that many rows, capped in the SQL too (``query.limit`` is a page's, not a stream's).
        """
        order = query.order
        columns = selected_columns(query.fields, order)
        statement = build_select(query.resource, columns, query.conditions, order, limit)
        decoder = RowDecoder.for_columns(query.resource, query.fields, columns)
        names = [k.column.name for k in order]

        def page_after(last: Sequence[Any] | None, rows: int) -> sa.Executable:
            conditions = list(query.conditions)
            if last is not None:
                conditions.append(Keyset(order, decoder.raw(last, names)))
            return build_select(query.resource, columns, conditions, order, rows if limit is None else min(rows, limit))

        left = limit
        # Each generator of an export drops its batch before asking for the next: otherwise every
        # level keeps the last one alive while the next is fetched and decoded (a few MB each).
        for raw in self.database.stream_batches(statement, batch_size, pages=page_after):
            if left is not None:  # keyset pages are each capped, not their sum: the stream stops here
                if len(raw) > left:
                    raw = raw[:left]
                left -= len(raw)
            rows = decoder.decode_all(raw)
            del raw
            yield rows
            del rows
            if left == 0:
                return

    # -- relations -------------------------------------------------------------------------------

    @staticmethod
    def _embed_sources(query: ReadQuery) -> tuple[BoundField, ...]:
        names = {mine for e in query.embeds for mine in query.resource.spec.relations[e.name].on}
        return tuple(query.resource.fields[n] for n in sorted(names))

    def _attach(self, query: ReadQuery, rows: list[dict[str, Any]]) -> None:
        """Add each embed to every row with one query per chunk of parent keys (``_children``)."""
        for asked in query.embeds:
            reader, embed = self._embed_route(asked) if self._embed_route is not None else (self, asked)
            relation = query.resource.spec.relations[embed.name]
            plan = reader._embed_plans.get(_embed_key(embed, relation.on), partial(_EmbedPlan.make, embed, relation.on))
            parent_key = plan.parent_key
            wanted = {parent_key(row) for row in rows}
            wanted.discard(plan.no_key)
            children = reader._children(plan, embed, wanted) if wanted else {}
            many = relation.many
            for row in rows:
                found = children.get(parent_key(row), [])
                if not many and len(found) > 1:  # a to-one relation must not pick one at random
                    raise KeyNotUnique(embed.target.name, list(relation.on.values()))
                row[embed.name] = found if many else (found[0] if found else None)

    def _children(
        self, plan: _EmbedPlan, embed: Embed, wanted: set[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        """The embed's rows for the parent keys ``wanted`` (API values), grouped by them, in key order."""
        stored = _encode_keys(plan.link, sorted(wanted, key=repr))
        raw_rows: list[Sequence[Any]] = []
        for start in range(0, len(stored), _IN_CHUNK):
            chunk = stored[start : start + _IN_CHUNK]
            prepared = self._prepared_embed(plan, embed, chunk)
            if prepared is not None:
                raw_rows.extend(self.database.fetch_prepared(*prepared))
            else:
                match = _StoredIn(plan.link, tuple(chunk))
                raw_rows.extend(
                    self.database.fetch_all(
                        build_select(embed.target, plan.columns, [match, *embed.conditions], plan.order)
                    )
                )
        children: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        link_of, hidden = plan.link_of, plan.hidden
        for child in plan.decoder.decode_all(raw_rows):
            link = link_of(child)
            for extra in hidden:  # relation keys read only to group the children
                del child[extra]
            found = children.get(link)
            if found is None:
                children[link] = [child]
            else:
                found.append(child)
        return children

    def _prepared_embed(
        self, plan: _EmbedPlan, embed: Embed, chunk: list[tuple[Any, ...]]
    ) -> tuple[Prepared, dict[str, Any]] | None:
        """An embed's statement for ``chunk`` compiled once per shape, and the chunk's values; None: built per chunk.

        A shape is the plan's (target, fields, relation), the embed's conditions' shapes (as a
        page's filters: ``Comparison.shape``), the kind of the stored keys and the size of the
        ``IN`` list, rounded up to a power of two and filled with the last key (a key twice in
        ``IN`` is the key once), so a handful of statements serve every page. A relation on
        several columns (NULL parts compare ``IS NULL``), keys of mixed kinds (or NULL) and conditions
        without a shape (a claim no row can hold: ``MatchNothing``) are built per chunk.
        """
        if plan.single is None:
            return None
        shapes = _shapes_of(embed.conditions)
        kinds = {type(key[0]) for key in chunk}
        if shapes is None or len(kinds) != 1:
            return None
        (kind,) = kinds
        if kind is type(None):  # a key stored as NULL: the built statement compares it IS NULL
            return None
        size = _bucket(len(chunk))
        values = {f"bh_k{i}": key[0] for i, key in enumerate(chunk)}
        last = chunk[-1][0]
        for i in range(len(chunk), size):
            values[f"bh_k{i}"] = last
        _condition_values(embed.conditions, values)

        def compile_embed() -> Prepared:
            single = plan.single
            assert single is not None
            # Typed as the keys are (by a value of theirs), as the literals of the built statement are.
            keys: list[Any] = [sa.bindparam(f"bh_k{i}", last) for i in range(size)]
            match = exact_in(single.columns[0], keys, padded=single.padded, text=kind is str)
            clauses = [_Clause(match), *_templates(embed.conditions)]
            return _prepare_template(
                self.database, build_select(embed.target, plan.columns, clauses, plan.order), values
            )

        prepared = self._embed_sql.get((plan.key, shapes, kind, size), compile_embed)
        # A typed column (a migration twin's) needs SQLAlchemy's result: the built statement gets it.
        return (prepared, values) if prepared.raw_rows else None


@dataclass(frozen=True, slots=True)
class _PagePlan:
    """What a page of one shape reads and how its rows turn into API rows."""

    order: tuple[SortKey, ...]
    columns: list[sa.Column[Any]]
    decoder: RowDecoder
    order_at: Callable[[Sequence[Any]], tuple[Any, ...]]
    """The stored sort values of a fetched row (cursor, and the repeat check)."""
    hidden: frozenset[str]
    """Relation keys read only to attach embeds, dropped before the rows are served."""

    @classmethod
    def make(cls, query: ReadQuery) -> _PagePlan:
        order = query.order
        sources = Reader._embed_sources(query)
        columns = selected_columns((*query.fields, *sources), order)
        names = [c.name for c in columns]
        positions = [names.index(k.column.name) for k in order]
        decoder = RowDecoder.for_columns(query.resource, (*query.fields, *sources), columns)
        hidden = frozenset(f.name for f in sources) - {f.name for f in query.fields}
        return cls(order, columns, decoder, _picker(positions), hidden)


@dataclass(frozen=True, slots=True)
class _EmbedPlan:
    """What an embed of one shape (target, fields, relation) reads and how its rows become children."""

    key: Hashable
    link: tuple[BoundField, ...]
    """The target's fields of the relation, in the order of ``on``."""
    single: BoundField | None
    """The only link field, when it has one column: its keys are bound into a prepared ``IN``."""
    columns: list[sa.Column[Any]]
    order: tuple[SortKey, ...]
    decoder: RowDecoder
    """Decodes the embed's fields, then the link fields it does not serve (``hidden``)."""
    parent_key: Callable[[dict[str, Any]], tuple[Any, ...]]
    link_of: Callable[[dict[str, Any]], tuple[Any, ...]]
    no_key: tuple[None, ...]
    """A parent whose relation fields are all null has no children (not the children with null links)."""
    hidden: tuple[str, ...]

    @classmethod
    def make(cls, embed: Embed, on: dict[str, str]) -> _EmbedPlan:
        link = tuple(embed.target.fields[theirs] for theirs in on.values())
        served = {f.name for f in embed.fields}
        extra = {f.name: f for f in link if f.name not in served}  # read only to group the children
        read = (*embed.fields, *extra.values())
        order = order_for(embed.target, ())
        columns = selected_columns(read, order)
        single = link[0] if len(link) == 1 and len(link[0].columns) == 1 else None
        return cls(
            key=_embed_key(embed, on),
            link=link,
            single=single,
            columns=columns,
            order=order,
            decoder=RowDecoder.for_columns(embed.target, read, columns),
            parent_key=_picker(list(on)),
            link_of=_picker(list(on.values())),
            no_key=(None,) * len(on),
            hidden=tuple(extra),
        )


def _embed_key(embed: Embed, on: dict[str, str]) -> Hashable:
    """An embed plan's shape: the target (and its table: a migration twin's differs), fields and relation."""
    target = embed.target
    return (target.qualified_name, target.table.fullname, tuple(f.name for f in embed.fields), tuple(on.items()))


def _bucket(count: int) -> int:
    """The ``IN`` list size a chunk of ``count`` keys is bound into: the next power of two, at most a chunk."""
    size = 1
    while size < count:
        size *= 2
    return min(size, _IN_CHUNK)


_TEMPLATE_PREFIXES = ("bh_f", "bh_after_", "bh_k")
"""Bind parameter names of a template's values (SQLAlchemy names its own after the column or ``param``)."""


def _shapes_of(conditions: Sequence[Condition]) -> tuple[Hashable, ...] | None:
    """Each condition's ``shape`` (``Comparison.shape``), or None when one has none (built per read)."""
    shapes = []
    for condition in conditions:
        shape = getattr(condition, "shape", None)
        if shape is None:
            return None
        shapes.append(shape)
    return tuple(shapes)


def _condition_values(conditions: Sequence[Condition], values: dict[str, Any]) -> None:
    """Add the values ``_templates``' parameters take (conditions that all have a shape)."""
    for i, condition in enumerate(conditions):
        for j, value in enumerate(condition.values):  # type: ignore[attr-defined]  # it has a shape
            values[f"bh_f{i}_{j}"] = value


def _templates(conditions: Sequence[Condition]) -> list[Condition]:
    """The conditions with their values as parameters ``bh_f{i}_{j}`` (every one has a shape: a template)."""
    return [_Clause(c.template(f"bh_f{i}_")) for i, c in enumerate(conditions)]  # type: ignore[attr-defined]


def _prepare_template(database: Database, statement: sa.Select[Any], values: dict[str, Any]) -> Prepared:
    """``statement`` compiled once for every read of its shape, checked to take all its values from ``values``."""
    prepared = database.prepare(statement)
    named = {n for n in prepared.names if n.startswith(_TEMPLATE_PREFIXES)}
    # A parameter without a value of its own would be run with the first read's: never. (A value
    # may have no parameter: SQLAlchemy drops the terms ANDed with a false, e.g. an off-grid eq.)
    if not named <= set(values):
        raise AssertionError(f"template binds {sorted(named)}, the read has {sorted(values)}")
    return prepared


def _plan_key(query: ReadQuery) -> Hashable:
    """A page plan's shape: resource, fields, sort and embeds."""
    return (
        query.resource.qualified_name,
        tuple(f.name for f in query.fields),
        tuple((f.name, descending) for f, descending in query.sort),
        tuple(e.name for e in query.embeds),
    )


def _picker(positions: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``row -> tuple(row[p] for p in positions)`` at C speed (itemgetter returns a bare value for one):
    positions of a fetched row, or names of a decoded one."""
    if len(positions) == 1:
        (only,) = positions
        return lambda row: (row[only],)
    return operator.itemgetter(*positions)  # a tuple for 2+ positions


@dataclass(frozen=True, slots=True)
class _ByKey:
    """Get-by-key for one resource, prepared once: its columns, compiled statement and row decoder."""

    columns: list[sa.Column[Any]]
    prepared: Prepared
    decoder: RowDecoder
    text: frozenset[str]
    """The key parameters compared as text (code point by code point)."""


def _key_clause(resource: Resource, text: frozenset[str] | None) -> sa.ColumnElement[bool]:
    """The key's columns equal the parameters ``key_<field>_<column>`` (``text``: those compared as text)."""
    placeholders = [
        # A value here keeps it optional to compile.
        exact_in(column, [sa.bindparam(part, None)], padded=field.padded, text=bool(text and part in text))
        for i, field in enumerate(resource.key)
        for j, column in enumerate(field.columns)
        for part in (f"key_{i}_{j}",)
    ]
    return sa.and_(*placeholders)


def _text_mask(values: dict[str, Any]) -> frozenset[str]:
    return frozenset(name for name, value in values.items() if isinstance(value, str))


@dataclass(frozen=True, slots=True)
class _Clause:
    condition: sa.ColumnElement[bool]

    def clause(self) -> sa.ColumnElement[bool]:
        return self.condition


def _refuse_repeats(
    resource: Resource, rows: Sequence[Sequence[Any]], order_at: Callable[[Sequence[Any]], tuple[Any, ...]]
) -> None:
    previous: tuple[Any, ...] | None = None
    for row in rows:
        current = order_at(row)
        if current == previous:
            raise _not_unique(resource)
        previous = current


def _not_unique(resource: Resource) -> KeyNotUnique:
    return KeyNotUnique(resource.name, [f.name for f in resource.key])


def _key_values(resource: Resource, key: Sequence[Any]) -> dict[str, Any] | None:
    """Stored values for the prepared key parameters; None when a value cannot be stored (no such row)."""
    values: dict[str, Any] = {}
    for i, (key_field, value) in enumerate(zip(resource.key, key, strict=True)):
        try:
            encoded = key_field.codec.to_legacy(value)
        except Unencodable:
            return None
        parts = encoded if len(key_field.columns) > 1 else (encoded,)
        for j, part in enumerate(parts):
            values[f"key_{i}_{j}"] = part
    return values


@dataclass(frozen=True, slots=True)
class _KeyEquals:
    field: BoundField
    value: Any

    def clause(self) -> sa.ColumnElement[bool]:
        try:
            encoded = self.field.codec.to_legacy(self.value)
        except Unencodable:
            return sa.false()  # a key the column cannot hold names no row: 404, not a client error
        return stored_equals(self.field, encoded)


@dataclass(frozen=True, slots=True)
class _InKeys:
    """Rows whose relation fields equal one of the parent key tuples (API values, encoded here)."""

    fields: tuple[BoundField, ...]
    keys: tuple[tuple[Any, ...], ...]

    def clause(self) -> sa.ColumnElement[bool]:
        return _StoredIn(self.fields, tuple(_encode_keys(self.fields, self.keys))).clause()


def _encode_keys(fields: Sequence[BoundField], keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The stored values of API key tuples; a key a column cannot hold is left out (it matches no row)."""
    encoded = []
    for key in keys:
        try:
            encoded.append(tuple(f.codec.to_legacy(v) for f, v in zip(fields, key, strict=True)))
        except Unencodable:
            continue
    return encoded


@dataclass(frozen=True, slots=True)
class _StoredIn:
    """Rows whose relation fields hold one of the stored key tuples (``_encode_keys``)."""

    fields: tuple[BoundField, ...]
    keys: tuple[tuple[Any, ...], ...]

    def clause(self) -> sa.ColumnElement[bool]:
        if not self.keys:
            return sa.false()
        if len(self.fields) == 1:
            only = self.fields[0]
            if len(only.columns) == 1:
                return exact_in(only.columns[0], [e[0] for e in self.keys], padded=only.padded)
        # Several columns: a NULL part is compared IS NULL (stored_equals), as the served values match.
        return sa.or_(
            *(sa.and_(*(stored_equals(f, v) for f, v in zip(self.fields, e, strict=True))) for e in self.keys)
        )
