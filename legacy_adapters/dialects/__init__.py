"""Backends by URL: ``get_backend(url)`` picks the engine family's set-up and error classifier.

A URL is looked up by ``backend+driver`` first (``sqlite+pyodbc``), then by backend
(``sqlite``, ``mssql``). Importing this package also registers the two SQLAlchemy
dialects that SQLAlchemy lacks: ``postgresql+pyodbc`` and ``sqlite+pyodbc``.

=====================  ==========================================================
URL                    backend
=====================  ==========================================================
``sqlite:///f.db``     SQLite through Python's sqlite3 (the embedded demo)
``sqlite+pyodbc://``   SQLite through sqliteodbc (tests the pyodbc path anywhere)
``mssql+pyodbc://``    SQL Server: Microsoft ODBC Driver 17/18 or FreeTDS
``postgresql+pyodbc``  PostgreSQL through psqlODBC
``mysql+pyodbc://``    MariaDB / MySQL through MariaDB Connector/ODBC (also ``mariadb+pyodbc``)
=====================  ==========================================================
"""

from __future__ import annotations

import sqlalchemy as sa

from legacy_adapters.dialects.base import Backend
from legacy_adapters.dialects.mariadb import MariaDBBackend
from legacy_adapters.dialects.mssql import MSSQLBackend
from legacy_adapters.dialects.postgresql import PostgreSQLBackend
from legacy_adapters.dialects.sqlite import SQLiteBackend
from legacy_adapters.dialects.sqlite_odbc import SQLiteOdbcBackend

__all__ = ("BACKENDS", "Backend", "get_backend")

BACKENDS: dict[str, Backend] = {
    "sqlite": SQLiteBackend(),
    "sqlite+pyodbc": SQLiteOdbcBackend(),
    "mssql": MSSQLBackend(),
    "mssql+pyodbc": MSSQLBackend(),
    "postgresql+pyodbc": PostgreSQLBackend(),
    "mysql+pyodbc": MariaDBBackend(),
    "mariadb+pyodbc": MariaDBBackend(),
}


def get_backend(url: str | sa.URL) -> Backend:
    """The backend for a database URL, by ``backend+driver`` or backend name (``sqlite``, ``mssql``, …)."""
    parsed = sa.make_url(url)
    backend_name = parsed.get_backend_name()
    for key in (f"{backend_name}+{parsed.get_driver_name()}", backend_name):
        if key in BACKENDS:
            return BACKENDS[key]
    known = ", ".join(sorted(BACKENDS))
    raise ValueError(f"unsupported database {parsed.drivername!r} (supported: {known})")
