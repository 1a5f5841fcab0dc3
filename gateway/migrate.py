"""``bridgehead migrate``: copy a resource to its clean table, verify both sides, show the phases.

``copy`` and ``status`` need only ``legacy_adapters``; ``verify`` also replays API
requests against a gateway in the ``legacy`` phase and one in ``cutover`` (both
in-process, same cursor secret) and compares status, body bytes, ETag and Link.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from legacy_adapters.exceptions import BridgeheadError, MappingError

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping
    from legacy_adapters.migration.routing import Route, RoutedReader

__all__ = ("migrate_group",)


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"bridgehead: {message}", err=True)
    sys.exit(code)


def _load(config: str) -> Mapping:
    from legacy_adapters.mapping.load import load_mapping

    try:
        return load_mapping(config)
    except MappingError as exc:
        _fail(f"invalid mapping: {exc}")


def _reader(mapping: Mapping) -> RoutedReader:
    import sqlalchemy as sa

    from legacy_adapters.database import Database
    from legacy_adapters.migration.routing import RoutedReader, open_databases
    from legacy_adapters.query.resource import bind_version

    try:
        databases = open_databases(mapping, Database(mapping.database))
    except (ValueError, ImportError, sa.exc.ArgumentError) as exc:
        _fail(f"cannot open a database of the mapping: {exc}")  # never the URL: it may hold a password
    versions = {name: bind_version(mapping, name) for name in mapping.versions}
    return RoutedReader(mapping, databases, versions)


def _route(mapping: Mapping, reader: RoutedReader, resource: str, version: str | None, to: str | None) -> Route:
    version = version or next(iter(mapping.versions))
    if version not in mapping.versions:
        _fail(f"unknown version {version!r} (versions: {', '.join(mapping.versions)})")
    route = reader.routes.get(f"{version}.{resource}")
    if route is None:
        moving = ", ".join(n.partition(".")[2] for n in reader.routes if n.startswith(f"{version}.")) or "none"
        _fail(f"{version}.{resource} has no migration in the mapping (migrating: {moving})")
    if to is not None and to != route.twin_database:
        _fail(f"{resource} migrates to {route.twin_database!r}, not {to!r} (migration.to in the mapping)")
    return route


@click.group("migrate")
def migrate_group() -> None:
    """Move a resource to a clean table on another database without changing its API (docs/migration.md)."""


_config = click.option("-c", "--config", default="bridgehead.yaml", show_default=True, type=click.Path(dir_okay=False))
_version = click.option("--version", "version", default=None, help="API version (default: the first).")


@migrate_group.command("copy")
@click.argument("resource")
@click.option("--to", "to", default=None, help="Target database (must be the mapping's migration.to).")
@_config
@_version
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--restart", is_flag=True, help="Drop the clean table and its checkpoint and copy from the start.")
def copy_command(resource: str, to: str | None, config: str, version: str | None, batch_size: int,
                 restart: bool) -> None:  # fmt: skip
    """Create RESOURCE's clean table, copy every row (resumably), then verify counts and checksums."""
    from legacy_adapters.migration.copy import copy_rows, verify_rows

    mapping = _load(config)
    reader = _reader(mapping)
    route = _route(mapping, reader, resource, version, to)
    source = reader.database_of(route.legacy_database)
    target = reader.database_of(route.twin_database)
    bar: Any = None

    def start(total: int, already: int) -> None:
        nonlocal bar
        if already:
            click.echo(f"resuming after {already} rows copied by an earlier run")
        bar = click.progressbar(length=max(total - already, 0), label=f"copying {route.legacy.qualified_name}",
                                file=sys.stderr, show_pos=True)  # fmt: skip
        bar.__enter__()

    try:
        try:
            report = copy_rows(route, source, target, batch_size=batch_size, restart=restart,
                               on_start=start, progress=lambda n: bar.update(n))  # fmt: skip
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        table = route.twin.spec.table
        created = "created" if report.created_table else "exists"
        click.echo(f"{route.legacy.qualified_name}: {route.legacy.spec.table} -> {route.twin_database}.{table} "
                   f"(table {created})")  # fmt: skip
        click.echo(f"  source rows {report.source_rows}, copied {report.copied}, already there {report.skipped}, "
                   f"resumed at {report.resumed_at}")  # fmt: skip
        if report.hidden:
            click.echo(f"  rows the mapping's where hides (soft-deleted): {report.hidden}, copied as hidden rows")
        _print_problems(report.problems)
        checked = verify_rows(route, source, target, batch_size=batch_size)
    except BridgeheadError as exc:
        _fail(str(exc), 1)
    finally:
        reader.dispose()
        reader.database.dispose()
    _print_verify(checked)
    if not checked.ok:
        sys.exit(1)


def _print_problems(problems: list[Any]) -> None:
    if not problems:
        click.echo("  undecodable values: none")
        return
    click.echo(f"  undecodable values: {len(problems)} (copied as the null the API serves; listed, not dropped)")
    for problem in problems[:50]:
        state = "copied" if problem.copied else "NOT copied (its key cannot be decoded)"
        click.echo(f"    key {problem.key}: {problem.field}: {problem.reason} [{state}]")
    if len(problems) > 50:
        click.echo(f"    … {len(problems) - 50} more in the table bridgehead_migration_problems")


def _print_verify(report: Any) -> None:
    verdict = "identical" if report.ok else "DIFFERENT"
    click.echo(f"verify rows: legacy {report.legacy_rows}, clean {report.clean_rows}, compared {report.compared}, "
               f"differing {report.different}: {verdict}")  # fmt: skip
    click.echo(f"  checksum legacy {report.legacy_checksum}  clean {report.clean_checksum}")
    for key, fields in report.differences[:20]:
        click.echo(f"    key {key}: {', '.join(fields) or 'row'}")


@migrate_group.command("verify")
@click.argument("resource")
@_config
@_version
@click.option(
    "--requests",
    "requests_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Replay these request paths (one a line, e.g. /v1/jobs?status=released) instead of generated ones.",
)
@click.option("--max-pages", default=50, show_default=True, type=click.IntRange(1), help="Pages followed per list.")
@click.option("--rows/--no-rows", default=True, show_default=True, help="Also compare every row's checksum.")
def verify_command(resource: str, config: str, version: str | None, requests_file: str | None, max_pages: int,
                   rows: bool) -> None:  # fmt: skip
    """Replay requests on RESOURCE against both databases and report every difference (exit 1 if any)."""
    from gateway.replay import replay
    from legacy_adapters.migration.copy import verify_rows

    mapping = _load(config)
    reader = _reader(mapping)
    route = _route(mapping, reader, resource, version, None)
    paths = None
    if requests_file is not None:
        lines = Path(requests_file).read_text(encoding="utf-8").splitlines()
        paths = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    try:
        if rows:
            _print_verify(verify_rows(route, reader.database_of(route.legacy_database),
                                      reader.database_of(route.twin_database)))  # fmt: skip
        result = replay(mapping, route.legacy.version, resource, paths=paths, max_pages=max_pages)
    except BridgeheadError as exc:
        _fail(str(exc), 1)
    finally:
        reader.dispose()
        reader.database.dispose()
    click.echo(f"replayed {result.requests} requests on legacy and {route.twin_database}: "
               f"{result.identical} identical, {len(result.differences)} different")  # fmt: skip
    for difference in result.differences[:50]:
        click.echo(f"  {difference}")
    if result.differences:
        sys.exit(1)


@migrate_group.command("status")
@_config
def status_command(config: str) -> None:
    """Each migrating resource's phase and where it reads and writes."""
    from legacy_adapters.migration.phases import migrating

    mapping = _load(config)
    moving = migrating(mapping)
    if not moving:
        click.echo("no resource has a migration")
    for version_name, name in moving:
        spec = mapping.versions[version_name].resources[name]
        assert spec.migration is not None
        click.echo(f"{version_name}.{name}: {spec.migration.phase} ({spec.database or 'default'} -> "
                   f"{spec.migration.to}, table {spec.migration.table or name})")  # fmt: skip
