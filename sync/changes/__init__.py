"""Change detection: the ChangeDetector protocol and the registry of detector kinds (STYLE C4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from legacy_adapters.exceptions import MappingError
from sync.changes.base import Change, ChangeDetector, LocalPass, PassLease, encode_key, fingerprint
from sync.changes.change_tracking import ChangeTrackingDetector
from sync.changes.high_water import HighWaterDetector
from sync.changes.snapshot_hash import SnapshotHashDetector

if TYPE_CHECKING:
    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.reader import Reader
    from sync.config import DetectorConfig
    from sync.state.base import StateStore

__all__ = (
    "DETECTORS",
    "Change",
    "ChangeDetector",
    "ChangeTrackingDetector",
    "HighWaterDetector",
    "LocalPass",
    "PassLease",
    "SnapshotHashDetector",
    "encode_key",
    "fingerprint",
    "make_detector",
)

DetectorFactory = Callable[
    ["DetectorConfig", str, "Resource", "tuple[BoundField, ...]", "Reader", "StateStore", "PassLease"], ChangeDetector
]


def _snapshot_hash(
    config: DetectorConfig, sync: str, resource: Resource, fields: tuple[BoundField, ...], reader: Reader,
    store: StateStore, lease: PassLease,
) -> ChangeDetector:  # fmt: skip
    return SnapshotHashDetector(sync, resource, fields, reader, store, config.batch_size, lease)


def _high_water(
    config: DetectorConfig, sync: str, resource: Resource, fields: tuple[BoundField, ...], reader: Reader,
    store: StateStore, lease: PassLease,
) -> ChangeDetector:  # fmt: skip
    assert config.column is not None  # load_sync_config refuses high_water without a column
    return HighWaterDetector(sync, resource, fields, reader, store, config.column, config.batch_size, lease)


def _change_tracking(
    config: DetectorConfig, sync: str, resource: Resource, fields: tuple[BoundField, ...], reader: Reader,
    store: StateStore, lease: PassLease,
) -> ChangeDetector:  # fmt: skip
    return ChangeTrackingDetector(sync, resource, fields, reader, store, config.batch_size, lease=lease)


DETECTORS: dict[str, DetectorFactory] = {
    "snapshot_hash": _snapshot_hash,
    "high_water": _high_water,
    "change_tracking": _change_tracking,
}
"""``detector.kind`` -> factory; the config's ``kind`` Literal lists the same names."""


def make_detector(
    config: DetectorConfig,
    sync: str,
    resource: Resource,
    fields: tuple[BoundField, ...],
    reader: Reader,
    store: StateStore,
    lease: PassLease | None = None,
) -> ChangeDetector:
    """The detector a sync's ``detector.kind`` names; an unknown kind lists the known ones.

    Raises:
        MappingError: for an unknown kind, with the known names.
    """
    factory = DETECTORS.get(config.kind)
    if factory is None:
        raise MappingError(
            f"unknown detector {config.kind!r} (known: {', '.join(DETECTORS)})", path=f"sync.syncs.{sync}.detector.kind"
        )
    return factory(config, sync, resource, fields, reader, store, lease or LocalPass())
