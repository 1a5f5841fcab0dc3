"""Change detection: the ChangeDetector protocol and the registry of detector kinds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from legacy_adapters.exceptions import MappingError
from sync.changes.base import Change, ChangeDetector, encode_key, fingerprint
from sync.changes.high_water import HighWaterDetector
from sync.changes.snapshot_hash import SnapshotHashDetector

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.config import DetectorConfig
    from sync.state.sync_store import SyncStore

__all__ = (
    "DETECTORS",
    "Change",
    "ChangeDetector",
    "HighWaterDetector",
    "SnapshotHashDetector",
    "encode_key",
    "fingerprint",
    "make_detector",
)

DETECTORS = ("snapshot_hash", "high_water", "change_tracking")


def make_detector(
    config: DetectorConfig,
    sync: str,
    resource: Resource,
    fields: tuple[BoundField, ...],
    reader: Reader,
    store: SyncStore,
) -> ChangeDetector:
    """The detector a sync's ``detector.kind`` names; an unknown kind lists the known ones."""
    if config.kind == "snapshot_hash":
        return SnapshotHashDetector(sync, resource, fields, reader, store, config.batch_size)
    if config.kind == "high_water":
        assert config.column is not None
        return HighWaterDetector(sync, resource, fields, reader, store, config.column, config.batch_size)
    if config.kind == "change_tracking":
        # Planned (SQL Server CHANGETABLE with min-valid-version reinit); refuse clearly until it exists.
        raise MappingError(
            "the change_tracking detector is not implemented yet", path=f"sync.syncs.{sync}.detector.kind"
        )
    raise MappingError(
        f"unknown detector {config.kind!r} (known: {', '.join(DETECTORS)})", path=f"sync.syncs.{sync}.detector.kind"
    )
