"""Talking to the legacy database: the mapping, value transforms, SQL building and execution.

Blocking code (sqlite3, pyodbc); never imports litestar or httpx.
"""

from __future__ import annotations

from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping, load_mapping
from legacy_adapters.reader import Reader

__all__ = ("Database", "Mapping", "Reader", "load_mapping")
