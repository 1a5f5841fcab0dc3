"""``bridgehead xero connect|status|keygen|rekey``: the OAuth2 grant behind a Xero destination.

Mounted by ``gateway/cli.py``. The destination is a ``sync.destinations`` entry of ``kind: xero``
with ``client_id`` and ``client_secret`` (from the environment); the grant is sealed into the
mapping's state store with the keys in ``BRIDGEHEAD_TOKEN_KEYS``.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from typing import TYPE_CHECKING, Any, NoReturn

import click

from legacy_adapters.exceptions import BridgeheadError

if TYPE_CHECKING:
    from sync.state.oauth_grants import GrantStore

__all__ = ("xero_group",)


def _fail(message: str) -> NoReturn:
    click.echo(f"bridgehead: {message}", err=True)
    sys.exit(2)


def _mapping(config: str | None) -> tuple[str, Any]:
    from legacy_adapters.mapping import load_mapping
    from sync.cli import _default_config, _demo_mapping

    environ = dict(os.environ)
    environ.setdefault("BRIDGEHEAD_JWT_SECRET", "unused-by-xero-connect-" + "x" * 32)
    path = config or _default_config()
    if os.path.realpath(path) == os.path.realpath(_demo_mapping()):
        environ.setdefault("BRIDGEHEAD_STATE_URL", f"sqlite:///{os.path.realpath('.bridgehead/state.db')}")
    try:
        return path, load_mapping(path, environ)
    except BridgeheadError as exc:
        _fail(f"invalid mapping: {exc}")


def _state_url(mapping: Any) -> str:
    return str((mapping.sync or {}).get("state_url") or mapping.state.url)


def _destination(config: str | None, name: str | None) -> tuple[str, dict[str, Any], str]:
    """(destination name, its raw block, state URL) of the mapping's Xero destination."""
    path, mapping = _mapping(config)
    sync = mapping.sync or {}
    destinations = {k: v for k, v in (sync.get("destinations") or {}).items() if (v or {}).get("kind") == "xero"}
    if name is not None and name not in destinations:
        known = ", ".join(destinations) or "none"
        _fail(f"{path}: sync.destinations has no Xero destination {name!r} (Xero ones: {known})")
    if name is None:
        if len(destinations) != 1:
            found = ", ".join(destinations) or "none"
            _fail(f"{path}: sync.destinations: name the Xero destination with --destination (found: {found})")
        name = next(iter(destinations))
    return name, destinations[name], _state_url(mapping)


def _grants(state_url: str) -> GrantStore:
    from sync.state.oauth_grants import GrantStore
    from sync.state.sealing import Sealer
    from sync.state.store import StateDatabase

    db = StateDatabase(state_url)
    db.migrate()
    return GrantStore(db, Sealer.from_environ(os.environ))


_config = click.option(
    "-c", "--config", default=None, help="The mapping file (default ./bridgehead.yaml, else the demo's)."
)
_dest = click.option("--destination", "name", default=None, help="The Xero destination (when the mapping has several).")


@click.group("xero")
def xero_group() -> None:
    """Connect Bridgehead to a Xero organisation (OAuth2) and look after the stored grant."""


@xero_group.command("connect")
@_config
@_dest
@click.option("--tenant", default=None, help="Tenant id or organisation name, when the grant reaches several.")
@click.option("--no-browser", is_flag=True, help="Only print the consent URL.")
@click.option("--timeout", "timeout_s", default=300.0, show_default=True, help="Seconds to wait for the callback.")
def connect_command(
    config: str | None, name: str | None, tenant: str | None, no_browser: bool, timeout_s: float
) -> None:
    """Print the consent URL, take Xero's callback on localhost, store the sealed grant."""
    import httpx

    from sync.connectors.xero.connect import connect
    from sync.connectors.xero.oauth import XeroApp

    name, block, state_url = _destination(config, name)
    try:
        app = XeroApp.from_destination(block)
        store = _grants(state_url)

        def opener(url: str) -> None:
            if not no_browser:
                webbrowser.open(url, new=2)

        with httpx.Client(timeout=app.timeout_s) as http:
            connect(app, store, name, http, echo=click.echo, tenant=tenant, timeout_s=timeout_s, on_url=opener)
    except BridgeheadError as exc:
        _fail(str(exc))


@xero_group.command("status")
@_config
def status_command(config: str | None) -> None:
    """Each stored Xero grant: tenant, connected or reconnect needed, when its access token expires."""
    _, mapping = _mapping(config)
    lines = grant_lines(_state_url(mapping))
    for line in lines or ["no Xero grant stored: run `bridgehead xero connect`"]:
        click.echo(line)


def grant_rows(state_url: str) -> list[dict[str, Any]]:
    """Every stored grant's name, tenant and status, never a token (none when the table is missing)."""
    import sqlalchemy as sa

    from sync.state.oauth_grants import OAUTH_GRANTS
    from sync.state.store import StateDatabase

    db = StateDatabase(state_url)
    try:
        t = OAUTH_GRANTS
        with db.engine.connect() as conn:
            if not sa.inspect(conn).has_table(t.name):
                return []
            columns = (t.c.name, t.c.tenant_name, t.c.tenant_id, t.c.status, t.c.reason, t.c.expires_at,
                       t.c.refreshes)  # fmt: skip
            return [dict(r) for r in conn.execute(sa.select(*columns).order_by(t.c.name)).mappings()]
    finally:
        db.dispose()


def grant_lines(grants: list[dict[str, Any]] | str) -> list[str]:
    """Human lines about every stored grant (rows, or a state URL to read them from), for the status commands."""
    import datetime as dt

    rows = grant_rows(grants) if isinstance(grants, str) else grants
    lines = []
    for r in rows:
        if r["status"] == "reconnect":
            state = f"RECONNECT NEEDED ({r['reason']}): run `bridgehead xero connect --destination {r['name']}`"
        else:
            expires = dt.datetime.fromtimestamp(r["expires_at"], dt.UTC).strftime("%H:%M UTC")
            state = f"connected, access token until {expires}, {r['refreshes']} refreshes"
        lines.append(f"xero {r['name']}: {r['tenant_name'] or '?'} ({r['tenant_id']}): {state}")
    return lines


@xero_group.command("keygen")
def keygen_command() -> None:
    """Print a new sealing key; put it FIRST in BRIDGEHEAD_TOKEN_KEYS (old keys after it, comma separated)."""
    from sync.state.sealing import generate_key

    click.echo(generate_key())


@xero_group.command("rekey")
@_config
def rekey_command(config: str | None) -> None:
    """Seal every stored grant again with the newest key, so the old keys can be dropped."""
    _, _, state_url = _destination(config, None)
    try:
        done = _grants(state_url).rekey()
    except BridgeheadError as exc:
        _fail(str(exc))
    click.echo(f"{done} grant(s) sealed again with the newest key")
