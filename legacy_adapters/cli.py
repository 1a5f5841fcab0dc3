"""The legacy-database verbs of the ``bridgehead`` command: ``introspect``.

``gateway/cli.py`` mounts these on its root group; they are plain click
commands so the legacy_adapters package needs neither the gateway nor Litestar.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from legacy_adapters.exceptions import BridgeheadError

__all__ = ("introspect_command",)


def _fail(message: str) -> NoReturn:
    click.echo(f"bridgehead: {message}", err=True)
    sys.exit(2)


@click.command("introspect")
@click.option(
    "--url",
    envvar="BRIDGEHEAD_DB_URL",
    required=True,
    help="SQLAlchemy URL of the legacy database (or BRIDGEHEAD_DB_URL, which keeps a password out of `ps`).",
)
@click.option("--schema", default=None, help="Schema to read, e.g. dbo (default: the connection's).")
@click.option(
    "--tables", "patterns", multiple=True, help="Glob(s) of tables to include, e.g. 'JOB*' (comma list or repeat)."
)
@click.option(
    "--sample-rows", default=1000, show_default=True, type=click.IntRange(1), help="Most rows read per table."
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def introspect_command(
    url: str, schema: str | None, patterns: tuple[str, ...], sample_rows: int, output: str | None, force: bool
) -> None:
    """Write a starter mapping from the live schema and a bounded sample of each table."""
    import sqlalchemy as sa

    from legacy_adapters.database import Database
    from legacy_adapters.introspect import UNKEYED, introspect
    from legacy_adapters.mapping.model import DatabaseConfig

    if output and Path(output).exists() and not force:
        # A starter mapping is a first draft; the file there may be the edited result. Never clobber it silently.
        _fail(f"{output} exists; use --force to replace it")
    tables = [p.strip() for group in patterns for p in group.split(",") if p.strip()]
    try:
        # One connection, and a generous timeout: catalogue queries on a large server can be slow.
        database = Database(DatabaseConfig(url=url, statement_timeout_s=60, pool_size=1))
    except (ValueError, ImportError, sa.exc.ArgumentError) as exc:
        # The URL may carry a password: name the problem, never echo the URL.
        _fail(f"cannot open --url: {exc}")
    try:
        text = introspect(database, schema=schema, tables=tables, sample_rows=sample_rows)
    except BridgeheadError as exc:
        _fail(f"cannot introspect the database: {exc}")
    finally:
        database.dispose()
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).write_text(text, encoding="utf-8")
    unkeyed = text.count(UNKEYED)
    click.echo(
        f"wrote {output}; tables left commented out for want of a key: {unkeyed}. Next: bridgehead check -c {output}",
        err=True,
    )
