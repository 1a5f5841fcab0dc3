"""Writes of a migrating resource, per phase, and the migration's face in ``/health/migration`` and ``/metrics``.

Every write is checked against the legacy resource (the same 422s, in the same words,
in every phase); only where it is stored changes:

- ``legacy``, ``shadow``: the legacy table, as always;
- ``dual_write``: the legacy table (still the source of truth), then, in the same
  request once that commits, the clean table (``Mirror``), with drift reported;
- ``cutover``: the clean table; with ``write_back`` the legacy table too, through the
  reverse codecs, for the old programs that still read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from litestar import get
from prometheus_client import Counter, Gauge

from gateway.readiness import UNGATED
from legacy_adapters.mapping.model import PHASES
from legacy_adapters.migration.mirror import Drift, Mirror, twin_columns
from legacy_adapters.migration.routing import rebind

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext
    from legacy_adapters.database import Database
    from legacy_adapters.migration.routing import RoutedReader
    from legacy_adapters.migration.shadow import MigrationStats
    from legacy_adapters.query.resource import Resource
    from legacy_adapters.writer import Encoded

__all__ = ("WritePlan", "count_migration", "migration_handlers", "write_plan")

log = structlog.get_logger("bridgehead.migration")

MIGRATION_EVENTS = Counter(
    "bridgehead_migration_events",
    "Shadow comparisons (compared, matched, differed, dropped, failed), mirrored writes and drift, per resource.",
    ("resource", "event"),
)


PHASE = Gauge(
    "bridgehead_migration_phase",
    "1 for the phase each migrating resource is in (legacy, shadow, dual_write, cutover), 0 for the others.",
    ("resource", "phase"),
    multiprocess_mode="livemax",
)


def count_migration(resource: str, event: str) -> None:
    """A ``MigrationStats`` listener feeding ``bridgehead_migration_events_total``."""
    MIGRATION_EVENTS.labels(resource, event).inc()


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Where one resource's writes go in its phase."""

    store: Resource
    """The binding the write statements run on (the legacy resource, or its twin in cutover)."""
    database: Database
    mirror: Mirror | None
    stats: MigrationStats | None

    twin: bool = False
    """The store is the clean twin (cutover): row filters and bodies are restated on it."""

    def conditions(self, conditions: tuple[Any, ...]) -> tuple[Any, ...]:
        """A caller's row filter restated on the store's binding."""
        return tuple(rebind(c, self.store) for c in conditions) if self.twin else conditions

    def stored(self, encoded: Encoded) -> Encoded:
        """A body checked (and encoded) against the legacy resource, as the store's columns."""
        return twin_columns(self.store, encoded.api) if self.twin else encoded

    def after_write(self, key: tuple[Any, ...], before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Repeat a committed write on the other side; its failure is logged and counted, never the caller's."""
        if self.mirror is None:
            return
        name = f"{self.store.version}.{self.store.name}"
        try:
            self.mirror.apply(key, before, after)
        except Exception as exc:  # the source of truth has committed: the client's write succeeded
            if self.stats is not None:
                self.stats.add(name, "mirror_failed")
            log.error("mirrored write failed", resource=name, key=[str(k) for k in key], error=type(exc).__name__,
                      detail=str(exc)[:200])  # fmt: skip
            return
        if self.stats is not None:
            self.stats.add(name, "mirrored")


def write_plan(ctx: GatewayContext, resource: Resource) -> WritePlan:
    """The write plan of ``resource`` in the phase its mapping names."""
    reader: RoutedReader = ctx.reader
    stats = ctx.migration_stats
    route = reader.route(resource)
    if route is None:
        return WritePlan(resource, reader.database_of(resource.spec.database), None, stats)
    legacy_db = reader.database_of(route.legacy_database)
    twin_db = reader.database_of(route.twin_database)

    def drift(found: Drift) -> None:
        if stats is not None:
            stats.add(resource.qualified_name, "drift")
        log.warning("drift between databases", resource=resource.qualified_name, key=[str(k) for k in found.key],
                    fields=list(found.fields), detail=found.detail)  # fmt: skip

    phase = route.phase
    if phase == "dual_write":
        return WritePlan(resource, legacy_db, Mirror(route.twin, twin_db, legacy=False, on_drift=drift), stats)
    if phase == "cutover":
        assert resource.spec.migration is not None
        back = Mirror(resource, legacy_db, legacy=True, on_drift=drift) if resource.spec.migration.write_back else None
        return WritePlan(route.twin, twin_db, back, stats, twin=True)
    return WritePlan(resource, legacy_db, None, stats)


def migration_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    """``GET /health/migration``: every migrating resource's phase, where it is served from, and its counters."""
    reader: RoutedReader = ctx.reader
    for name, route in reader.routes.items():
        for phase in PHASES:
            PHASE.labels(name, phase).set(1 if phase == route.phase else 0)

    @get("/health/migration", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def migration() -> dict[str, Any]:
        resources: dict[str, Any] = {}
        for name, route in reader.routes.items():
            migration = route.legacy.spec.migration
            assert migration is not None
            phase = route.phase
            resources[name] = {
                "phase": phase,
                "reads_from": route.twin_database if phase == "cutover" else (route.legacy_database or "default"),
                "writes_to": (
                    [route.twin_database, *(["legacy (write-back)"] if migration.write_back else [])]
                    if phase == "cutover"
                    else [route.legacy_database or "default", *([route.twin_database] if phase == "dual_write" else [])]
                ),
                "clean_table": route.twin.spec.table,
                "shadow_sample": migration.shadow_sample if phase in ("shadow", "dual_write") else 0.0,
                "counters": ctx.migration_stats.of(name) if ctx.migration_stats is not None else {},
            }
        recent = list(ctx.migration_stats.recent) if ctx.migration_stats is not None else []
        return {"status": "ok", "resources": resources, "recent": recent}

    return [migration]
