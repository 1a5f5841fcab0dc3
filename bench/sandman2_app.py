"""sandman2 serving the demo's JOBMAST table (runs in bench/.venv-sandman2, not the project venv).

sandman2 reflects tables through SQLAlchemy automap, which skips tables without a
primary key; the 1998 schema has none (JOBNO only has a unique index), so JOBMAST
is declared as a user model with JOBNO as its key, the way sandman2's docs do it.
No clean-up, no auth: sandman2 serves the stored values as they are.

For a ``sqlite+pyodbc`` URL a small SQLAlchemy 1.3 dialect (pyodbc connector + SQLite
dialect, ``StepAPI=1`` and autocommit, as legacy_adapters/dialects does for 2.x) puts
sandman2 on the same driver as the others.
"""

from __future__ import annotations

import os
import sqlite3
import types

__all__ = ("create",)


def _register_sqlite_pyodbc() -> None:
    from sqlalchemy.connectors.pyodbc import PyODBCConnector
    from sqlalchemy.dialects import registry
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    class _Module(types.ModuleType):
        sqlite_version_info = sqlite3.sqlite_version_info

        def __init__(self, module: types.ModuleType) -> None:
            super().__init__(module.__name__)
            self._module = module

        def __getattr__(self, name: str):
            return getattr(self._module, name)

    class SQLiteDialectPyodbc(PyODBCConnector, SQLiteDialect):
        pyodbc_driver_name = "SQLite3"
        supports_statement_cache = True

        @classmethod
        def dbapi(cls):
            import pyodbc

            pyodbc.pooling = False
            return _Module(pyodbc)

        def create_connect_args(self, url):
            return (f"DRIVER={{SQLite3}};Database={url.database};StepAPI=1",), {"autocommit": True}

        def set_isolation_level(self, connection, level):
            pass

        def get_isolation_level(self, connection):
            return "SERIALIZABLE"

        def _get_server_version_info(self, connection, allow_chars=True):
            return sqlite3.sqlite_version_info

    import sys

    module = types.ModuleType("bench_sandman2_dialect")
    module.SQLiteDialectPyodbc = SQLiteDialectPyodbc
    sys.modules["bench_sandman2_dialect"] = module
    registry.register("sqlite.pyodbc", "bench_sandman2_dialect", "SQLiteDialectPyodbc")


def create():
    """The sandman2 Flask app for ``BENCH_DB_URL``."""
    from sandman2 import get_app
    from sandman2.model import Model, db

    url = os.environ["BENCH_DB_URL"]
    if url.startswith("sqlite+pyodbc"):
        _register_sqlite_pyodbc()

    class Jobmast(db.Model, Model):
        __tablename__ = "JOBMAST"
        JOBNO = db.Column(db.String(10), primary_key=True)
        CUSTNO = db.Column(db.String(8))
        ITEMNO = db.Column(db.String(15))
        JSTAT = db.Column(db.String(1))
        ORDDT = db.Column(db.Integer)
        ORDTM = db.Column(db.Integer)
        DUEDT = db.Column(db.Integer)
        RUSHFL = db.Column(db.String(1))
        QTY = db.Column(db.Integer)
        PRIO = db.Column(db.Integer)
        NOTES = db.Column(db.String(200))
        DELFLG = db.Column(db.String(1))

    app = get_app(url, user_models=[Jobmast], read_only=True)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 5, "max_overflow": 0}
    return app
