"""One-shot seed of docker/compose.yaml: the demo legacy database on SQL Server.

Creates the database named in ``BRIDGEHEAD_DB_URL`` if it is missing, creates the
demo schema with ``legacy_adapters/demo/seed_mssql.sql`` (the T-SQL a DBA would
run, split on its ``GO`` lines as sqlcmd does), generates the demo rows
(``DEMO_ROWS``, 2,000 jobs by default) and copies them in with
``legacy_adapters.demo.load``. A database that already holds jobs is left alone,
so restarting the stack keeps what the API wrote; ``DEMO_RESEED=1`` reloads it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from legacy_adapters.demo import DEMO_SCHEMA_PATH, create_demo_database
from legacy_adapters.demo.load import load_demo

__all__ = ("main", "split_batches")

SEED_SQL = DEMO_SCHEMA_PATH.with_name("seed_mssql.sql")
"""The T-SQL schema, shipped inside the installed package (package-data)."""
_GO = re.compile(r"^\s*GO\s*$", re.IGNORECASE | re.MULTILINE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_batches(script: str) -> list[str]:
    """T-SQL batches of a script: ``GO`` is a sqlcmd separator, not SQL the server understands."""
    return [batch.strip() for batch in _GO.split(script) if batch.strip()]


def main() -> int:
    url = sa.make_url(os.environ["BRIDGEHEAD_DB_URL"])
    name = url.database or ""
    if not _NAME.match(name):
        # The name goes into CREATE DATABASE, which takes no parameters.
        print(f"seed: refusing database name {name!r}: letters, digits and '_' only", file=sys.stderr)
        return 2
    master = sa.create_engine(url.set(database="master"), isolation_level="AUTOCOMMIT")
    with master.connect() as conn:
        conn.exec_driver_sql(f"IF DB_ID(N'{name}') IS NULL CREATE DATABASE [{name}]")
    master.dispose()
    target = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with target.connect() as conn:
            seeded = conn.exec_driver_sql(
                "SELECT CASE WHEN OBJECT_ID(N'dbo.JOBMAST', N'U') IS NULL THEN 0"
                " ELSE (SELECT COUNT(*) FROM dbo.JOBMAST) END"
            ).scalar()
            if seeded and os.environ.get("DEMO_RESEED") != "1":
                print(f"seed: {name} already holds {seeded} jobs; set DEMO_RESEED=1 to reload")
                return 0
            for batch in split_batches(SEED_SQL.read_text(encoding="utf-8")):
                conn.exec_driver_sql(batch)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "demo.db"
            create_demo_database(source, rows=int(os.environ.get("DEMO_ROWS", "2000")))
            counts = load_demo(source, url, schema="dbo", keep_schema=True)
    finally:
        target.dispose()
    print("seed: loaded " + ", ".join(f"{table} {rows}" for table, rows in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
