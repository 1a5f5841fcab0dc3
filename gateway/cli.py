"""The ``bridgehead`` command: serve, demo, check, openapi, token issue.

Every failure a user can cause (bad mapping, missing secret, unreachable
database) ends in one readable line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import sys
import time
from collections.abc import Mapping as AbcMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import jwt

from legacy_adapters.exceptions import BridgeheadError, MappingError

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping

__all__ = ("main",)

DEMO_DIR = Path(".bridgehead")
_TTL = re.compile(r"^(\d+)([smhd])$")
_TTL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Claims `token issue` sets itself: a --claim naming one would silently replace it (``exp=5`` as text
# makes a token the gateway refuses, ``sub=`` contradicts --sub).
_MINTED_CLAIMS = frozenset({"sub", "iat", "nbf", "exp", "iss", "aud", "scope", "scp"})


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"bridgehead: {message}", err=True)
    sys.exit(code)


def _load(config: str, environ: AbcMapping[str, str] | None = None) -> Mapping:
    from legacy_adapters.mapping.load import load_mapping

    try:
        return load_mapping(config, environ)
    except MappingError as exc:
        _fail(f"invalid mapping: {exc}")


def _open_database(mapping: Mapping) -> Any:
    """The mapping's database, or one line naming why it cannot even be set up."""
    import sqlalchemy as sa

    from legacy_adapters.database import Database

    try:
        return Database(mapping.database)
    except (ValueError, ImportError, sa.exc.ArgumentError) as exc:
        # An unsupported backend, a malformed URL or a driver that is not installed is a
        # configuration mistake: say so in a line. The URL itself may carry a password: never echo it.
        _fail(f"cannot open database.url: {exc}")


def _preflight(mapping: Mapping, config: str | None = None, *, key_budget_s: float = 10.0) -> Any:
    """Open the database and refuse to serve a mapping whose tables or columns are missing or whose keys repeat.

    Keys are proven unique within ``key_budget_s`` seconds (one grouped query per resource); one not
    proven in time is logged, and reads refuse a repeated key when they meet it.
    """
    import structlog

    from legacy_adapters.check import check_mapping, verify_keys

    database = _open_database(mapping)
    try:
        findings = check_mapping(mapping, database, thorough=False)
        if not any(f.severity == "error" for f in findings) and key_budget_s > 0:
            findings += verify_keys(mapping, database, budget_s=key_budget_s)
    except BridgeheadError as exc:
        database.dispose()
        _fail(f"cannot check the mapping against the database: {exc}")
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        database.dispose()
        where = f"{config}: " if config else ""
        _fail("the mapping does not match the database:\n  " + "\n  ".join(f"{where}{e}" for e in errors))
    for finding in findings:
        structlog.get_logger("bridgehead.check").warning(finding.message, path=finding.path)
    return database


def _serve(
    mapping: Mapping,
    host: str,
    port: int,
    log_level: str,
    json_logs: bool,
    *,
    workers: int = 1,
    config: str | None = None,
    environ: AbcMapping[str, str] | None = None,
    key_budget_s: float = 10.0,
) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.logging import configure_logging

    configure_logging(log_level, json=json_logs)
    database = _preflight(mapping, config, key_budget_s=key_budget_s)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers > 1 and config is not None:
        # Worker processes build their own app from the file; they share state through the state
        # store, never through memory. Variables the demo set for us travel through the environment.
        database.dispose()
        os.environ.update({k: v for k, v in (environ or {}).items() if k.startswith("BRIDGEHEAD_")})
        os.environ.update({_CONFIG_ENV: config, _LOG_ENV: f"{log_level}:{int(json_logs)}"})
        uvicorn.run("gateway.cli:app_from_environment", factory=True, workers=workers, **options)
        return
    uvicorn.run(create_app(mapping, database=database), proxy_headers=False, **options)


_CONFIG_ENV = "BRIDGEHEAD_CONFIG"
_LOG_ENV = "BRIDGEHEAD_LOG"


def app_from_environment() -> Any:
    """The app of one ``serve --workers N`` worker process: the mapping named by ``BRIDGEHEAD_CONFIG``."""
    from gateway.app import create_app
    from gateway.logging import configure_logging
    from legacy_adapters.mapping.load import load_mapping

    level, _, json_logs = os.environ.get(_LOG_ENV, "info:0").partition(":")
    configure_logging(level, json=json_logs == "1")
    return create_app(load_mapping(os.environ[_CONFIG_ENV]))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bridgehead")
def main() -> None:
    """Bridgehead: a versioned REST API in front of a legacy SQL database."""


_config_option = click.option(
    "-c", "--config", required=True, type=click.Path(dir_okay=False), help="The mapping file (YAML)."
)


@main.command()
@_config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--json-logs", is_flag=True, help="One JSON object per log line.")
@click.option(
    "--verify-keys-s",
    "key_budget_s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds start-up may spend proving the keys unique (0: skip; reads refuse a repeat they meet).",
)
def serve(
    config: str, host: str, port: int, workers: int, log_level: str, json_logs: bool, key_budget_s: float
) -> None:
    """Serve the API described by a mapping file."""
    _serve(_load(config), host, port, log_level, json_logs, workers=workers, config=config, key_budget_s=key_budget_s)


@main.command()
@_config_option
@click.option("--quick", is_flag=True, help="Tables and columns only; skip key uniqueness and the decode sample.")
@click.option(
    "--max-undecodable",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of sampled rows a field may fail to decode (served as null) before it is an error.",
)
def check(config: str, quick: bool, max_undecodable: float) -> None:
    """Validate the mapping against the live database; exit 1 on any error."""
    from legacy_adapters.check import check_mapping

    mapping = _load(config)
    database = _open_database(mapping)
    try:
        findings = check_mapping(mapping, database, thorough=not quick, max_undecodable=max_undecodable)
    except BridgeheadError as exc:
        _fail(f"cannot check the mapping against the database: {exc}")
    finally:
        database.dispose()
    for finding in findings:
        click.echo(str(finding))
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    click.echo(f"{config}: {errors} error(s), {warnings} warning(s)")
    sys.exit(1 if errors else 0)


@main.command()
@_config_option
@click.option("--version", "version", default=None, help="API version (default: every version, one file each).")
@click.option("-o", "--output", type=click.Path(), default=None, help="File (one version) or folder to write.")
def openapi(config: str, version: str | None, output: str | None) -> None:
    """Print or write the OpenAPI 3.1 document(s) generated from the mapping."""
    from gateway.docs import openapi_json
    from gateway.openapi import build_openapi
    from legacy_adapters.query.resource import bind_version

    mapping = _load(config, environ=_LenientEnviron())
    versions = [version] if version else list(mapping.versions)
    for name in versions:
        if name not in mapping.versions:
            _fail(f"no version {name!r} in {config} (versions: {', '.join(mapping.versions)})")
    documents = {v: openapi_json(build_openapi(mapping, v, bind_version(mapping, v))) for v in versions}
    if output is None:
        for document in documents.values():
            sys.stdout.buffer.write(document)
    elif len(documents) == 1 and not Path(output).is_dir():
        Path(output).write_bytes(next(iter(documents.values())))
    else:
        Path(output).mkdir(parents=True, exist_ok=True)
        for name, document in documents.items():
            (Path(output) / f"{name}.json").write_bytes(document)


class _LenientEnviron(dict[str, str]):
    """For documents only: every variable reads as a placeholder, so no secret is needed or leaked."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"placeholder-for-{key}-in-generated-documents"


@main.group()
def token() -> None:
    """Development tokens."""


def mint_token(
    secret: str,
    *,
    subject: str,
    scopes: list[str],
    claims: dict[str, Any],
    ttl_s: int,
    issuer: str | None,
    audience: str | None,
) -> str:
    """An HS256 token as the gateway expects it (iss, aud, iat, exp, scope)."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": subject, "iat": now, "nbf": now, "exp": now + ttl_s, **claims}
    if scopes:
        payload["scope"] = " ".join(scopes)
    if issuer:
        payload["iss"] = issuer
    if audience:
        payload["aud"] = audience
    return jwt.encode(payload, secret, algorithm="HS256")


@token.command("issue")
@_config_option
@click.option("--sub", "subject", required=True, help="The token's subject.")
@click.option("--scope", "scopes", multiple=True, help="Scopes, space separated or repeated.")
@click.option("--claim", "claims", multiple=True, help="Extra claim as name=value (repeatable).")
@click.option("--ttl", default="1h", show_default=True, help="Lifetime: 30m, 1h, 7d …")
def token_issue(config: str, subject: str, scopes: tuple[str, ...], claims: tuple[str, ...], ttl: str) -> None:
    """Mint an HS256 token signed with the mapping's hs256_secret (development only)."""
    mapping = _load(config)
    if mapping.auth is None or not mapping.auth.hs256_secret:
        _fail(f"{config}: auth.hs256_secret is not set, so tokens cannot be minted here")
    match = _TTL.match(ttl)
    if not match or int(match.group(1)) == 0:  # a zero lifetime mints a token that is already expired
        _fail(f"--ttl must be a positive lifetime such as 30m, 1h or 7d, not {ttl!r}")
    extra: dict[str, Any] = {}
    for item in claims:
        name, sep, value = item.partition("=")
        if not sep or not name:
            _fail(f"--claim must be name=value, not {item!r}")
        if name in _MINTED_CLAIMS:
            _fail(f"--claim cannot set {name!r}; use --sub, --scope and --ttl (iss and aud come from the mapping)")
        extra[name] = value
    click.echo(
        mint_token(
            mapping.auth.hs256_secret,
            subject=subject,
            scopes=[s for group in scopes for s in group.split()],
            claims=extra,
            ttl_s=int(match.group(1)) * _TTL_SECONDS[match.group(2)],
            issuer=mapping.auth.issuer,
            audience=mapping.auth.audience,
        )
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--rows", default=2000, show_default=True, type=int, help="Jobs in a newly created demo database.")
@click.option("--log-level", default="info", show_default=True)
def demo(host: str, port: int, rows: int, log_level: str) -> None:
    """Create the 1998 job-shop demo database (if missing) and serve it with example tokens."""
    from legacy_adapters.demo import DEMO_MAPPING_PATH, create_demo_database

    DEMO_DIR.mkdir(exist_ok=True)
    database = DEMO_DIR / "demo.db"
    if not database.exists():
        click.echo(f"Creating the demo database ({rows} jobs) in {database} …")
        create_demo_database(database, rows=rows)
    secret_file = DEMO_DIR / "jwt-secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    environ = {
        **os.environ,
        "BRIDGEHEAD_JWT_SECRET": secret_file.read_text().strip(),
        "BRIDGEHEAD_DB_URL": os.environ.get("BRIDGEHEAD_DB_URL", f"sqlite:///{database}"),
    }
    mapping = _load(str(DEMO_MAPPING_PATH), environ)
    assert mapping.auth is not None and mapping.auth.hs256_secret
    common = {"issuer": mapping.auth.issuer, "audience": mapping.auth.audience, "ttl_s": 8 * 3600}
    admin = mint_token(mapping.auth.hs256_secret, subject="demo-admin", scopes=["admin"], claims={}, **common)
    portal_customer = _first_customer(database)
    portal = mint_token(
        mapping.auth.hs256_secret,
        subject="portal",
        scopes=["jobs:read", "customers:read"],
        claims={"customer_id": portal_customer},
        **common,
    )
    base = f"http://{host}:{port}"
    click.echo(
        f"""
Bridgehead demo: {base}  (interactive docs: {base}/docs)
Tokens are valid for 8 hours.

  export ADMIN='{admin}'
  export PORTAL='{portal}'   # customer {portal_customer} only

A filtered list (translated to JSTAT = 'R' AND DUEDT < 20261201 in SQL):
  curl -sg -H "Authorization: Bearer $ADMIN" '{base}/v1/jobs?status=released&due_date[lt]=2026-12-01&sort=due_date&limit=3'

One job with its routing operations embedded (one extra query, not one per row):
  curl -sg -H "Authorization: Bearer $ADMIN" '{base}/v1/jobs?limit=1&embed=operations'

Every rush job as NDJSON, streamed:
  curl -sg -H "Authorization: Bearer $ADMIN" -H 'Accept: application/x-ndjson' '{base}/v1/jobs?rush=true'

The portal token sees only its customer's jobs, and gets 403 where it has no scope (stock:read):
  curl -sg -H "Authorization: Bearer $PORTAL" '{base}/v1/jobs?limit=3&fields=job_number,customer_id,status'
  curl -sg -H "Authorization: Bearer $PORTAL" '{base}/v1/stock'
"""
    )
    _serve(mapping, host, port, log_level, json_logs=False)


def _first_customer(database: Path) -> str:
    import sqlite3

    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT TRIM(j.CUSTNO) FROM JOBMAST j GROUP BY j.CUSTNO ORDER BY COUNT(*) DESC LIMIT 1"
        ).fetchone()
    return str(row[0]) if row else "C0001"


@main.command("demo-db")
@click.option("--rows", default=2000, show_default=True, type=int)
@click.option("--seed", default=1998, show_default=True, type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
def demo_db(rows: int, seed: int, output: str) -> None:
    """Write a demo database of any size (benchmarks use 1,000,000 jobs)."""
    from legacy_adapters.demo import create_demo_database

    started = dt.datetime.now()
    summary = create_demo_database(Path(output), rows=rows, seed=seed)
    click.echo(f"{output}: {summary} in {(dt.datetime.now() - started).total_seconds():.1f}s")


from sync.cli import sandbox_command, sync_group  # noqa: E402

main.add_command(sync_group, "sync")
main.add_command(sandbox_command, "sandbox")
from legacy_adapters.cli import introspect_command  # noqa: E402

main.add_command(introspect_command, "introspect")
