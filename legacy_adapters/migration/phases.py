"""A mapping with its migrating resources put in another phase (``migrate verify`` runs both ends side by side)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping, Phase

__all__ = ("migrating", "with_phase")


def migrating(mapping: Mapping) -> list[tuple[str, str]]:
    """(version, resource) of every resource with a ``migration``."""
    return [
        (version_name, name)
        for version_name, version in mapping.versions.items()
        for name, resource in version.resources.items()
        if resource.migration is not None
    ]


def with_phase(mapping: Mapping, phase: Phase, only: set[str] | None = None) -> Mapping:
    """``mapping`` with the migrating resources (those named in ``only``, else all) in ``phase``."""
    versions = {}
    for version_name, version in mapping.versions.items():
        resources = {}
        for name, resource in version.resources.items():
            if resource.migration is not None and (only is None or name in only):
                resource = msgspec.structs.replace(
                    resource, migration=msgspec.structs.replace(resource.migration, phase=phase)
                )
            resources[name] = resource
        versions[version_name] = msgspec.structs.replace(version, resources=resources)
    return msgspec.structs.replace(mapping, versions=versions)
