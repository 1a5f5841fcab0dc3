"""The ``bridgehead`` command: serve, demo, check, openapi, token issue (and sync, sandbox, runbook, …).

Every failure a user can cause (bad mapping, missing secret, unreachable
database) ends in one readable line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping as AbcMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import jwt

from legacy_adapters.exceptions import BridgeheadError, MappingError

if TYPE_CHECKING:
    from gateway.logging import LogFormat
    from legacy_adapters.mapping.model import Mapping

__all__ = ("main",)

WORKER_HEALTHCHECK_S = 60
"""Seconds a ``serve --workers`` worker may take to answer the supervisor (its start-up included)."""

DEMO_DIR = Path(".bridgehead")
_TTL = re.compile(r"^(\d+)([smhd])$")
_TTL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Claims `token issue` sets itself: a --claim naming one would silently replace it (``exp=5`` as text
# makes a token the gateway refuses, ``sub=`` contradicts --sub).
_MINTED_CLAIMS = frozenset({"sub", "iat", "nbf", "exp", "iss", "aud", "scope", "scp"})


def _private_files() -> None:
    """Files this process creates from now on (state store, SQLite journals, the demo's database and
    secret) are readable by their owner only: audit rows and tokens' claims are nobody else's business."""
    os.umask(0o077)


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


def _preflight(mapping: Mapping, config: str | None = None, *, key_budget_s: float = 10.0) -> tuple[Any, bool]:
    """Open the database and refuse to serve a mapping whose tables or columns are missing or whose keys repeat.

    Returns the database and whether the check ran. A database that cannot be reached
    is no reason to exit (a restart during an outage would crash-loop): the server
    then starts answering 503 and checks the mapping once the database answers.
    A refused login is a configuration mistake: the driver's reason is said and serve exits.
    Keys are proven unique within ``key_budget_s`` seconds (one grouped query per resource); one not
    proven in time is logged, and reads refuse a repeated key when they meet it.
    """
    import structlog

    from legacy_adapters.check import check_mapping, verify_keys
    from legacy_adapters.exceptions import DatabaseUnavailable, LoginRefused

    database = _open_database(mapping)
    try:
        findings = check_mapping(mapping, database, thorough=False)
        if not any(f.severity == "error" for f in findings) and key_budget_s > 0:
            findings += verify_keys(mapping, database, budget_s=key_budget_s)
    except LoginRefused as exc:
        database.dispose()
        _fail(f"cannot log in to the database: {exc} (the driver's reason is in the log above)")
    except DatabaseUnavailable as exc:
        click.echo(f"bridgehead: {exc}; serving 503 until it answers, then checking the mapping", err=True)
        return database, False
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
    return database, True


def _serve(
    mapping: Mapping,
    host: str,
    port: int,
    log_level: str,
    log_format: LogFormat,
    *,
    workers: int = 1,
    config: str | None = None,
    environ: AbcMapping[str, str] | None = None,
    key_budget_s: float = 10.0,
) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.logging import configure_logging
    from gateway.server import server_stack

    configure_logging(log_level, log_format=log_format)
    _private_files()
    database, checked = _preflight(mapping, config, key_budget_s=key_budget_s)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    options.update(server_stack())
    if workers > 1 and config is not None:
        # Worker processes build their own app from the file; they share state through the state
        # store, never through memory. Variables the demo set for us travel through the environment.
        database.dispose()
        os.environ.update({k: v for k, v in (environ or {}).items() if k.startswith("BRIDGEHEAD_")})
        os.environ.update({_CONFIG_ENV: config, _LOG_ENV: f"{log_level}:{log_format}"})
        if not mapping.api.cursor_secret:
            # Each worker would otherwise draw its own secret, and a cursor issued by one would be
            # refused by the next: the workers get one secret, drawn here, for this run only.
            os.environ[_CURSOR_ENV] = secrets.token_urlsafe(32)
        if not checked:
            os.environ[_AWAIT_ENV] = "1"
        # Each worker writes its metrics under this folder; /metrics on any worker adds them up.
        # Rate-limit counters without Redis live in one file the workers share (gateway/rate_limit.py).
        shared: list[str] = []
        for variable, prefix in (("PROMETHEUS_MULTIPROC_DIR", "metrics"), ("BRIDGEHEAD_RATE_LIMIT_DIR", "limits")):
            if not os.environ.get(variable):
                os.environ[variable] = tempfile.mkdtemp(prefix=f"bridgehead-{prefix}-")
                shared.append(os.environ[variable])
        try:
            # A worker that does not answer the supervisor's ping in time is killed and respawned. Importing
            # the app took longer than uvicorn's 5 s default on a busy 2-core host (load 13): every worker was
            # killed mid-import, in a loop, and the server never answered.
            _serve_workers(workers, options)
        finally:
            for folder in shared:
                shutil.rmtree(folder, ignore_errors=True)
        return
    mismatch: list[str] = []

    def stop(findings: str) -> None:  # the late check failed: stop as the early one would have
        mismatch.append(findings)
        server.should_exit = True

    app = create_app(mapping, database=database, await_database=not checked, on_mismatch=stop, mapping_path=config)
    server = uvicorn.Server(uvicorn.Config(app, proxy_headers=False, **options))
    server.run()
    if mismatch:
        _fail(f"the mapping does not match the database: {mismatch[0]}")


def _serve_workers(workers: int, options: dict[str, Any]) -> None:
    """``uvicorn.run(..., workers=N)``, with a listening socket per worker where the kernel balances them."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from gateway import listen

    config = uvicorn.Config(
        "gateway.cli:app_from_environment",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        **options,
    )
    if listen.balanced():
        try:
            sock = listen.bind_reserved(options["host"], options["port"])
        except OSError as exc:
            _fail(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}")
    else:
        sock = config.bind_socket()
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()


_CONFIG_ENV = "BRIDGEHEAD_CONFIG"
_LOG_ENV = "BRIDGEHEAD_LOG"
_CURSOR_ENV = "BRIDGEHEAD_WORKER_CURSOR_SECRET"
_AWAIT_ENV = "BRIDGEHEAD_AWAIT_DATABASE"


def app_from_environment() -> Any:
    """The app of one ``serve --workers N`` worker process: the mapping named by ``BRIDGEHEAD_CONFIG``."""
    from gateway.app import create_app
    from gateway.listen import take_own_socket
    from gateway.logging import configure_logging
    from legacy_adapters.mapping.load import load_mapping

    take_own_socket()  # before uvicorn listens: this worker's connections come to a socket of its own
    level, _, log_format = os.environ.get(_LOG_ENV, "info:auto").partition(":")
    configure_logging(level, log_format=log_format if log_format in ("json", "console") else "auto")  # type: ignore[arg-type]
    shared = os.environ.get(_CURSOR_ENV)
    return create_app(
        load_mapping(os.environ[_CONFIG_ENV]),
        cursor_secret=shared.encode() if shared else None,
        await_database=os.environ.get(_AWAIT_ENV) == "1",
        mapping_path=os.environ[_CONFIG_ENV],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bridgehead")
def main() -> None:
    """Bridgehead: a versioned REST API in front of a legacy SQL database."""


_log_format_option = click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="auto: readable lines on a terminal, one JSON object per line otherwise.",
)
_config_option = click.option(
    "-c", "--config", required=True, type=click.Path(dir_okay=False), help="The mapping file (YAML)."
)


@main.command()
@_config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--log-level", default="info", show_default=True)
@_log_format_option
@click.option("--json-logs", is_flag=True, help="Same as --log-format json.")
@click.option(
    "--verify-keys-s",
    "key_budget_s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds start-up may spend proving the keys unique (0: skip; reads refuse a repeat they meet).",
)
def serve(
    config: str, host: str, port: int, workers: int, log_level: str, log_format: str, json_logs: bool,
    key_budget_s: float,
) -> None:  # fmt: skip
    """Serve the API described by a mapping file."""
    fmt: Any = "json" if json_logs else log_format
    _serve(_load(config), host, port, log_level, fmt, workers=workers, config=config, key_budget_s=key_budget_s)


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
@click.option(
    "--indexes",
    is_flag=True,
    help="Also tell, for each order a list can ask for, whether an index of the database gives it"
    " (key tie-break included) or the database sorts the rows for every page.",
)
def check(config: str, quick: bool, max_undecodable: float, indexes: bool) -> None:
    """Validate the mapping against the live database; exit 1 on any error."""
    from legacy_adapters.check import check_mapping
    from legacy_adapters.order_indexes import order_reports

    mapping = _load(config)
    database = _open_database(mapping)
    try:
        findings = check_mapping(mapping, database, thorough=not quick, max_undecodable=max_undecodable)
        orders = (
            order_reports(mapping, database) if indexes and not any(f.severity == "error" for f in findings) else []
        )
    except BridgeheadError as exc:
        _fail(f"cannot check the mapping against the database: {exc}")
    finally:
        database.dispose()
    for finding in findings:
        click.echo(str(finding))
    for report in orders:
        click.echo(f"order: {report}")
    if orders:
        sorted_ = sum(1 for r in orders if not r.served)
        click.echo(f"{config}: {len(orders) - sorted_} order(s) read from an index, {sorted_} sorted for every page")
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    click.echo(f"{config}: {errors} error(s), {warnings} warning(s)")
    sys.exit(1 if errors else 0)


@main.group(invoke_without_command=True)
@click.option("-c", "--config", type=click.Path(dir_okay=False), help="The mapping file (YAML).")
@click.option("--version", "version", default=None, help="API version (default: every version, one file each).")
@click.option("-o", "--output", type=click.Path(), default=None, help="File (one version) or folder to write.")
@click.pass_context
def openapi(ctx: click.Context, config: str | None, version: str | None, output: str | None) -> None:
    """Print or write the OpenAPI 3.1 document(s) generated from the mapping (or: openapi diff OLD NEW)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise click.UsageError("Missing option '-c' / '--config'.")
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


@openapi.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--quiet", is_flag=True, help="Print breaking changes only.")
def openapi_diff(old: str, new: str, quiet: bool) -> None:
    """Classify every change from OLD to NEW; exit 1 when one is breaking.

    OLD and NEW are files, or git:REV:PATH for a committed version (git:origin/main:openapi/v1.json).
    """
    from gateway.openapi_diff import diff_documents

    changes = diff_documents(_read_document(old), _read_document(new))
    breaking = [c for c in changes if c.breaking]
    for change in changes:
        if change.breaking or not quiet:
            click.echo(str(change))
    click.echo(f"{len(breaking)} breaking, {len(changes) - len(breaking)} compatible change(s): {old} -> {new}")
    sys.exit(1 if breaking else 0)


@openapi.command("guard")
@click.option(
    "--base",
    default=None,
    help="Compare with this git ref's merge base too (origin/main); 'auto' tries origin/main, main, HEAD.",
)
@click.option("--dir", "folder", default="openapi", show_default=True, type=click.Path(file_okay=False))
def openapi_guard(base: str | None, folder: str) -> None:
    """Fail when a change breaks a released version's contract.

    A version is released once FOLDER/released/<version>.json exists. Its committed document is
    compared with that copy and, with --base, with itself and its copy at the merge base of HEAD
    and BASE; a breaking change or a deleted released document fails (exit 1). Unreleased
    versions' breaking changes are listed, not failed. See gateway/openapi_guard.py.
    """
    from gateway.openapi_guard import GuardError, resolve_base, run_guard

    path = Path(folder)
    try:
        rev = resolve_base(path, base) if base is not None else None
        if base == "auto" and rev is None:
            click.echo(f"{folder}: not in a git repository; comparing with released copies only")
        report = run_guard(path, rev)
    except GuardError as exc:
        _fail(str(exc), code=2)
    for line in report.compared:
        click.echo(line)
    for line in report.notices:
        click.echo(f"notice: {line}")
    for line in report.failures:
        click.echo(f"BREAKING: {line}")
    verdict = "FAILED" if report.failures else "ok"
    click.echo(f"openapi guard: {verdict}: {len(report.failures)} breaking change(s) to released versions")
    sys.exit(1 if report.failures else 0)


def _read_document(spec: str) -> dict[str, Any]:
    """An OpenAPI document from a file or from git (``git:REV:PATH``); a clear exit 2 otherwise."""
    import json
    import subprocess

    if spec.startswith("git:"):
        rev, _, path = spec[4:].partition(":")
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, check=False)
        if shown.returncode != 0:
            _fail(f"{spec}: {shown.stderr.decode(errors='replace').strip() or 'not found in git'}", code=2)
        text = shown.stdout
    else:
        try:
            text = Path(spec).read_bytes()
        except OSError as exc:
            _fail(f"{spec}: {exc.strerror}", code=2)
    try:
        document = json.loads(text)
    except ValueError as exc:
        _fail(f"{spec}: not a JSON document ({exc})", code=2)
    if not isinstance(document, dict) or "paths" not in document:
        _fail(f"{spec}: not an OpenAPI document (no 'paths')", code=2)
    return document


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


@main.command("mcp")
@_config_option
@click.option(
    "--token",
    envvar="BRIDGEHEAD_TOKEN",
    help="The bearer token the agent acts with (default: $BRIDGEHEAD_TOKEN); verified like any token.",
)
@click.option("--log-level", default="warning", show_default=True)
def mcp_command(config: str, token: str | None, log_level: str) -> None:
    """Serve the MCP tools over stdio, for desktop AI clients that start the server themselves."""
    import anyio

    from gateway.app import create_app
    from gateway.exceptions import Unauthorized
    from gateway.logging import configure_logging
    from gateway.mcp.stdio import serve_stdio

    mapping = _load(config)
    if not mapping.mcp.enabled:
        _fail(f"{config}: mcp.enabled is false")
    if mapping.auth is not None and not token:
        _fail("set BRIDGEHEAD_TOKEN (or --token) to the bearer token the agent acts with")
    # stdout carries the protocol: every log line goes to stderr.
    configure_logging(log_level, log_format="json", stream=sys.stderr.buffer)
    _private_files()
    try:
        anyio.run(serve_stdio, create_app(mapping), token)
    except Unauthorized as exc:
        _fail(f"the token is refused: {exc.detail}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--rows", default=2000, show_default=True, type=int, help="Jobs in a newly created demo database.")
@click.option("--log-level", default="info", show_default=True)
def demo(host: str, port: int, rows: int, log_level: str) -> None:
    """Create the 1998 job-shop demo database (if missing) and serve it with example tokens."""
    from legacy_adapters.demo import DEMO_MAPPING_PATH, create_demo_database, upgrade_demo_database

    _private_files()
    DEMO_DIR.mkdir(mode=0o700, exist_ok=True)
    DEMO_DIR.chmod(0o700)  # a folder made by an older version may be world-readable
    database = DEMO_DIR / "demo.db"
    if not database.exists():
        click.echo(f"Creating the demo database ({rows} jobs) in {database} …")
        create_demo_database(database, rows=rows)
    elif added := upgrade_demo_database(database):
        click.echo(f"Upgraded the demo database made by an older version: added {', '.join(added)}")
    secret_file = DEMO_DIR / "jwt-secret"
    hook_file = DEMO_DIR / "shopify-webhook-secret"
    xero_file = DEMO_DIR / "xero-webhook-key"
    for made in (secret_file, hook_file, xero_file):
        if not made.exists():
            # Created 0600 in one step: write-then-chmod leaves the secret readable for a moment.
            descriptor = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
    for existing in DEMO_DIR.iterdir():
        if existing.is_file():
            existing.chmod(0o600)
    hook_secret = hook_file.read_text().strip()
    environ = {
        **os.environ,
        "BRIDGEHEAD_JWT_SECRET": secret_file.read_text().strip(),
        "BRIDGEHEAD_SHOPIFY_WEBHOOK_SECRET": os.environ.get("BRIDGEHEAD_SHOPIFY_WEBHOOK_SECRET", hook_secret),
        "BRIDGEHEAD_XERO_WEBHOOK_KEY": os.environ.get("BRIDGEHEAD_XERO_WEBHOOK_KEY", xero_file.read_text().strip()),
        "BRIDGEHEAD_DB_URL": os.environ.get("BRIDGEHEAD_DB_URL", f"sqlite:///{database}"),
        # The demo mapping lives inside the package; its state belongs beside the demo database.
        "BRIDGEHEAD_STATE_URL": os.environ.get(
            "BRIDGEHEAD_STATE_URL", f"sqlite:///{(DEMO_DIR / 'state.db').resolve()}"
        ),
    }
    mapping = _load(str(DEMO_MAPPING_PATH), environ)
    assert mapping.auth is not None and mapping.auth.hs256_secret
    common: dict[str, Any] = {"issuer": mapping.auth.issuer, "audience": mapping.auth.audience, "ttl_s": 8 * 3600}
    admin = mint_token(mapping.auth.hs256_secret, subject="demo-admin", scopes=["admin"], claims={}, **common)
    portal_customer = _first_customer(database)
    sku = _first_sku(database, "W01")
    job = _first_complete_job(database)
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

Totals computed by the database, in API form (open work per status: quantity summed, earliest due date):
  curl -sg -H "Authorization: Bearer $ADMIN" '{base}/v1/jobs/aggregate?group_by=status&sum=quantity&min=due_date&status[ne]=complete&sort=-sum.quantity'
  curl -sg -H "Authorization: Bearer $PORTAL" '{base}/v1/jobs/aggregate?group_by=due_date:year&sum=quantity'

{mcp_client_setup(base, portal, portal_customer)}
A signed Shopify order webhook reserves 2 of {sku} in W01 (STKBAL.ALLOC), written back through the mapping:
  export SHOPIFY_SECRET="$(cat {hook_file})"
  body='{{"id":1001,"line_items":[{{"sku":"{sku}","quantity":2}}]}}'
  sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$SHOPIFY_SECRET" -binary | base64)
  curl -s -X POST -H "X-Shopify-Hmac-SHA256: $sig" -H 'X-Shopify-Topic: orders/create' -H 'X-Shopify-Webhook-Id: demo-1' -d "$body" '{base}/webhooks/shopify'
  curl -sg -H "Authorization: Bearer $ADMIN" '{base}/v1/stock/{sku},W01'

A Xero payment marks the job's invoice paid (JOBMAST.PAIDFL/PAIDDT): with `bridgehead sandbox` running and
`bridgehead sync run` done, pay job {job}'s invoice in the fake Xero, then send Xero's (signed) event:
  X=http://127.0.0.1:8787; export XERO_KEY="$(cat {xero_file})"
  XT=$(curl -s -u sandbox-client:sandbox-client-secret -d grant_type=client_credentials $X/connect/token | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
  TENANT=$(curl -s -H "Authorization: Bearer $XT" $X/connections | python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["tenantId"])')
  read INV TOTAL < <(curl -s -H "Authorization: Bearer $XT" -H "xero-tenant-id: $TENANT" $X/api.xro/2.0/Invoices | python3 -c 'import json,sys;i=[i for i in json.load(sys.stdin)["Invoices"] if i["InvoiceNumber"]=="{job}"][0];print(i["InvoiceID"],i["Total"])')
  curl -s -X PUT -H "Authorization: Bearer $XT" -H "xero-tenant-id: $TENANT" -d '{{"Invoice":{{"InvoiceID":"'$INV'"}},"Amount":'$TOTAL'}}' $X/api.xro/2.0/Payments
  body='{{"events":[{{"resourceId":"'$INV'","eventDateUtc":"'$(date -u +%Y-%m-%dT%H:%M:%S.000)'","eventType":"UPDATE","eventCategory":"INVOICE","tenantId":"'$TENANT'","tenantType":"ORGANISATION"}}],"firstEventSequence":1,"lastEventSequence":1,"entropy":"DEMO"}}'
  sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$XERO_KEY" -binary | base64)
  curl -s -w '%{{http_code}}\\n' -X POST -H "x-xero-signature: $sig" -d "$body" '{base}/webhooks/xero'
  curl -sg -H "Authorization: Bearer $ADMIN" '{base}/v1/job_invoices/{job}'
"""
    )
    _serve(mapping, host, port, log_level, "auto")


def mcp_client_setup(base: str, token: str, customer: str) -> str:
    """How to add the demo's MCP endpoint to an AI client, acting with ``token`` (printed by ``demo``)."""
    config = json.dumps(
        {
            "mcpServers": {
                "bridgehead-demo": {
                    "type": "http",
                    "url": f"{base}/mcp",
                    "headers": {"Authorization": f"Bearer {token}"},
                }
            }
        },
        indent=2,
    )
    return f"""AI agents: the MCP server at {base}/mcp (Streamable HTTP). With the portal token an agent sees customer {customer}'s
rows only, through every tool (describe_resources, jobs_list, jobs_aggregate, ...):
  claude mcp add --transport http bridgehead-demo {base}/mcp --header "Authorization: Bearer $PORTAL"
or in a client's JSON settings (Claude Desktop, VS Code, Cursor):
{config}
Clients that discover sign-in read {base}/.well-known/oauth-protected-resource/mcp.
"""


def _first_sku(database: Path, warehouse: str) -> str:
    import sqlite3

    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT TRIM(ITEMNO) FROM STKBAL WHERE WHSE = ? ORDER BY ITEMNO LIMIT 1", (warehouse,)
        ).fetchone()
    return str(row[0]) if row else "ITEM"


def _first_complete_job(database: Path) -> str:
    """The first job the Xero invoice sync invoices (a complete one)."""
    import sqlite3

    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT TRIM(JOBNO) FROM JOBMAST WHERE JSTAT = 'C' AND DELFLG <> 'Y' ORDER BY JOBNO LIMIT 1"
        ).fetchone()
    return str(row[0]) if row else "J000001"


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


from sync.cli import runbook_command, sandbox_command, sync_group  # noqa: E402

main.add_command(sync_group, "sync")
main.add_command(sandbox_command, "sandbox")
main.add_command(runbook_command, "runbook")
from sync.cli_xero import xero_group  # noqa: E402

main.add_command(xero_group, "xero")
from legacy_adapters.cli import introspect_command  # noqa: E402

main.add_command(introspect_command, "introspect")
from gateway.migrate import migrate_group  # noqa: E402

main.add_command(migrate_group, "migrate")
