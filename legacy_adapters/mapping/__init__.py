"""The mapping file: its schema (``model``), loading (``load``) and cross-checks (``validate``)."""

from __future__ import annotations

from legacy_adapters.mapping.load import load_mapping, parse_mapping
from legacy_adapters.mapping.model import FieldSpec, Mapping, ResourceSpec

__all__ = ("FieldSpec", "Mapping", "ResourceSpec", "load_mapping", "parse_mapping")
