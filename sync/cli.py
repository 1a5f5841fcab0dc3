"""``bridgehead sync run|status|history|errors|conflicts|show|approvals|approve|reject|dlq|pause|resume``,
``bridgehead sandbox`` and ``bridgehead runbook``.

Mounted by ``gateway/cli.py``. Each command reads the mapping's ``sync`` section;
failures a user can cause end in one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import msgspec

from legacy_adapters.exceptions import BridgeheadError

if TYPE_CHECKING:
    from sync.config import SyncConfig
    from sync.state.sync_store import SyncStore

__all__ = ("runbook_command", "sandbox_command", "sync_group")


def _fail(message: str) -> NoReturn:
    click.echo(f"bridgehead: {message}", err=True)
    sys.exit(2)


def _demo_mapping() -> Path:
    from legacy_adapters.demo import DEMO_MAPPING_PATH

    return DEMO_MAPPING_PATH


def _default_config() -> str:
    return "bridgehead.yaml" if Path("bridgehead.yaml").exists() else str(_demo_mapping())


def _load(config: str | None) -> tuple[Any, SyncConfig]:
    from legacy_adapters.mapping import load_mapping
    from sync.config import load_sync_config

    environ = dict(os.environ)
    # Sync never verifies tokens: a mapping whose auth secret is unset still syncs.
    environ.setdefault("BRIDGEHEAD_JWT_SECRET", "unused-by-sync-" + "x" * 32)
    path = config or _default_config()
    if Path(path).resolve() == _demo_mapping().resolve():
        # The demo mapping lives inside the package; `bridgehead demo` keeps its state in ./.bridgehead.
        environ.setdefault("BRIDGEHEAD_STATE_URL", f"sqlite:///{Path('.bridgehead/state.db').resolve()}")
    try:
        mapping = load_mapping(path, environ)
        sync_config = load_sync_config(mapping.sync, source=str(path))
        if "state_url" not in (mapping.sync or {}):
            # One state store per mapping: sync shares the gateway's (state.url) unless told otherwise.
            sync_config = msgspec.structs.replace(sync_config, state_url=mapping.state.url)
        return mapping, sync_config
    except BridgeheadError as exc:
        _fail(f"invalid mapping: {exc}")


def _store(sync_config: SyncConfig, url: str | None) -> SyncStore:
    from sync.state.sync_store import SyncStore

    return SyncStore.from_url(url or sync_config.state_url)


_config = click.option(
    "-c", "--config", default=None, help="The mapping file (default ./bridgehead.yaml, else the demo's)."
)
_state = click.option("--state-url", default=None, help="State store URL (default: sync.state_url of the mapping).")


@click.group("sync")
def sync_group() -> None:
    """Push legacy changes into SaaS tools (Shopify, Xero)."""


@sync_group.command("run")
@_config
@_state
@click.option("--dry-run", is_flag=True, help="Print planned creates/updates/deletes and a sample diff; send nothing.")
@click.option("--only", default=None, help="Run one sync by name.")
@click.option("--loop", is_flag=True, help="Keep running each sync on its own interval_s schedule, in its own thread.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="With --loop: serve Prometheus metrics (bridgehead_sync_*) on this port.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics port listens on.")
def run(config: str | None, state_url: str | None, dry_run: bool, only: str | None, loop: bool,
        metrics_port: int | None, metrics_host: str) -> None:  # fmt: skip
    """Run every sync once (or one with --only); exit 1 when a run failed or a record did not go."""
    import httpx
    from rich.progress import Progress

    from legacy_adapters.database import Database
    from sync.engine import SyncEngine
    from sync.scheduler import SyncLoop

    mapping, sync_config = _load(config)
    if only and only not in sync_config.syncs:
        _fail(f"unknown sync {only!r} (known: {', '.join(sync_config.syncs)})")
    store = _store(sync_config, state_url)
    database = Database(mapping.database)
    names = [n for n in sync_config.syncs if only in (None, n)]
    with httpx.Client() as http, Progress(transient=True, disable=dry_run) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        engine = SyncEngine(sync_config, mapping, database, store, http, progress=progress)
        if loop:
            if metrics_port is not None:
                _serve_metrics(metrics_host, metrics_port)
            SyncLoop(engine, names, dry_run=dry_run, on_report=lambda r: _print_report(r, dry_run)).run_forever()
            return
        failed = False
        for name in names:  # definition order: items before the stock that refers to them
            try:
                report = engine.run(name, dry_run=dry_run)
            except BridgeheadError as exc:  # the state store itself failed: say so, run the next sync
                click.echo(f"bridgehead: sync {name}: {exc}", err=True)
                failed = True
                continue
            _print_report(report, dry_run)
            failed |= report.status in ("failed", "partially_failed")
    if failed:
        sys.exit(1)


def _serve_metrics(host: str, port: int) -> Any:
    """Serve ``/metrics`` from a daemon thread; the server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        _fail(f"cannot serve metrics on {host}:{port}: {exc.strerror}")
    click.echo(f"metrics: http://{host}:{port}/metrics")
    return server


def _print_report(report: Any, dry_run: bool) -> None:
    planned = ", ".join(f"{report.planned[o]} {o}s" for o in ("create", "update", "delete"))
    done = ", ".join(f"{report.done[o]} {o}s" for o in ("create", "update", "delete"))
    if dry_run:
        click.echo(f"{report.sync}: would send {planned} (plus {report.pending_before} waiting from earlier runs)")
        for sample in report.samples:
            diff = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sample["diff"].items())
            rounded = "; ".join(f"{k} {r['from']} -> {r['to']} ({r['rule']})" for k, r in sample["rounded"].items())
            what = diff or "no field the shop sees changes"
            click.echo(
                f"    {sample['op']:6} {sample['key']}  {what}{'  rounded: ' + rounded if rounded else ''}"[:240]
            )
        return
    tail = f", {report.failed} failed, {report.dead_lettered} dead-lettered" if report.failed else ""
    tail += f", {report.skipped} skipped" if report.skipped else ""
    tail += f", {report.deferred} waiting on another sync" if report.deferred else ""
    extra = f", {report.conflicts} conflicts" if report.conflicts else ""
    extra += f", {report.rounded} values rounded" if report.rounded else ""
    if report.status == "awaiting_approval":
        click.echo(f"{report.sync}: run {report.run_id} awaits approval: planned {planned} ({report.error})")
        click.echo(f"    see `bridgehead sync approvals`, then `sync approve {report.run_id}` or `sync reject`")
        return
    line = f"{report.sync}: run {report.run_id} {report.status}: planned {planned}; done {done}{tail}{extra}"
    click.echo(line + (f" ({report.error})" if report.error else ""))


@sync_group.command("status")
@_config
@_state
def status(config: str | None, state_url: str | None) -> None:
    """Each sync: paused?, last run, records waiting, dead letters, remote records known; then destinations
    paused by a spent quota (Xero's day limit), API calls and bytes per account per day, and active alerts."""
    from sync.alerts import list_active
    from sync.cli_xero import grant_lines, grant_rows

    _, sync_config = _load(config)
    store = _store(sync_config, state_url)
    oauth = grant_rows(state_url or sync_config.state_url)
    grants = store.grants()  # the OAuth grants above, and any other destination's reported status
    width = max(12, *(len(n) + 2 for n in sync_config.syncs))
    click.echo(f"{'sync':<{width}}{'state':<14}{'last run':<36}{'waiting':>8}{'dlq':>6}{'mapped':>8}")
    holds = {d: store.destination_hold(d) for d in sync_config.destinations}
    for name, spec in sync_config.syncs.items():
        last = store.runs(name, limit=1)
        when = f"#{last[0]['id']} {last[0]['status']} {last[0]['started_at']:%Y-%m-%d %H:%M}" if last else "never"
        held = store.awaiting_approval(name)
        quota = holds.get(spec.destination)
        state = (
            "paused" if store.is_paused(name)
            else f"held #{held}" if held
            else f"quota {quota[0]:%H:%M}Z" if quota
            else "active"
        )  # fmt: skip
        if grants.get(spec.destination, {}).get("status") == "reconnect_needed":
            state = "reconnect"  # the destination's grant was refused: nothing goes until a person reconnects
        click.echo(f"{name:<{width}}{state:<14}{when:<36}{store.pending(name):>8}{store.dlq_count(name):>6}"
                   f"{store.id_count(name):>8}")  # fmt: skip
    # A Xero grant that was refused stops its syncs: say so here, in plain words, with the fix.
    for line in grant_lines(oauth):
        click.echo(line)
    for destination, hold in holds.items():
        if hold is not None:
            until, reason = hold
            click.echo(f"destination {destination}: paused until {until:%Y-%m-%d %H:%M} UTC ({reason})")
    usage = store.usage()
    if usage:
        click.echo("API usage per account per UTC day (Xero meters egress on paid tiers):")
        click.echo(f"  {'account':<48}{'day':<12}{'calls':>7}{'bytes in':>12}{'bytes out':>12}")
        for row in usage:
            click.echo(f"  {row['account']:<48}{row['day']:<12}{row['calls']:>7}{row['bytes_in']:>12,}"
                       f"{row['bytes_out']:>12,}")  # fmt: skip
    alerts = list_active(store)
    click.echo(f"{len(alerts)} active alert(s)" + (":" if alerts else ""))
    for a in alerts:
        click.echo(f"  {a.kind:<18}{a.subject:<12}since {a.since:%Y-%m-%d %H:%M:%S}  {a.message}"[:240])


@sync_group.command("history")
@_config
@_state
@click.option("--sync", "name", default=None)
@click.option("--limit", default=20, show_default=True)
def history(config: str | None, state_url: str | None, name: str | None, limit: int) -> None:
    """Past runs, newest first: planned and done counts, failures, conflicts, and the run's error."""
    _, sync_config = _load(config)
    store = _store(sync_config, state_url)
    waiting = {a["run_id"]: a["reason"] for a in store.approvals(name, waiting=True)}
    for r in store.runs(name, limit):
        planned = f"{r['planned_creates']}/{r['planned_updates']}/{r['planned_deletes']}"
        done = f"{r['done_creates']}/{r['done_updates']}/{r['done_deletes']}"
        counts = (
            f"planned c/u/d {planned:<12} done {done:<12} failed {r['failed']} dlq {r['dead_lettered']} "
            f"conflicts {r['conflicts']}"
        )
        click.echo(f"#{r['id']:<5}{r['sync']:<12}{r['status']:<18}{r['started_at']:%Y-%m-%d %H:%M:%S}  {counts}")
        if r["error"]:
            click.echo(f"       error: {r['error']}")
        elif r["id"] in waiting:
            click.echo(f"       waiting for approval: {waiting[r['id']]}")


def _key(text: str | None) -> str | None:
    """A legacy key as typed (``I0001``, ``I0001,W01`` or the stored JSON) -> the stored form."""
    from sync.changes.base import encode_key

    if text is None:
        return None
    return text if text.startswith("[") else encode_key([part.strip() for part in text.split(",")])


_filters = [
    click.option("--sync", "name", default=None, help="Only this sync."),
    click.option("--run", "run_id", default=None, type=int, help="Only this run (see `sync history`)."),
    click.option("--key", default=None, help="Only this legacy key: I0001, I0001,W01 (composite) or JSON."),
    click.option("--limit", default=100, show_default=True),
]


def _with_filters(command: Any) -> Any:
    for option in reversed(_filters):
        command = option(command)
    return command


@sync_group.command("errors")
@_config
@_state
@_with_filters
def errors(config: str | None, state_url: str | None, name: str | None, run_id: int | None, key: str | None,
           limit: int) -> None:  # fmt: skip
    """Per-record errors (what the shop refused, what failed to send), oldest first."""
    _, sync_config = _load(config)
    found = _store(sync_config, state_url).errors(name, run_id=run_id, key=_key(key), limit=limit)
    for e in found:
        click.echo(f"run #{e['run_id']:<5}{e['sync']:<12}{e['key']:<28}{e['at']:%Y-%m-%d %H:%M:%S}  {e['error']}")
    click.echo(f"{len(found)} error(s)")


@sync_group.command("conflicts")
@_config
@_state
@_with_filters
def conflicts(config: str | None, state_url: str | None, name: str | None, run_id: int | None, key: str | None,
              limit: int) -> None:  # fmt: skip
    """Fields both sides changed (``owner: newest``), the two values and which one won."""
    _, sync_config = _load(config)
    found = _store(sync_config, state_url).conflicts(name, run_id=run_id, key=_key(key), limit=limit)
    for c in found:
        click.echo(
            f"run #{c['run_id']:<5}{c['sync']:<12}{c['key']:<28}{c['field']:<14}legacy {c['legacy_value']}  "
            f"shop {c['remote_value']}  -> {c['winner']} wins"
        )
    click.echo(f"{len(found)} conflict(s)")


@sync_group.command("show")
@_config
@_state
@click.argument("name")
@click.argument("key")
def show(config: str | None, state_url: str | None, name: str, key: str) -> None:
    """One record: its remote id, the values last sent, and what was rounded on the way."""
    import msgspec

    _, sync_config = _load(config)
    encoded = _key(key)
    assert encoded is not None
    entry = _store(sync_config, state_url).id_entries(name, [encoded]).get(encoded)
    if entry is None:
        _fail(f"{name}: no record {encoded} has reached the destination")
    click.echo(f"{name} {encoded} -> {entry.remote_id}")
    click.echo(f"  sent:    {msgspec.json.encode(entry.sent).decode()}")
    for field, r in (entry.extra.get("rounded") or {}).items():
        click.echo(f"  rounded: {field} {r['from']} -> {r['to']} ({r['rule']})")


def _decide(config: str | None, state_url: str | None, run_id: int, by: str | None, approve: bool) -> None:
    import getpass

    import httpx

    from legacy_adapters.database import Database
    from sync.engine import SyncEngine
    from sync.state.approvals import NotAwaitingApproval

    who = by or getpass.getuser()
    mapping, sync_config = _load(config)
    store = _store(sync_config, state_url)
    database = Database(mapping.database)
    with httpx.Client() as http:
        engine = SyncEngine(sync_config, mapping, database, store, http)
        try:
            report = engine.approve(run_id, who) if approve else engine.reject(run_id, who)
        except NotAwaitingApproval as exc:
            _fail(str(exc))
        except KeyError as exc:
            _fail(f"run {run_id} belongs to a sync the mapping no longer defines: {exc}")
        except BridgeheadError as exc:
            _fail(f"run {run_id}: {exc}")
        finally:
            database.dispose()
    click.echo(f"run {run_id} {'approved' if approve else 'rejected'} by {who}")
    _print_report(report, False)
    if report.status == "failed":
        sys.exit(1)


_by = click.option("--by", default=None, help="Who decides (recorded; default: the OS user).")


@sync_group.command("approve")
@_config
@_state
@click.argument("run_id", type=int)
@_by
def approve(config: str | None, state_url: str | None, run_id: int, by: str | None) -> None:
    """Send a run that waits for approval (see `sync approvals`)."""
    _decide(config, state_url, run_id, by, approve=True)


@sync_group.command("reject")
@_config
@_state
@click.argument("run_id", type=int)
@_by
def reject(config: str | None, state_url: str | None, run_id: int, by: str | None) -> None:
    """Cancel a run that waits for approval and drop its plan; the next run plans from the source again."""
    _decide(config, state_url, run_id, by, approve=False)


@sync_group.command("approvals")
@_config
@_state
@click.option("--sync", "name", default=None)
@click.option("--all", "everything", is_flag=True, help="Decided ones too, with who decided.")
def approvals(config: str | None, state_url: str | None, name: str | None, everything: bool) -> None:
    """Runs waiting for a human: why, and the diff they would send."""
    _, sync_config = _load(config)
    found = _store(sync_config, state_url).approvals(name, waiting=not everything)
    for a in found:
        plan = a["plan"]
        counts = ", ".join(f"{plan['planned'].get(o, 0)} {o}s" for o in ("create", "update", "delete"))
        decided = f"  {a['decision']} by {a['decided_by']} {a['decided_at']:%Y-%m-%d %H:%M}" if a["decision"] else ""
        click.echo(f"run #{a['run_id']} {a['sync']}: {counts} of {plan['remote_records']} remote records{decided}")
        click.echo(f"    why: {a['reason']}")
        for sample in plan["samples"]:
            diff = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sample["diff"].items())
            click.echo(f"    {sample['op']:6} {sample['key']}  {diff}"[:240])
    click.echo(f"{len(found)} run(s){'' if everything else ' waiting for approval'}")


@sync_group.group("dlq")
def dlq() -> None:
    """The dead-letter queue: records that failed past their retry budget."""


@dlq.command("list")
@_config
@_state
@click.option("--sync", "name", default=None)
def dlq_list(config: str | None, state_url: str | None, name: str | None) -> None:
    _, sync_config = _load(config)
    letters = _store(sync_config, state_url).dlq(name)
    for d in letters:
        click.echo(f"#{d['id']:<5}{d['sync']:<12}{d['key']:<24}{d['op']:<8}attempts {d['attempts']}  {d['last_error']}")
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("replay")
@_config
@_state
@click.option("--sync", "name", default=None)
@click.option("--id", "ids", multiple=True, type=int, help="Replay only these (repeatable); all by default.")
def dlq_replay(config: str | None, state_url: str | None, name: str | None, ids: tuple[int, ...]) -> None:
    """Put dead letters back in the outbox with a fresh budget; the next run sends them."""
    _, sync_config = _load(config)
    count = _store(sync_config, state_url).replay(name, list(ids) or None)
    click.echo(f"{count} record(s) queued again; run `bridgehead sync run` to send them")


@sync_group.command("pause")
@_config
@_state
@click.argument("name")
def pause(config: str | None, state_url: str | None, name: str) -> None:
    """Stop a sync (a running one stops after its current batch)."""
    _set_paused(config, state_url, name, True)


@sync_group.command("resume")
@_config
@_state
@click.argument("name")
def resume(config: str | None, state_url: str | None, name: str) -> None:
    _set_paused(config, state_url, name, False)


def _set_paused(config: str | None, state_url: str | None, name: str, paused: bool) -> None:
    _, sync_config = _load(config)
    if name not in sync_config.syncs:
        _fail(f"unknown sync {name!r} (known: {', '.join(sync_config.syncs)})")
    _store(sync_config, state_url).set_paused(name, paused)
    click.echo(f"{name}: {'paused' if paused else 'resumed'}")


@click.command("sandbox")
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--token", default="sandbox-token", show_default=True)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="Share of requests that fail (429, 5xx, INTERNAL_SERVER_ERROR, read timeouts, dropped connections).",
)
@click.option(
    "--hang-s",
    default=15.0,
    show_default=True,
    type=float,
    help="How long an injected timeout keeps the client waiting (above its timeout_s: a real read timeout).",
)
def sandbox_command(port: int, token: str, fault_rate: float, hang_s: float) -> None:
    """Serve a fake Shopify (GraphQL Admin API 2026-04) and a fake Xero on 127.0.0.1 for the demo and tests."""
    import uvicorn

    from sync.sandbox import Sandboxes, make_fake, make_xero

    fake = make_fake(token, fault_rate)
    fake.hang_s = hang_s
    xero = make_xero(fault_rate)
    base = f"http://127.0.0.1:{port}"
    click.echo(f"Fake Shopify: {base}/admin/api/{fake.api_version}/graphql.json")
    click.echo(f"Access token: {token}   (header X-Shopify-Access-Token)")
    click.echo(f"Fake Xero:    {base}/api.xro/2.0/  (POST {base}/connect/token, GET {base}/connections)")
    click.echo(f"Client id:    {xero.client_id}   (client_credentials grant; tenant {xero.tenant_id})")
    click.echo("In another terminal:  bridgehead sync run --dry-run   then   bridgehead sync run")
    uvicorn.run(
        Sandboxes(fake, xero).asgi, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        lifespan="off", interface="asgi3",
    )  # fmt: skip


@click.command("runbook")
@_config
@_state
@click.option("-o", "--out", "out_dir", default="runbook", show_default=True, help="Folder the pages are written to.")
@click.option("--sync", "only", default=None, help="Only this sync's page.")
@click.option("--no-state", is_flag=True, help="Leave out the state store's section (pages from the mapping alone).")
def runbook_command(config: str | None, state_url: str | None, out_dir: str, only: str | None, no_state: bool) -> None:
    """Write one Markdown runbook page per sync (<sync>.md): what it syncs, how to pause, replay, approve,
    roll back and reconnect it, and where to look when it fails."""
    from sync.runbook import write_runbooks

    mapping, sync_config = _load(config)
    path = config or _default_config()
    if only is not None:
        if only not in sync_config.syncs:
            _fail(f"unknown sync {only!r} (known: {', '.join(sync_config.syncs)})")
        sync_config = msgspec.structs.replace(sync_config, syncs={only: sync_config.syncs[only]})
    store = None
    if not no_state:
        try:
            store = _store(sync_config, state_url)
        except Exception as exc:  # an unreachable store still leaves the mapping's pages worth writing
            click.echo(f"bridgehead: state store not read ({type(exc).__name__}); pages without it", err=True)
    try:
        written = write_runbooks(mapping, sync_config, store, out_dir, mapping_path=path)
    except OSError as exc:
        _fail(f"cannot write {out_dir}: {exc.strerror}")
    for page in written:
        click.echo(str(page))
