"""The demo legacy database: a seeded 1998-style job shop in SQLite, and its mapping.

``create_demo_database`` writes the database (small for ``bridgehead demo``, a
million jobs for benchmarks); ``DEMO_MAPPING_PATH`` is the ``bridgehead.yaml``
that serves it, ``DEMO_SCHEMA_PATH`` its DDL.
"""

from __future__ import annotations

from pathlib import Path

from legacy_adapters.demo.generate import (
    DEFAULT_ROWS,
    DEFAULT_SEED,
    DEMO_SCHEMA_PATH,
    DIRTY_KINDS,
    DemoSummary,
    create_demo_database,
    upgrade_demo_database,
)

__all__ = (
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DEMO_MAPPING_PATH",
    "DEMO_SCHEMA_PATH",
    "DIRTY_KINDS",
    "MIGRATION_MAPPING_PATH",
    "DemoSummary",
    "create_demo_database",
    "upgrade_demo_database",
)

DEMO_MAPPING_PATH = Path(__file__).with_name("bridgehead.yaml")
MIGRATION_MAPPING_PATH = Path(__file__).with_name("bridgehead.migration.yaml")
"""The demo's customers and jobs moving to a PostgreSQL "core" database (docs/migration.md)."""
"""The mapping serving the demo database; ``${BRIDGEHEAD_DB_URL}`` overrides its SQLite path."""
