"""Check a mapping against the live database: tables, columns, unique keys, decodable samples.

``bridgehead check`` prints the report and exits non-zero on any error; the
server runs the cheap part (tables and columns) before it starts listening,
so a mapping that drifted from the database never serves half-broken.

A value that cannot be decoded is served as null, so a field failing on more
than ``max_undecodable`` of the sampled rows (every row, when the codec is
wrong) is an error, not a warning: the API would serve nulls it cannot stand
behind. Decodes that succeed but look wrong (dates before 1900, times all
before 00:24, one value in every row) are warnings with the likely cause.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from legacy_adapters.exceptions import DatabaseError, StatementTimeout
from legacy_adapters.query.builder import build_select, selected_columns
from legacy_adapters.query.exact import exact_value, ignores_case
from legacy_adapters.query.resource import BoundField, Resource, bind_version
from legacy_adapters.query.rows import RowDecoder

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping

__all__ = ("MAX_UNDECODABLE", "Finding", "check_mapping", "resources_to_check", "verify_keys")

SAMPLE_ROWS = 1000
MAX_UNDECODABLE = 0.05
"""Share of sampled rows a field may fail to decode before check calls the mapping wrong."""
_YEARS = (1900, dt.date.today().year + 50)
"""Decoded years outside this are almost always a wrong date codec, not real data."""
_SAME_VALUE_ROWS = 20
"""One value in every one of at least this many sampled rows is worth a look."""


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Literal["error", "warning"]
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def check_mapping(
    mapping: Mapping, database: Database, *, thorough: bool = True, max_undecodable: float = MAX_UNDECODABLE
) -> list[Finding]:
    """Compare ``mapping`` with the database; ``thorough`` adds key uniqueness, NULLs and a decode sample.

    Args:
        max_undecodable: a field failing to decode in a larger share of the sampled rows is an error.
    """
    findings: list[Finding] = []
    # Through the database's own error wrapping: a refused login or a lost link is classified
    # (and the driver's reason logged), not reported as "could not run the query".
    with database.errors():
        return _check(mapping, database, database.inspector(), findings, thorough, max_undecodable)


def _check(
    mapping: Mapping,
    database: Database,
    inspector: sa.Inspector,
    findings: list[Finding],
    thorough: bool,
    max_undecodable: float,
) -> list[Finding]:
    for path, resource in resources_to_check(mapping):
        if not _columns_exist(inspector, resource, path, findings):
            continue
        if thorough:
            findings.extend(_key_unique(database, resource, path))
            findings.extend(_to_one_relations(database, resource, path))
            findings.extend(_unexpected_nulls(database, resource, path))
            findings.extend(_sample(database, resource, path, max_undecodable))
    return findings


def resources_to_check(mapping: Mapping) -> Iterator[tuple[str, Resource]]:
    """Each distinct resource on the mapping's default database, with its path in the mapping.

    A resource whose table lives on another database (docs/migration.md) is left out: this check
    reads the default one. Versions that declare a table the same way share one entry.
    """
    checked: set[tuple[str, str]] = set()
    for version in mapping.versions:
        for name, resource in bind_version(mapping, version).items():
            home = resource.spec.database
            if home is not None and mapping.databases[home] != mapping.database:
                continue
            if (resource.spec.table, repr(resource.spec)) not in checked:
                checked.add((resource.spec.table, repr(resource.spec)))
                yield f"versions.{version}.resources.{name}", resource


def _columns_exist(inspector: sa.Inspector, resource: Resource, path: str, findings: list[Finding]) -> bool:
    table = resource.table
    try:
        actual = [c["name"] for c in inspector.get_columns(table.name, schema=table.schema)]
    except sa.exc.NoSuchTableError:
        findings.append(Finding("error", f"{path}.table", f"table {resource.spec.table!r} does not exist"))
        return False
    ok = True
    for field_name, field in resource.fields.items():
        for column in field.codec.columns:
            # Names must match exactly: quoted identifiers are case-sensitive on some engines and
            # collations. A name differing only by case is still an error, with the likely fix.
            if column not in actual:
                same = [name for name in actual if name.lower() == column.lower()]
                hint = f" (did you mean {same[0]!r}?)" if same else ""
                findings.append(
                    Finding(
                        "error",
                        f"{path}.fields.{field_name}",
                        f"column {column!r} is not in {table.name}{hint}",
                    )
                )
                ok = False
    return ok


def verify_keys(mapping: Mapping, database: Database, *, budget_s: float) -> list[Finding]:
    """``serve``'s start-up proof that every resource's key addresses one row, within ``budget_s`` seconds.

    A repeated key is an error: keyset pages would skip the rows sharing a boundary's key
    while ``count=exact`` counts them, and a GET would return one of them at random. A key
    not proven in time (the budget ran out, or a statement hit the timeout) is a warning;
    the reader then refuses a repeated key when it meets one (``KeyNotUnique``).
    """
    deadline = time.monotonic() + budget_s
    findings: list[Finding] = []
    for path, resource in _distinct_resources(mapping):
        if time.monotonic() >= deadline:
            findings.append(Finding("warning", f"{path}.key", _UNVERIFIED + " (start-up budget spent)"))
            continue
        try:
            findings.extend(_key_unique(database, resource, path, timeouts=True))
        except StatementTimeout:
            findings.append(Finding("warning", f"{path}.key", _UNVERIFIED + " (the statement timed out)"))
    return findings


_UNVERIFIED = "key uniqueness not verified at start-up; a read meeting a repeated key is refused"


def _distinct_resources(mapping: Mapping) -> Iterator[tuple[str, Resource]]:
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    for version in mapping.versions:
        for name, resource in bind_version(mapping, version).items():
            columns = tuple(c.name for f in resource.key for c in f.columns)
            key = (resource.spec.table, columns, repr(resource.spec.where))
            if key not in seen:
                seen.add(key)
                yield f"versions.{version}.resources.{name}", resource


def _repeated(database: Database, resource: Resource, fields: Sequence[BoundField], limit: int) -> list[Sequence[Any]]:
    """Up to ``limit`` values of ``fields`` that several rows hold, compared as the API compares them.

    The API tells ``'c0042'`` from ``'C0042'`` on every backend (``query/exact.py``); a case-insensitive
    collation's ``GROUP BY`` does not. It is asked first (an index on the key serves it); only when it
    finds repeats are they counted again code point by code point.
    """
    columns = [c for f in fields for c in f.columns]
    plain = sa.select(*columns, sa.func.count()).select_from(resource.table).group_by(*columns)
    if resource.where is not None:
        plain = plain.where(resource.where)
    repeated = database.fetch_all(plain.having(sa.func.count() > 1).limit(limit))
    text = [f.stored_text for f in fields for _ in f.columns]
    if not repeated or not any(text) or not ignores_case(database.dialect):
        return repeated
    padded = [f.padded for f in fields for _ in f.columns]
    grouped = [exact_value(c, padded=p) if is_text else c for c, is_text, p in zip(columns, text, padded, strict=True)]
    # MIN: SQL Server wants a selected column grouped or aggregated (each group holds one value anyway).
    exact = sa.select(*(sa.func.min(c) for c in columns), sa.func.count()).select_from(resource.table)
    exact = exact.group_by(*grouped)
    if resource.where is not None:
        exact = exact.where(resource.where)
    return database.fetch_all(exact.having(sa.func.count() > 1).limit(limit))


def _key_unique(database: Database, resource: Resource, path: str, *, timeouts: bool = False) -> list[Finding]:
    try:
        duplicates = _repeated(database, resource, resource.key, 5)
    except StatementTimeout:
        if timeouts:
            raise
        return [Finding("error", f"{path}.key", "could not check the key: the statement timed out")]
    except DatabaseError as exc:
        return [Finding("error", f"{path}.key", f"could not check the key: {exc}")]
    if not duplicates:
        return []
    examples = ", ".join(repr(tuple(str(v).rstrip() for v in row[:-1])) for row in duplicates)
    key = ",".join(f.name for f in resource.key)
    return [
        Finding(
            "error",
            f"{path}.key",
            f"key ({key}) is not unique; repeated values include {examples}: "
            "declare the fields that address one row (the table's natural key)",
        )
    ]


def _to_one_relations(database: Database, resource: Resource, path: str) -> list[Finding]:
    """A ``many: false`` relation must match at most one row, or an embed would pick one at random."""
    findings = []
    for name, relation in resource.spec.relations.items():
        target = resource.relations.get(name)
        if relation.many or target is None:
            continue
        theirs = [target.fields[field] for field in relation.on.values()]
        if {f.name for f in theirs} == {f.name for f in target.key}:
            continue  # the target's own key: its key check covers it
        try:
            repeated = _repeated(database, target, theirs, 1)
        except DatabaseError as exc:
            findings.append(Finding("warning", f"{path}.relations.{name}", f"could not check the relation: {exc}"))
            continue
        if repeated:
            on = ", ".join(f.name for f in theirs)
            example = tuple(str(v).rstrip() for v in repeated[0][:-1])
            findings.append(
                Finding(
                    "error",
                    f"{path}.relations.{name}",
                    f"many: false, but several {target.name} rows share ({on}), e.g. {example!r}: "
                    "say many: true, or relate on fields that address one row",
                )
            )
    return findings


def _unexpected_nulls(database: Database, resource: Resource, path: str) -> list[Finding]:
    """Fields not marked ``nullable`` whose columns hold NULLs: their sorts and pages would be wrong."""
    checked = [(f, c) for f in resource.fields.values() if not f.spec.nullable for c in f.columns]
    if not checked:
        return []
    counts = [sa.func.sum(sa.case((c.is_(None), 1), else_=0)) for _, c in checked]
    statement = sa.select(*counts).select_from(resource.table)
    if resource.where is not None:
        statement = statement.where(resource.where)
    try:
        (row,) = database.fetch_all(statement)
    except DatabaseError as exc:
        return [Finding("warning", path, f"could not count NULLs: {exc}")]
    return [
        Finding(
            "error",
            f"{path}.fields.{f.name}",
            f"column {c.name!r} holds {int(n)} NULLs but the field is not nullable: add nullable: true",
        )
        for (f, c), n in zip(checked, row, strict=True)
        if n
    ]


def _sample(database: Database, resource: Resource, path: str, max_undecodable: float) -> list[Finding]:
    fields = tuple(resource.fields.values())
    columns = selected_columns(fields)
    try:
        rows = database.fetch_all(build_select(resource, columns, limit=SAMPLE_ROWS))
    except DatabaseError as exc:
        return [Finding("error", path, f"could not read sample rows: {exc}")]
    decoder = RowDecoder.for_columns(resource, fields, columns)
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    values: dict[str, list[Any]] = {name: [] for name in resource.fields}
    for row in rows:
        for name, value, reason in decoder.outcomes(row):
            if reason is not None:
                failures[name] = failures.get(name, 0) + 1
                examples.setdefault(name, reason)
            elif value is not None:
                values[name].append(value)
    findings = []
    for name, count in failures.items():
        # Served as null either way; a large share means the codec, not the data, is wrong.
        wrong = count == len(rows) or count > max_undecodable * len(rows)
        message = f"{count} of {len(rows)} sampled rows cannot be decoded (served as null), e.g. {examples[name]}"
        if wrong:
            message += f"; more than {max_undecodable:.0%} of the rows: the field's encoding is wrong"
        findings.append(Finding("error" if wrong else "warning", f"{path}.fields.{name}", message))
    for name, decoded in values.items():
        findings.extend(
            Finding("warning", f"{path}.fields.{name}", message) for message in _implausible(decoded, len(rows))
        )
    return findings


def _implausible(values: list[Any], rows: int) -> Iterator[str]:
    """What makes decoded values look like a wrong decode rather than real data."""
    if not values:
        return
    days = [v.date() if isinstance(v, dt.datetime) else v for v in values if isinstance(v, dt.date)]
    if days:
        early = [d for d in days if d.year < _YEARS[0]]
        late = [d for d in days if d.year > _YEARS[1]]
        if early:
            yield f"{len(early)} sampled dates fall before {_YEARS[0]} (e.g. {min(early)}): check the date codec"
        if late:
            yield f"{len(late)} sampled dates fall after {_YEARS[1]} (e.g. {max(late)}): check the date codec"
    times = [v.time() if isinstance(v, dt.datetime) else v for v in values if isinstance(v, dt.time | dt.datetime)]
    if len(times) >= _SAME_VALUE_ROWS and all(t < dt.time(0, 24) for t in times):
        yield (f"every sampled time is before 00:24 (latest {max(times)}): HHMM values read as HHMMSS? try time: hhmm")
    distinct = {repr(v) for v in values}
    if len(distinct) == 1 and len(values) == rows and rows >= _SAME_VALUE_ROWS and not isinstance(values[0], bool):
        yield f"every one of the {rows} sampled rows decodes to {values[0]!r}: a constant, or the wrong column?"
