"""An embed compiled once per shape attaches exactly the children a plain reading of the tables gives.

``Reader`` attaches an embed with one statement per chunk of parent keys, compiled once per
embed shape (target, fields, relation, conditions, key count bucket) with the keys bound.
Generated tables and embed shapes are read three ways on every backend, and must agree:
the prepared statements, the statement built per chunk (``_Generic``), and a reference that
reads every visible child row in key order and groups them by their served link values in
Python. The tables hold what legacy ones do: NULL relation keys (alone and in one part of
a two-part key), CHAR keys stored padded, plain text keys that differ by case or by a
trailing blank, integers linking a to-one relation several times (refused), soft-deleted
children, and a portal row filter through a relation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scratch_db import SCRATCH_BACKENDS, scratch_url

from gateway.auth.guards import authorize_read
from gateway.auth.principal import Principal
from legacy_adapters import reader as reader_module
from legacy_adapters.database import Database
from legacy_adapters.exceptions import KeyNotUnique
from legacy_adapters.mapping import parse_mapping
from legacy_adapters.query.filters import Comparison
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.reader import Embed, Reader, ReadQuery

MAPPING = """
database: {url: "%(db)s"}
auth: {issuer: bridgehead-demo, audience: bridgehead, hs256_secret: "not-used-here-but-long-enough-32b"}
versions:
  v1:
    resources:
      parents:
        table: EMBPAR
        key: id
        where: "{DELFLG} <> 'Y'"
        scopes: {read: "p:read"}
        row_filter: {owner: claims.owner}
        unfiltered_scope: "p:all"
        fields:
          id: {column: ID, type: integer}
          ref: {column: REF, type: string, transform: trim, length: 6, nullable: true}
          code: {column: CODE, type: string, nullable: true}
          num: {column: NUM, type: integer, nullable: true}
          owner: {column: OWNER, type: string, transform: trim, length: 4}
        relations:
          by_ref: {resource: kids, on: {ref: ref}, many: true}
          by_code: {resource: kids, on: {code: code}, many: true}
          by_pair: {resource: kids, on: {ref: ref, num: num}, many: true}
          one_by_num: {resource: kids, on: {num: num}, many: false}
          one_by_id: {resource: kids, on: {id: id}, many: false}
          owned_by_code: {resource: owned, on: {code: code}, many: true}
      kids:
        table: EMBKID
        key: id
        where: "{DELFLG} <> 'Y'"
        scopes: {read: "p:read"}
        row_filter: {owner.owner: claims.owner}
        unfiltered_scope: "p:all"
        fields:
          id: {column: ID, type: integer}
          ref: {column: REF, type: string, transform: trim, length: 6, nullable: true}
          code: {column: CODE, type: string, nullable: true}
          num: {column: NUM, type: integer, nullable: true}
          note: {column: NOTE, type: string, transform: trim, nullable: true}
        relations:
          owner: {resource: parents, on: {ref: ref}, many: false}
      owned:
        table: EMBKID
        key: id
        where: "{DELFLG} <> 'Y'"
        scopes: {read: "p:read"}
        row_filter: {owner: claims.owner}
        unfiltered_scope: "p:all"
        fields:
          id: {column: ID, type: integer}
          code: {column: CODE, type: string, nullable: true}
          owner: {column: OWNER, type: string, transform: trim, length: 4}
          note: {column: NOTE, type: string, transform: trim, nullable: true}
"""
METADATA = sa.MetaData()
PARENTS = sa.Table(
    "EMBPAR",
    METADATA,
    sa.Column("ID", sa.Integer, nullable=False, autoincrement=False, quote=True),
    sa.Column("REF", sa.CHAR(6), quote=True),
    sa.Column("CODE", sa.String(8), quote=True),
    sa.Column("NUM", sa.Integer, quote=True),
    sa.Column("OWNER", sa.CHAR(4), nullable=False, quote=True),
    sa.Column("DELFLG", sa.CHAR(1), nullable=False, quote=True),
    quote=True,
)
KIDS = sa.Table(
    "EMBKID",
    METADATA,
    sa.Column("ID", sa.Integer, nullable=False, autoincrement=False, quote=True),
    sa.Column("REF", sa.CHAR(6), quote=True),
    sa.Column("CODE", sa.String(8), quote=True),
    sa.Column("NUM", sa.Integer, quote=True),
    sa.Column("NOTE", sa.String(10), quote=True),
    sa.Column("OWNER", sa.CHAR(4), nullable=False, quote=True),
    sa.Column("DELFLG", sa.CHAR(1), nullable=False, quote=True),
    quote=True,
)
RELATIONS = ("by_ref", "by_code", "by_pair", "one_by_num", "one_by_id", "owned_by_code")
KID_FIELDS = ("id", "ref", "code", "num", "note", "owner")
PARENT_FIELDS = ("id", "ref", "code", "num", "owner")

# Small pools, so that keys collide: case variants, a trailing blank on plain text, NULLs.
REFS = st.sampled_from(("A1", "a1", "B2", "b2 x", None))
CODES = st.sampled_from(("x", "X", "x ", " x", "yy", None))
NUMS = st.sampled_from((1, 2, 3, None))
OWNERS = st.sampled_from(("o1", "o2"))
DELETED = st.sampled_from(("N", "N", "N", "Y"))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    parents = draw(st.lists(st.tuples(REFS, CODES, NUMS, OWNERS, DELETED), min_size=1, max_size=12))
    notes = st.sampled_from(("n", "n ", None))
    kids = draw(st.lists(st.tuples(REFS, CODES, NUMS, DELETED, notes, OWNERS), max_size=30))
    # Ids apart, so that ``one_by_id`` finds a child for some parents and none for others.
    return (
        [
            {"ID": i * 2, "REF": r, "CODE": c, "NUM": n, "OWNER": o, "DELFLG": d}
            for i, (r, c, n, o, d) in enumerate(parents)
        ],
        [
            {"ID": 3 * i, "REF": r, "CODE": c, "NUM": n, "DELFLG": d, "NOTE": t, "OWNER": o}
            for i, (r, c, n, d, t, o) in enumerate(kids)
        ],
    )


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "relations": draw(st.lists(st.sampled_from(RELATIONS), min_size=1, max_size=2, unique=True)),
        "kid_fields": draw(st.lists(st.sampled_from(KID_FIELDS), min_size=1, max_size=5, unique=True)),
        "parent_fields": draw(st.lists(st.sampled_from(PARENT_FIELDS), min_size=1, max_size=5, unique=True)),
        "owner": draw(st.sampled_from((None, "o1", "o2"))),
        "limit": draw(st.sampled_from((1, 3, 50))),
        "offset": draw(st.sampled_from((None, None, 2))),
        "ref_filter": draw(st.sampled_from((None, "A1", "b2 x"))),
        "chunk": draw(st.sampled_from((1000, 2, 3))),
    }


class _Generic(Reader):
    """The reader with every statement built per read: embeds per chunk, pages, row-filtered gets."""

    def _prepared_embed(self, *_: Any) -> None:
        return None

    def _prepared_page(self, *_: Any) -> None:
        return None

    def _filtered_by_key(self, *_: Any) -> None:
        return None


@pytest.fixture(scope="module", params=SCRATCH_BACKENDS)
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sa.Engine, dict[str, Resource], Reader, Reader]]:
    url = scratch_url(request.param, tmp_path_factory.mktemp(f"embed-{request.param}"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        METADATA.drop_all(conn, checkfirst=True)
        METADATA.create_all(conn)
    mapping = parse_mapping(MAPPING % {"db": url})
    database = Database(mapping.database)
    yield engine, bind_version(mapping, "v1"), Reader(database), _Generic(database)
    database.dispose()
    with engine.begin() as conn:
        METADATA.drop_all(conn, checkfirst=True)
    engine.dispose()


def _fill(engine: sa.Engine, parents: list[dict[str, Any]], kids: list[dict[str, Any]]) -> None:
    # CHAR columns stored padded, as a legacy system keeps them (SQLite would keep them as given).
    parents = [{**p, "REF": _pad(p["REF"], 6), "OWNER": _pad(p["OWNER"], 4)} for p in parents]
    kids = [{**k, "REF": _pad(k["REF"], 6), "OWNER": _pad(k["OWNER"], 4)} for k in kids]
    with engine.begin() as conn:
        conn.execute(KIDS.delete())
        conn.execute(PARENTS.delete())
        conn.execute(PARENTS.insert(), parents)
        if kids:
            conn.execute(KIDS.insert(), kids)


def _pad(value: str | None, width: int) -> str | None:
    return None if value is None else value.ljust(width)


def _principal(owner: str | None) -> Principal:
    if owner is None:
        return Principal("admin", frozenset({"p:read", "p:all"}))
    return Principal(owner, frozenset({"p:read"}), {"owner": owner})


def _query(resources: dict[str, Resource], shape: dict[str, Any]) -> ReadQuery:
    parents = resources["parents"]
    principal = _principal(shape["owner"])
    access = authorize_read(parents, principal)
    conditions = tuple(access.conditions)
    if shape["ref_filter"] is not None:
        conditions += (Comparison(parents.fields["ref"], "eq", shape["ref_filter"], "ref"),)
    embeds = []
    for name in shape["relations"]:
        target = parents.relations[name]
        seen = authorize_read(target, principal)  # its row filter: through a relation (kids) or its own (owned)
        fields = tuple(target.fields[f] for f in shape["kid_fields"] if f in target.fields) or (target.fields["id"],)
        embeds.append(Embed(name, target, fields, seen.conditions))
    fields = tuple(parents.fields[f] for f in shape["parent_fields"])
    return ReadQuery(parents, fields, conditions, limit=shape["limit"], offset=shape["offset"], embeds=tuple(embeds))


def _read(attempt: Any) -> Any:
    """The rows (keys in order: the order a client sees), or the refusal of a to-one relation with several children."""
    try:
        return _ordered(attempt())
    except KeyNotUnique as exc:
        return ("refused", exc.resource, exc.key)


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _reference(reader: Reader, query: ReadQuery) -> Any:
    """The page as a plain reading gives it: every visible child in key order, grouped in Python."""
    parents = query.resource
    full = reader.page(dataclasses.replace(query, fields=tuple(parents.fields.values()), embeds=()))
    rows = [{f.name: row[f.name] for f in query.fields} for row in full.rows]
    for embed in query.embeds:
        relation = parents.spec.relations[embed.name]
        every = ReadQuery(embed.target, tuple(embed.target.fields.values()), embed.conditions)
        children = list(reader.stream(every))
        for row, parent in zip(rows, full.rows, strict=True):
            key = tuple(parent[mine] for mine in relation.on)
            found = [
                {f.name: child[f.name] for f in embed.fields}
                for child in children
                if tuple(child[theirs] for theirs in relation.on.values()) == key
            ]
            if all(v is None for v in key):
                found = []
            if not relation.many and len(found) > 1:
                return ("refused", embed.target.name, tuple(relation.on.values()))
            row[embed.name] = found if relation.many else (found[0] if found else None)
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=tables(), shape=shapes())
def test_a_prepared_embed_attaches_what_a_plain_reading_gives(
    setup: tuple[sa.Engine, dict[str, Resource], Reader, Reader],
    data: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    shape: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, resources, prepared, generic = setup
    _fill(engine, *data)
    query = _query(resources, shape)
    with monkeypatch.context() as patch:
        patch.setattr(reader_module, "_IN_CHUNK", shape["chunk"])  # several statements per embed
        mine = _read(lambda: prepared.page(query).rows)
        theirs = _read(lambda: generic.page(query).rows)
    expected = _read(lambda: _reference(generic, query))
    assert mine == theirs
    assert mine == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=tables(), shape=shapes(), which=st.integers(0, 11))
def test_a_prepared_embed_on_one_row_attaches_what_a_plain_reading_gives(
    setup: tuple[sa.Engine, dict[str, Resource], Reader, Reader],
    data: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    shape: dict[str, Any],
    which: int,
) -> None:
    engine, resources, prepared, generic = setup
    _fill(engine, *data)
    query = _query(resources, shape)
    key = (data[0][which % len(data[0])]["ID"],)

    def one(reader: Reader) -> Any:
        found = reader.get(query.resource, key, query.fields, query.conditions, query.embeds)
        return None if found is None else found[0]

    def reference() -> Any:
        conditions = (*query.conditions, Comparison(query.resource.fields["id"], "eq", key[0], "id"))
        rows = _reference(generic, dataclasses.replace(query, conditions=conditions, limit=2, offset=None))
        return rows if isinstance(rows, tuple) else (rows[0] if rows else None)

    mine = _read(lambda: one(prepared))
    assert mine == _read(lambda: one(generic))
    assert mine == _read(reference)


_SHAPE = {  # two embeds of admin's, their statements prepared
    "relations": ["by_ref", "owned_by_code"],
    "kid_fields": ["id"],
    "parent_fields": ["id"],
    "owner": None,
    "offset": None,
    "ref_filter": None,
    "chunk": 1000,
}


def test_embeds_of_one_shape_share_a_few_compiled_statements(
    setup: tuple[sa.Engine, dict[str, Resource], Reader, Reader],
) -> None:
    """The parent keys are parameters: pages of 1 to 40 parents run a handful of statements (powers of two)."""
    engine, resources, _, _ = setup
    refs = [f"R{n:03d}" for n in range(40)]
    parents = [
        {"ID": i, "REF": r, "CODE": r.lower(), "NUM": i, "OWNER": "o1", "DELFLG": "N"} for i, r in enumerate(refs)
    ]
    kids = [
        {"ID": 100 + i, "REF": r, "CODE": r.lower(), "NUM": i, "NOTE": "n", "OWNER": "o1", "DELFLG": "N"}
        for i, r in enumerate(refs)
    ]
    _fill(engine, parents, kids)
    reader = Reader(setup[2].database)
    statements: list[str] = []
    stop = reader.database.observe_statements(lambda sql, _parameters, _seconds: statements.append(sql))
    try:
        for limit in range(1, 41):
            shape = {**_SHAPE, "limit": limit}
            rows = reader.page(_query(resources, shape)).rows
            assert [row["by_ref"] for row in rows] == [[{"id": 100 + i}] for i in range(limit)]
            assert [row["owned_by_code"] for row in rows] == [[{"id": 100 + i}] for i in range(limit)]
    finally:
        stop()
    embedded = [sql for sql in statements if "EMBKID" in sql and "EMBPAR" not in sql]
    assert len(embedded) == 80
    # 1, 2, 4, ..., 64 keys for each of the two embeds: seven statements each, whatever the page.
    assert len(set(embedded)) == len(reader._embed_sql) == 2 * 7
    assert not any(ref in sql or ref.lower() in sql for sql in embedded for ref in refs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=tables(), owner=st.sampled_from(("o1", "o2")), which=st.integers(0, 29), limit=st.sampled_from((1, 4, 50)))
def test_a_row_filter_through_a_relation_compiled_once_reads_what_the_built_statement_reads(
    setup: tuple[sa.Engine, dict[str, Resource], Reader, Reader],
    data: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    owner: str,
    which: int,
    limit: int,
) -> None:
    """A portal token's kids are those whose parent (by ref) it owns: an EXISTS, prepared once per shape."""
    engine, resources, prepared, generic = setup
    _fill(engine, *data)
    kids = resources["kids"]
    conditions = authorize_read(kids, _principal(owner)).conditions
    assert conditions and getattr(conditions[0], "shape", None) is not None
    fields = tuple(kids.fields.values())
    after: tuple[Any, ...] | None = None
    for _ in range(3):
        query = ReadQuery(kids, fields, conditions, limit=limit, after=after)
        mine, theirs = prepared.page(query), generic.page(query)
        assert _ordered(mine.rows) == _ordered(theirs.rows)
        assert mine.last == theirs.last
        if mine.last is None:
            break
        after = mine.last
    if data[1]:
        key = (data[1][which % len(data[1])]["ID"],)
        assert prepared.get(kids, key, fields, conditions) == generic.get(kids, key, fields, conditions)
