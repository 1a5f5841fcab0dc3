"""Repeat a committed write on the other database: the clean twin (``dual_write``) or the legacy table (``cutover``).

A mirror does not replay the request: it makes the other side's row equal to the API
row the source of truth now holds (insert, update every field, or delete), so a
mirror that is repeated or runs late converges instead of doubling a change. Before
it writes, it compares the other side's row with what the source held before the
write; a difference is drift (a write that reached one side only, a program writing
the legacy tables directly) and is reported with the key and the fields that differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from legacy_adapters.migration.twin import HIDDEN
from legacy_adapters.query.exact import exact_in
from legacy_adapters.transforms import Unencodable
from legacy_adapters.writer import Encoded, RowExists, delete_row, fetch_for_update, insert_row, update_row

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import Resource

__all__ = ("Drift", "Mirror", "differing_fields", "twin_columns")


@dataclass(frozen=True, slots=True)
class Drift:
    """The other side did not hold what the source of truth held before a write."""

    resource: str
    key: tuple[Any, ...]
    fields: tuple[str, ...]
    """Fields that differ; every field when the row is missing on one side."""
    detail: str


def differing_fields(
    left: dict[str, Any] | None, right: dict[str, Any] | None, names: Sequence[str]
) -> tuple[str, ...]:
    """Field names whose values differ (all of them when exactly one side is missing)."""
    if left is None or right is None:
        return () if left is right else tuple(names)
    return tuple(n for n in names if left.get(n) != right.get(n))


def twin_columns(twin: Resource, api: dict[str, Any]) -> Encoded:
    """An API row (or part of one) as the twin's stored values: the columns are the fields."""
    encoded = Encoded(api=dict(api))
    for name, value in api.items():
        bound = twin.fields[name]
        encoded.columns[bound.codec.columns[0]] = bound.codec.to_legacy(value)
    return encoded


class Mirror:
    """Makes ``target``'s row equal to the source's API row, in one transaction on ``database``."""

    def __init__(
        self, target: Resource, database: Database, *, legacy: bool, on_drift: Callable[[Drift], None]
    ) -> None:
        self.target, self.database, self.legacy, self.on_drift = target, database, legacy, on_drift

    def _encode(self, api: dict[str, Any], *, partial: bool) -> Encoded:
        if not self.legacy:
            return twin_columns(self.target, api)
        # Back to the legacy columns through the reverse codecs (CHAR padding, codes, implied decimals);
        # read-only fields too: the API refuses them from callers, not from the row's own state.
        encoded = Encoded(api=dict(api))
        for name, value in api.items():
            bound = self.target.fields[name]
            try:
                stored = bound.codec.to_legacy(value)
            except Unencodable as exc:
                raise ValueError(f"{name}: {exc}; the row cannot be stored in {self.target.spec.table}") from None
            parts = stored if len(bound.columns) > 1 else (stored,)
            encoded.columns.update(zip(bound.codec.columns, parts, strict=True))
        if not partial:
            for column, stored in self.target.spec.defaults.items():
                encoded.columns.setdefault(column, stored)
        return encoded

    def apply(self, key: tuple[Any, ...], before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Make the target hold ``after`` (None: no visible row); report drift from ``before`` first."""
        names = list(self.target.fields)
        target = self.target

        def work(conn: sa.Connection) -> None:
            current = fetch_for_update(conn, target, key, ())
            differ = differing_fields(before, current.api if current is not None else None, names)
            if differ:
                where = "missing" if current is None else ("unexpected" if before is None else "different")
                self.on_drift(Drift(target.name, key, differ, f"{where} in {target.spec.table} before the write"))
            if after is None:
                if current is not None:
                    delete_row(conn, target, current)
                return
            if current is not None:
                changed = {n: after[n] for n in names if n in after and current.api.get(n) != after[n]}
                changed = {n: v for n, v in changed.items() if n not in {f.name for f in target.key}}
                if changed:
                    update_row(conn, target, current, self._encode(changed, partial=True).columns)
                return
            encoded = self._encode({n: after[n] for n in names if n in after}, partial=False)
            try:
                insert_row(conn, target, encoded)
            except RowExists:
                # A legacy row hidden by the mapping's where (soft-deleted) holds the key: revive it.
                self._revive(conn, encoded)

        self.database.run_transaction(work)

    def _revive(self, conn: sa.Connection, encoded: Encoded) -> None:
        target = self.target
        table = sa.table(target.table.name, *(sa.column(c) for c in encoded.columns), schema=target.table.schema)
        key_columns = [c.name for f in target.key for c in f.columns]
        padded = {c.name: f.padded for f in target.key for c in f.columns}
        if HIDDEN in target.table.c:  # the clean table's hidden row becomes visible again
            table = sa.table(target.table.name, *(sa.column(c) for c in [*encoded.columns, HIDDEN]),
                             schema=target.table.schema)  # fmt: skip
            encoded.columns[HIDDEN] = False
        statement = (
            sa.update(table)
            .where(*(exact_in(table.c[c], [encoded.columns[c]], padded=padded[c]) for c in key_columns))
            .values({table.c[c]: v for c, v in encoded.columns.items() if c not in key_columns})
        )
        conn.execute(statement)
