"""Backends by URL: ``get_backend(url)`` picks the engine family's set-up and error classifier."""

from __future__ import annotations

import sqlalchemy as sa

from legacy_adapters.dialects.base import Backend
from legacy_adapters.dialects.sqlite import SQLiteBackend

__all__ = ("BACKENDS", "Backend", "get_backend")

BACKENDS: dict[str, Backend] = {"sqlite": SQLiteBackend()}


def get_backend(url: str | sa.URL) -> Backend:
    """The backend for a database URL, by its dialect name (``sqlite``, ``mssql``, …)."""
    dialect = sa.make_url(url).get_backend_name()
    try:
        return BACKENDS[dialect]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unsupported database {dialect!r} (supported: {known})") from None
