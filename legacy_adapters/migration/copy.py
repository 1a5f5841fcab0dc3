"""Copy a resource's rows to its clean table, resumably, then prove both sides serve the same rows.

The copy reads the legacy table in key order, ``batch_size`` rows at a time (flat
memory), decodes each row exactly as the API serves it and inserts the API values
into the clean table. Each batch commits together with the checkpoint (the last
legacy key copied) in the target database, so a killed copy resumes after the last
committed batch and never copies a row twice. A key the clean table already holds
is left alone: in ``dual_write`` the mirrored write is at least as new as the copy.

A value that cannot be decoded is copied as the null the API serves, and the row is
listed (key, field, reason) in ``bridgehead_migration_problems``; a row whose key
cannot be decoded cannot be addressed at all and is listed as not copied.

``verify`` counts both sides and compares a checksum of every row's API form,
matched by key, batch by batch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from legacy_adapters.migration.mirror import differing_fields, twin_columns
from legacy_adapters.migration.twin import HIDDEN
from legacy_adapters.query.builder import build_count, build_select, order_for, selected_columns
from legacy_adapters.query.keyset import Keyset
from legacy_adapters.query.rows import RowDecoder
from legacy_adapters.reader import _InKeys

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.migration.routing import Route

__all__ = ("CopyReport", "Problem", "VerifyReport", "copy_rows", "create_clean_table", "row_checksum", "verify_rows")

_meta = sa.MetaData()
CHECKPOINTS = sa.Table(
    "bridgehead_migration",
    _meta,
    sa.Column("resource", sa.Unicode(200), primary_key=True),
    sa.Column("position", sa.UnicodeText(), nullable=True),
    sa.Column("copied", sa.BigInteger(), nullable=False),
    sa.Column("complete", sa.Boolean(create_constraint=False), nullable=False),
)
PROBLEMS = sa.Table(
    "bridgehead_migration_problems",
    _meta,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("resource", sa.Unicode(200), nullable=False, index=True),
    sa.Column("row_key", sa.UnicodeText(), nullable=False),
    sa.Column("field", sa.Unicode(200), nullable=False),
    sa.Column("reason", sa.UnicodeText(), nullable=False),
    sa.Column("copied", sa.Boolean(create_constraint=False), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Problem:
    key: str
    field: str
    reason: str
    copied: bool
    """False when the row could not be copied at all (its key cannot be decoded)."""


@dataclass(slots=True)
class CopyReport:
    resource: str
    source_rows: int = 0
    copied: int = 0
    """Rows inserted by this run."""
    skipped: int = 0
    """Rows the clean table already held (mirrored by dual_write)."""
    resumed_at: int = 0
    """Rows an earlier, interrupted run had copied."""
    hidden: int = 0
    """Rows the mapping's ``where`` hides (soft-deleted), copied by this run as hidden rows."""
    problems: list[Problem] = field(default_factory=list)
    created_table: bool = False


@dataclass(slots=True)
class VerifyReport:
    resource: str
    legacy_rows: int = 0
    clean_rows: int = 0
    compared: int = 0
    legacy_checksum: str = ""
    clean_checksum: str = ""
    differences: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    """(key, differing fields) per row that differs or is missing on the clean side (first 100)."""
    different: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.different == 0 and self.legacy_rows == self.clean_rows and self.legacy_checksum == self.clean_checksum
        )


def _tag(value: Any) -> list[Any]:
    match value:
        case None | bool() | int() | str():
            return ["v", value]
        case Decimal():
            return ["d", str(value)]
        case dt.datetime():
            return ["t", value.isoformat()]
        case dt.date():
            return ["a", value.isoformat()]
        case float():
            return ["f", repr(value)]
    raise TypeError(f"cannot checkpoint a {type(value).__name__} key")


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "v": lambda v: v, "d": Decimal, "t": dt.datetime.fromisoformat, "a": dt.date.fromisoformat, "f": float,
}  # fmt: skip


def _encode_position(values: Sequence[Any]) -> str:
    return msgspec.json.encode([_tag(v) for v in values]).decode()


def _decode_position(text: str) -> tuple[Any, ...]:
    return tuple(_UNTAG[tag](value) for tag, value in msgspec.json.decode(text))


def row_checksum(row: dict[str, Any], names: Sequence[str]) -> bytes:
    """A digest of one row's API form (what ``etag_of`` hashes for a migrating resource)."""
    return hashlib.blake2b(msgspec.msgpack.encode([row[n] for n in names]), digest_size=16).digest()


def _key_text(values: Sequence[Any]) -> str:
    return ",".join("" if v is None else str(v) for v in values)


def create_clean_table(route: Route, target: Database, *, restart: bool = False) -> bool:
    """Create the clean table (and the copy's bookkeeping tables) unless they exist; True when created."""
    table = route.twin.table
    with target.errors(), target.engine.begin() as conn:
        _meta.create_all(conn, checkfirst=True)
        exists = sa.inspect(conn).has_table(table.name, schema=table.schema)
        if exists and restart:
            table.drop(conn)
            exists = False
        if restart:
            conn.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.resource == route.legacy.qualified_name))
            conn.execute(PROBLEMS.delete().where(PROBLEMS.c.resource == route.legacy.qualified_name))
        if not exists:
            table.create(conn)
        return not exists


def copy_rows(
    route: Route,
    source: Database,
    target: Database,
    *,
    batch_size: int = 500,
    restart: bool = False,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy every visible legacy row of ``route`` to its clean table, resuming an interrupted copy.

    ``on_start(total, already)`` is told the source's row count and the rows already copied;
    ``progress(n)`` after each committed batch of ``n`` rows.
    """
    legacy, _twin = route.legacy, route.twin
    name = legacy.qualified_name
    report = CopyReport(name)
    report.created_table = create_clean_table(route, target, restart=restart)
    report.source_rows = int(source.scalar(build_count(legacy)))
    with target.errors(), target.engine.connect() as conn:
        saved = conn.execute(sa.select(CHECKPOINTS).where(CHECKPOINTS.c.resource == name)).first()
    after = _decode_position(saved.position) if saved is not None and saved.position else None
    report.resumed_at = int(saved.copied) if saved is not None else 0
    if on_start is not None:
        on_start(report.source_rows, report.resumed_at)
    fields = tuple(legacy.fields.values())
    order = order_for(legacy, ())
    columns = selected_columns(fields, order)
    decoder = RowDecoder.for_columns(legacy, fields, columns)
    key_columns = [k.column.name for k in order]
    key_names = [f.name for f in legacy.key]
    # Rows the mapping's where hides are copied too, marked hidden (twin.HIDDEN): their keys stay taken.
    everything = dataclasses.replace(legacy, where=None)
    shown: list[Any] = [sa.case((legacy.where, 1), else_=0).label("bh_shown")] if legacy.where is not None else []
    copied = report.resumed_at
    while True:
        conditions: list[Keyset] = [Keyset(order, after)] if after is not None else []
        raw_rows = source.fetch_all(build_select(everything, [*columns, *shown], conditions, order, batch_size))
        if not raw_rows:
            break
        rows: list[tuple[dict[str, Any], bool]] = []
        problems: list[Problem] = []
        for raw in raw_rows:
            api: dict[str, Any] = {}
            reasons: list[tuple[str, str]] = []
            for field_name, value, reason in decoder.outcomes(raw):
                api[field_name] = value
                if reason is not None:
                    reasons.append((field_name, reason))
            key = tuple(api[k] for k in key_names)
            addressable = all(v is not None for v in key)
            key_text = _key_text(key if addressable else decoder.raw(raw, key_columns))
            problems.extend(Problem(key_text, f, r, addressable) for f, r in reasons)
            hidden = bool(shown) and not raw[len(columns)]
            report.hidden += hidden
            if addressable:
                rows.append((api, hidden))
        after = decoder.raw(raw_rows[-1], key_columns)
        inserted = _insert_batch(
            route, target, rows, problems, after, copied + len(raw_rows), len(raw_rows) < batch_size
        )
        report.copied += inserted
        report.skipped += len(rows) - inserted
        report.problems.extend(problems)
        copied += len(raw_rows)
        if progress is not None:
            progress(len(raw_rows))
        if len(raw_rows) < batch_size:
            break
    with target.errors(), target.engine.begin() as conn:
        conn.execute(CHECKPOINTS.update().where(CHECKPOINTS.c.resource == name).values(complete=True))
        earlier = conn.execute(sa.select(PROBLEMS).where(PROBLEMS.c.resource == name).order_by(PROBLEMS.c.id)).all()
    report.problems = [Problem(p.row_key, p.field, p.reason, bool(p.copied)) for p in earlier]
    return report


def _insert_batch(
    route: Route, target: Database, rows: list[tuple[dict[str, Any], bool]], problems: list[Problem],
    after: Sequence[Any], copied: int, complete: bool,
) -> int:  # fmt: skip
    """Insert the rows the clean table lacks and move the checkpoint, in one transaction."""
    twin = route.twin
    name = route.legacy.qualified_name
    key_names = [f.name for f in twin.key]

    def work(conn: sa.Connection) -> int:
        present: set[tuple[Any, ...]] = set()
        if rows:
            keys = tuple(tuple(r[k] for k in key_names) for r, _ in rows)
            match = _InKeys(tuple(twin.key), keys)
            key_columns = [twin.table.c[k] for k in key_names]
            present = {tuple(r) for r in conn.execute(sa.select(*key_columns).where(match.clause()))}
        fresh = []
        for row, hidden in rows:
            if tuple(row[k] for k in key_names) in present:
                continue
            values = twin_columns(twin, row).columns
            if HIDDEN in twin.table.c:
                values[HIDDEN] = hidden
            fresh.append(values)
        if fresh:
            conn.execute(sa.insert(twin.table), fresh)
        for problem in problems:
            conn.execute(PROBLEMS.insert().values(resource=name, row_key=problem.key, field=problem.field,
                                                  reason=problem.reason, copied=problem.copied))  # fmt: skip
        position = _encode_position(after)
        updated = conn.execute(
            CHECKPOINTS.update().where(CHECKPOINTS.c.resource == name)
            .values(position=position, copied=copied, complete=complete)
        ).rowcount  # fmt: skip
        if not updated:
            conn.execute(
                CHECKPOINTS.insert().values(resource=name, position=position, copied=copied, complete=complete)
            )
        return len(fresh)

    return target.run_transaction(work)


def verify_rows(route: Route, source: Database, target: Database, *, batch_size: int = 500,
                progress: Callable[[int], None] | None = None) -> VerifyReport:  # fmt: skip
    """Count both sides and compare every row's API checksum, matched by key."""
    legacy, twin = route.legacy, route.twin
    report = VerifyReport(legacy.qualified_name)
    report.legacy_rows = int(source.scalar(build_count(legacy)))
    report.clean_rows = int(target.scalar(build_count(twin)))
    names = list(legacy.fields)
    key_names = [f.name for f in legacy.key]
    legacy_total = hashlib.blake2b(digest_size=16)
    clean_total = hashlib.blake2b(digest_size=16)
    order = order_for(legacy, ())
    fields = tuple(legacy.fields.values())
    columns = selected_columns(fields, order)
    decoder = RowDecoder.for_columns(legacy, fields, columns)
    twin_fields = tuple(twin.fields.values())
    twin_columns_ = selected_columns(twin_fields)
    twin_decoder = RowDecoder.for_columns(twin, twin_fields, twin_columns_)
    after = None
    while True:
        conditions: list[Keyset] = [Keyset(order, after)] if after is not None else []
        raw_rows = source.fetch_all(build_select(legacy, columns, conditions, order, batch_size))
        if not raw_rows:
            break
        after = decoder.raw(raw_rows[-1], [k.column.name for k in order])
        served = [dict((n, v) for n, v, _ in decoder.outcomes(r)) for r in raw_rows]
        keys = tuple(tuple(r[k] for k in key_names) for r in served)
        match = _InKeys(tuple(twin.key), keys)
        clean = {}
        for raw in target.fetch_all(build_select(twin, twin_columns_, [match])):
            row = dict((n, v) for n, v, _ in twin_decoder.outcomes(raw))
            clean[tuple(row[k] for k in key_names)] = row
        for key, row in zip(keys, served, strict=True):
            mine = row_checksum(row, names)
            legacy_total.update(mine)
            other = clean.get(key)
            if other is not None:
                clean_total.update(row_checksum(other, names))
            report.compared += 1
            if other is None or row_checksum(other, names) != mine:
                report.different += 1
                if len(report.differences) < 100:
                    report.differences.append((_key_text(key), differing_fields(row, other, names)))
        if progress is not None:
            progress(len(raw_rows))
        if len(raw_rows) < batch_size:
            break
    report.legacy_checksum = legacy_total.hexdigest()
    report.clean_checksum = clean_total.hexdigest()
    return report
