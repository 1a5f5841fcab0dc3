"""Cross-checks for ``databases:`` and a resource's ``migration:`` (names that must resolve, phases that must work).

A resource on a modern database is served from a clean table whose columns are the
API fields themselves; what cannot be derived from the legacy mapping (an action's
SQL, which names legacy columns) must be given for the clean table before ``cutover``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from legacy_adapters.exceptions import MappingError

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping, ResourceSpec

__all__ = ("check_migration",)


def _known(mapping: Mapping) -> str:
    return ", ".join(mapping.databases) or "none: name them under 'databases'"


def check_migration(path: str, resource: ResourceSpec, mapping: Mapping) -> None:
    """Raise ``MappingError`` (with the dotted path) for a database name or migration setting that cannot work."""
    if resource.database is not None and resource.database not in mapping.databases:
        raise MappingError(f"unknown database {resource.database!r} (databases: {_known(mapping)})",
                           path=f"{path}.database")  # fmt: skip
    migration = resource.migration
    if migration is None:
        return
    where = f"{path}.migration"
    if migration.to not in mapping.databases:
        raise MappingError(f"unknown database {migration.to!r} (databases: {_known(mapping)})", path=f"{where}.to")
    home = resource.database or _default_name(mapping)
    if migration.to == home:
        raise MappingError(f"the resource already lives in {home!r}: migrate it to another database",
                           path=f"{where}.to")  # fmt: skip
    for name in migration.actions:
        if name not in resource.actions:
            known = ", ".join(resource.actions) or "none"
            raise MappingError(f"no action {name!r} to restate for the clean table (actions: {known})",
                               path=f"{where}.actions.{name}")  # fmt: skip
    if migration.phase == "cutover":
        for name in resource.actions:
            if name not in migration.actions:
                raise MappingError(
                    f"action {name!r} names legacy columns: give its statements for the clean table "
                    f"before cutover (migration.actions.{name})",
                    path=f"{where}.actions",
                )
    if any("." in name for name in resource.row_filter or {}):
        raise MappingError("a row filter through a relation cannot move yet: filter on a field of this resource",
                           path=f"{path}.row_filter")  # fmt: skip


def _default_name(mapping: Mapping) -> str | None:
    """The name the default database goes by in ``databases`` (None in the one-database form)."""
    for name, config in mapping.databases.items():
        if config == mapping.database:
            return name
    return None
