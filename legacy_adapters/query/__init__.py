"""SQL building with SQLAlchemy Core: bound resources, filters, statements, row decoding."""

from __future__ import annotations

from legacy_adapters.query.builder import build_count, build_select
from legacy_adapters.query.filters import Comparison
from legacy_adapters.query.keyset import Keyset
from legacy_adapters.query.resource import BoundField, Resource, bind_version

__all__ = ("BoundField", "Comparison", "Keyset", "Resource", "bind_version", "build_count", "build_select")
