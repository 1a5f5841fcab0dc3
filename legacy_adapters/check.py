"""Check a mapping against the live database: tables, columns, unique keys, decodable samples.

``bridgehead check`` prints the report and exits non-zero on any error; the
server runs the cheap part (tables and columns) before it starts listening,
so a mapping that drifted from the database never serves half-broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from legacy_adapters.exceptions import DatabaseError
from legacy_adapters.query.builder import build_select, selected_columns
from legacy_adapters.query.resource import Resource, bind_version
from legacy_adapters.query.rows import RowDecoder

if TYPE_CHECKING:
    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping

__all__ = ("Finding", "check_mapping")

SAMPLE_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Literal["error", "warning"]
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def check_mapping(mapping: Mapping, database: Database, *, thorough: bool = True) -> list[Finding]:
    """Compare ``mapping`` with the database; ``thorough`` adds key uniqueness and a decode sample."""
    findings: list[Finding] = []
    # Through the database's own error wrapping: a refused login or a lost link is classified
    # (and the driver's reason logged), not reported as "could not run the query".
    with database.errors():
        return _check(mapping, database, database.inspector(), findings, thorough)


def _check(
    mapping: Mapping, database: Database, inspector: sa.Inspector, findings: list[Finding], thorough: bool
) -> list[Finding]:
    checked: set[tuple[str, str]] = set()
    for version in mapping.versions:
        for name, resource in bind_version(mapping, version).items():
            path = f"versions.{version}.resources.{name}"
            if (resource.spec.table, repr(resource.spec)) in checked:
                continue
            checked.add((resource.spec.table, repr(resource.spec)))
            if not _columns_exist(inspector, resource, path, findings):
                continue
            if thorough:
                findings.extend(_key_unique(database, resource, path))
                findings.extend(_sample(database, resource, path))
    return findings


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


def _key_unique(database: Database, resource: Resource, path: str) -> list[Finding]:
    key_columns = [c for f in resource.key for c in f.columns]
    statement = (
        sa.select(*key_columns, sa.func.count().label("n"))
        .select_from(resource.table)
        .group_by(*key_columns)
        .having(sa.func.count() > 1)
        .limit(5)
    )
    if resource.where is not None:
        statement = statement.where(resource.where)
    try:
        duplicates = database.fetch_all(statement)
    except DatabaseError as exc:
        return [Finding("error", f"{path}.key", f"could not check the key: {exc}")]
    if not duplicates:
        return []
    examples = ", ".join(repr(tuple(str(v).rstrip() for v in row[:-1])) for row in duplicates)
    key = ",".join(f.name for f in resource.key)
    return [Finding("error", f"{path}.key", f"key ({key}) is not unique; repeated values include {examples}")]


def _sample(database: Database, resource: Resource, path: str) -> list[Finding]:
    fields = tuple(resource.fields.values())
    columns = selected_columns(fields)
    try:
        rows = database.fetch_all(build_select(resource, columns, limit=SAMPLE_ROWS))
    except DatabaseError as exc:
        return [Finding("error", path, f"could not read sample rows: {exc}")]
    decoder = RowDecoder.for_columns(resource, fields, columns)
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    for row in rows:
        for name, reason in decoder.problems(row):
            failures[name] = failures.get(name, 0) + 1
            examples.setdefault(name, reason)
    return [
        Finding(
            "warning",
            f"{path}.fields.{name}",
            f"{count} of {len(rows)} sampled rows cannot be decoded (served as null), e.g. {examples[name]}",
        )
        for name, count in failures.items()
    ]
