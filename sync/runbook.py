"""``bridgehead runbook``: one Markdown page per sync, for whoever is on call at 2 a.m.

Made from the mapping (what is synced where, field by field, on what schedule, with which
credentials) and from the state store when it can be read (paused?, last run, dead
letters, active alerts). Every command a page tells the reader to run is a real
``bridgehead`` command (a test walks them through click's command tree), and
credentials appear by environment-variable name only: the page is safe to print, mail
and commit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sync.alerts.model import list_active
from sync.metrics import SYNC_METRICS

if TYPE_CHECKING:
    from legacy_adapters.mapping.model import Mapping
    from sync.config import FieldMap, SyncConfig, SyncSpec
    from sync.state.base import StateStore

__all__ = (
    "CONSOLE_PAGES",
    "LOG_EVENTS",
    "SECTIONS",
    "env_references",
    "render_runbook",
    "runbook_filename",
    "write_runbooks",
)

SECTIONS = (
    "What it syncs",
    "Fields",
    "Schedule and latency target",
    "Credentials",
    "Pause and resume",
    "Replay dead letters",
    "Approve or reject a held run",
    "Roll back a bad run",
    "Reconnect",
    "When it fails",
    "Alerts",
    "State when this page was made",
)
"""Every page has these ``##`` sections, in this order."""

CONSOLE_PAGES = {
    "overview": "/admin#/syncs",
    "sync": "/admin#/syncs",
    "run": "/admin#/runs/{run_id}",
    "dlq": "/admin#/dlq",
    "approvals": "/admin#/approvals",
    "conflicts": "/admin#/conflicts",
    "audit": "/admin#/audit",
    "alerts": "/admin#/syncs",
    "runbook": "/admin#/runbook/{sync}",
}
"""The operator console's pages (scope ``admin``; ``gateway/console/static``) a runbook points to."""

LOG_EVENTS = (
    ("sync run finished", "sync, run, status, done"),
    ("sync run failed", "sync, run, exception (the traceback of what went wrong)"),
    ("sync run abandoned", "sync, run (its worker died; the next run delivers its records)"),
    ("sync run awaits approval", "sync, run, reason"),
    ("sync planning lease lost", "sync, run, error (another worker took over planning)"),
    ("sync loop round failed", "sync, exception (the state store unreachable, say)"),
    ("sync alert raised / sync alert cleared", "alert, subject, sync, alert_id, message, delivery"),
)
"""JSON log events of the ``bridgehead.sync`` loggers and their fields."""

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OWNERS = {
    "legacy": "legacy: sent whenever the legacy value changes",
    "destination": "destination: sent when the record is created, never overwritten",
    "newest": "newest: the later change wins; clashes recorded (`sync conflicts`)",
}
_KINDS = {"shopify": "Shopify", "xero": "Xero"}
_MODES = {
    "upsert": "creates and updates; a row gone from the source is left alone in the destination",
    "update_only": "updates records that exist; creates nothing",
    "insert_only": "creates new records; later changes are not sent",
    "mirror": "creates, updates, and {on_delete}s the remote record when its source row is gone",
}


def runbook_filename(sync: str) -> str:
    """The page of ``sync`` (the console links to it by this name)."""
    return f"{sync}.md"


def env_references(mapping_path: str | Path) -> dict[str, list[str]]:
    """Dotted path -> the ``${VAR}`` names used there, read from the mapping file as written (not expanded)."""
    raw = yaml.safe_load(Path(mapping_path).read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, str):
            names = [m.group(1) for m in _ENV.finditer(value)]
            if names:
                found[path] = names

    walk(raw, "")
    return found


def write_runbooks(
    mapping: Mapping,
    config: SyncConfig,
    store: StateStore | None,
    out_dir: str | Path,
    *,
    mapping_path: str | Path | None = None,
) -> list[Path]:
    """Write every sync's page into ``out_dir`` (created if missing); the files written."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in config.syncs:
        page = folder / runbook_filename(name)
        page.write_text(render_runbook(mapping, config, store, name, mapping_path=mapping_path), encoding="utf-8")
        written.append(page)
    return written


def render_runbook(
    mapping: Mapping,
    config: SyncConfig,
    store: StateStore | None,
    sync: str,
    *,
    mapping_path: str | Path | None = None,
) -> str:
    """The Markdown runbook of ``sync``.

    Args:
        mapping: the loaded mapping (resources, for legacy tables and columns).
        config: its ``sync`` section (``load_sync_config``).
        store: the state store, for the page's last section; None leaves it out.
        sync: the sync's name.
        mapping_path: the mapping file: commands name it with ``-c``, and credentials are
            listed from the ``${VAR}`` names written in it.

    Raises:
        KeyError: ``sync`` is not defined.
    """
    spec = config.syncs[sync]
    page = _Page(mapping, config, store, sync, spec, mapping_path)
    return "\n".join(page.lines()) + "\n"


class _Page:
    def __init__(
        self,
        mapping: Mapping,
        config: SyncConfig,
        store: StateStore | None,
        sync: str,
        spec: SyncSpec,
        mapping_path: str | Path | None,
    ) -> None:
        self.mapping, self.config, self.store, self.sync, self.spec = mapping, config, store, sync, spec
        self.path = mapping_path
        self.c = f" -c {mapping_path}" if mapping_path else ""
        self.version = spec.version or next(iter(mapping.versions))
        self.resource = mapping.versions[self.version].resources[spec.resource]
        self.destination = config.destinations[spec.destination]

    def cmd(self, text: str) -> str:
        """A ``bridgehead`` command line with this mapping's ``-c``."""
        return f"bridgehead {text}{self.c}"

    def page(self, key: str, **values: Any) -> str:
        return CONSOLE_PAGES[key].format(sync=self.sync, **values)

    def lines(self) -> Iterator[str]:
        made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        source = f" from `{self.path}`" if self.path else ""
        yield f"# Runbook: {self.sync}"
        yield ""
        yield (f"Generated by `bridgehead runbook`{source} on {made}. Regenerate it after changing the mapping; "
               "do not edit it by hand.")  # fmt: skip
        sections = (self.what, self.fields, self.schedule, self.credentials, self.pause, self.replay, self.approve,
                    self.rollback, self.reconnect, self.failing, self.alerts, self.state)  # fmt: skip
        for title, section in zip(SECTIONS, sections, strict=True):
            yield ""
            yield f"## {title}"
            yield ""
            yield from section()

    # -- the mapping -----------------------------------------------------------------------

    def what(self) -> Iterator[str]:
        spec, dest = self.spec, self.destination
        mode = _MODES[spec.mode].format(on_delete=spec.on_delete)
        api = f", API version {dest.api_version}" if getattr(dest, "api_version", None) else ""
        where = f", {dest.url}" if getattr(dest, "url", None) else ""
        yield (f"One direction: **legacy `{spec.resource}` → {_KINDS.get(dest.kind, dest.kind)} `{spec.object}`** "
               f"(destination `{spec.destination}`{where}{api}).")  # fmt: skip
        yield ""
        where = f" (rows where `{self.resource.where}`)" if self.resource.where else ""
        table = self.resource.table
        yield f"- Source: API resource `{spec.resource}` of version `{self.version}`, legacy table `{table}`{where}."
        yield f"- Mode `{spec.mode}`: {mode}."
        detector = spec.detector
        seen = {"snapshot_hash": "reads every row and compares fingerprints (sees deletes)",
                "high_water": f"reads rows whose `{detector.column}` moved (no deletes)",
                "change_tracking": "reads SQL Server Change Tracking (sees deletes)"}[detector.kind]  # fmt: skip
        yield f"- Change detection `{detector.kind}`: {seen}."
        parents = sorted({f.ref.sync for f in spec.fields.values() if f.ref is not None})
        if parents:
            yield (f"- Depends on sync {', '.join(f'`{p}`' for p in parents)}: a record whose parent has not "
                   "reached the destination waits, or is skipped with its reason.")  # fmt: skip
        children = [n for n, s in self.config.syncs.items() if any(f.ref and f.ref.sync == self.sync
                                                                  for f in s.fields.values())]  # fmt: skip
        if children:
            yield f"- Sync {', '.join(f'`{c}`' for c in children)} depend(s) on this one."
        yield ("- Nothing flows back: the destination's own changes reach the legacy database only through "
               "inbound webhooks, where configured.")  # fmt: skip

    def fields(self) -> Iterator[str]:
        yield "| destination field | made from | legacy column(s) | owner |"
        yield "|---|---|---|---|"
        for target, fmap in self.spec.fields.items():
            source, columns = self._source(fmap)
            yield f"| `{target}` | {source} | {columns or '-'} | {_OWNERS[fmap.owner]} |"

    def _source(self, fmap: FieldMap) -> tuple[str, str]:
        names: list[str] = []
        if fmap.ref is not None:
            what = "the remote id" if fmap.ref.attr == "id" else f"`{fmap.ref.attr}`"
            text = f"{what} of sync `{fmap.ref.sync}`'s record for `{fmap.field}`"
            names = [fmap.field or ""]
        elif fmap.template is not None:
            text = f"template `{fmap.template}`"
            names = re.findall(r"\{(\w+)", fmap.template)
        elif fmap.expression is not None:
            text = f"expression `{fmap.expression}`"
            names = re.findall(r"[A-Za-z_]\w*", fmap.expression)
        elif fmap.field is not None:
            text = f"field `{fmap.field}`" + (f" mapped by {fmap.lookup}" if fmap.lookup else "")
            names = [fmap.field]
        else:
            text = f"constant `{fmap.value!r}`"
        if fmap.rounding:
            text += f", rounded `{fmap.rounding}`"
        if fmap.currency or fmap.currency_decimals is not None:
            text += f", money ({fmap.currency or ''} {fmap.currency_decimals or ''})".replace(" )", ")")
        fields = self.resource.fields
        columns = ", ".join(f"`{fields[n].column}`" for n in dict.fromkeys(names) if n in fields)
        return text, columns

    def schedule(self) -> Iterator[str]:
        spec = self.spec
        target = "none set (no `lag` alert)"
        if spec.latency_target_s is not None:
            target = f"**{spec.latency_target_s:g} s**: the `lag` alert is raised when the last successful run "
            target += "started longer ago"
        yield f"- Runs every **{spec.interval_s:g} s** under `{self.cmd('sync run --loop')}` (one thread per sync)."
        yield f"- Latency target: {target}."
        yield f"- Batches of {spec.batch_size}; each request retried {spec.request_attempts} times with backoff."
        yield (f"- A record the destination refuses {spec.max_attempts} times goes to the dead-letter queue; "
               "outages never dead-letter, they back off and catch up.")  # fmt: skip
        rules = spec.approval
        gate = []
        if rules.max_change_share is not None:
            gate.append(f"changing or deleting more than {rules.max_change_share:.0%} of the remote records "
                        f"(with at least {rules.min_remote_records})")  # fmt: skip
        if rules.max_count_deviation is not None:
            gate.append(f"reading {rules.max_count_deviation:.0%} more or fewer rows than recent runs")
        if rules.after_mapping_change:
            gate.append("being the first run after the sync's definition changed")
        yield f"- A run waits for approval when {'; or '.join(gate)}." if gate else "- No approval gate."
        yield f"- One run now: `{self.cmd(f'sync run --only {self.sync}')}`; a preview: "
        yield f"  `{self.cmd(f'sync run --only {self.sync} --dry-run')}`."

    def credentials(self) -> Iterator[str]:
        refs = env_references(self.path) if self.path else {}
        wanted = [("database.url", "the legacy database"),
                  (f"sync.destinations.{self.spec.destination}.", f"destination `{self.spec.destination}`"),
                  ("state.url", "the state store"), ("sync.state_url", "the state store"),
                  ("sync.alert.", "alert channels"),
                  ("auth.", "the gateway's token checks (console, API)")]  # fmt: skip
        rows: list[tuple[str, str, str]] = []
        for prefix, what in wanted:
            for path, names in refs.items():
                if path == prefix or (prefix.endswith(".") and path.startswith(prefix)):
                    rows.extend((name, what, path) for name in names)
        if not rows:
            yield "The mapping names no environment variables: its settings are written in the file itself."
            return
        yield "Environment variables (names only; values live in your secret store, never in this page):"
        yield ""
        yield "| variable | for | mapping key |"
        yield "|---|---|---|"
        for name, what, path in dict.fromkeys(rows):
            yield f"| `{name}` | {what} | `{path}` |"

    # -- what to do ------------------------------------------------------------------------

    def pause(self) -> Iterator[str]:
        yield f"- Pause: `{self.cmd(f'sync pause {self.sync}')}`. A running run stops after its current batch;"
        yield '  what it planned waits in the outbox. Later runs end `cancelled` ("paused").'
        yield f"- Resume: `{self.cmd(f'sync resume {self.sync}')}`; the next scheduled run sends what waited."
        yield f"- In the console: {self.page('sync')}, the sync's Pause / Resume."
        yield f"- Check with `{self.cmd('sync status')}`."

    def replay(self) -> Iterator[str]:
        yield f"1. See what failed and why: `{self.cmd(f'sync dlq list --sync {self.sync}')}` and"
        yield f"   `{self.cmd(f'sync errors --sync {self.sync}')}` (console: {self.page('dlq')})."
        yield "2. Fix the data in the legacy system (the destination's answer says what it refused)."
        yield (f"3. Replay: `{self.cmd(f'sync dlq replay --sync {self.sync}')}` (or `--id N` for one record); "
               "a replay sends the row as it is now.")  # fmt: skip
        yield f"4. Send now instead of at the next scheduled run: `{self.cmd(f'sync run --only {self.sync}')}`."
        yield "A changed row is planned again by itself; an unchanged dead letter waits for a replay."

    def approve(self) -> Iterator[str]:
        yield f"1. Why it waits, and its planned diff: `{self.cmd(f'sync approvals --sync {self.sync}')}`"
        yield f"   (console: {self.page('approvals')})."
        yield f"2. Send it: `{self.cmd('sync approve RUN --by NAME')}`, or"
        yield (f"   cancel it and drop its plan: `{self.cmd('sync reject RUN --by NAME')}` (the next run plans "
               "again from the source and asks again if it still looks wrong).")  # fmt: skip
        yield f"3. Decisions are kept with who made them: `{self.cmd(f'sync approvals --sync {self.sync} --all')}`."

    def rollback(self) -> Iterator[str]:
        legacy = [t for t, f in self.spec.fields.items() if f.owner != "destination"]
        yield "The legacy database is the source of truth: a bad run is undone by putting the source right and"
        yield "letting the sync send it again. There is no automatic undo of what the destination accepted."
        yield ""
        yield f"1. Stop further damage: `{self.cmd(f'sync pause {self.sync}')}`."
        yield f"2. Find the run and what it changed: `{self.cmd(f'sync history --sync {self.sync}')}`, then"
        yield f"   `{self.cmd(f'sync errors --sync {self.sync} --run N')}` and, per record,"
        run_page = self.page("run", run_id="N")
        yield f"   `{self.cmd(f'sync show {self.sync} KEY')}` (the values last sent; console: {run_page})."
        yield ("3. Correct (or restore from backup) the legacy rows. Fields the sync sends on every change "
               f"({', '.join(f'`{f}`' for f in legacy) or 'none'}) go out again as they are now.")  # fmt: skip
        if self.spec.mode == "mirror":
            yield (f"   Records the run {self.spec.on_delete}d come back when their source rows are back "
                   "(a later run creates them again).")  # fmt: skip
        owned = [t for t, f in self.spec.fields.items() if f.owner == "destination"]
        if owned:
            listed = ", ".join(f"`{f}`" for f in owned)
            yield f"   Fields the destination owns ({listed}) are never rewritten: fix them there."
        yield f"4. Preview, then resume: `{self.cmd(f'sync run --only {self.sync} --dry-run')}`,"
        yield f"   `{self.cmd(f'sync resume {self.sync}')}`, `{self.cmd(f'sync run --only {self.sync}')}`."
        yield ("5. Runs that would change much of the destination wait for approval: reject the bad one "
               "instead of approving it (above).")  # fmt: skip

    def _env(self, key: str) -> str:
        """The variable(s) behind destination setting ``key``, or the mapping key when it is written in the file."""
        refs = env_references(self.path) if self.path else {}
        names = refs.get(f"sync.destinations.{self.spec.destination}.{key}", [])
        return ", ".join(f"`{n}`" for n in names) or f"`sync.destinations.{self.spec.destination}.{key}` in the mapping"

    def reconnect(self) -> Iterator[str]:
        dest, name = self.destination, self.spec.destination
        after = self._threshold("after_failures")
        if dest.kind == "shopify":
            yield (f"Shopify answers 401 when the Admin API access token is revoked or rotated: every run of "
                   f"this sync then ends `failed` and the `failing_runs` alert is raised after {after} "
                   "runs.")  # fmt: skip
            yield ""
            yield "1. In the Shopify admin (Settings → Apps and sales channels → Develop apps), reinstall the app or"
            yield "   create a new Admin API access token with the same scopes (products, inventory, customers)."
            yield f"2. Put it in {self._env('token')} where the sync runs, and restart `{self.cmd('sync run --loop')}`."
            yield f"3. Check: `{self.cmd(f'sync run --only {self.sync}')}` succeeds; the alert clears by itself."
        elif dest.kind == "xero" and getattr(dest, "auth", None) == "oauth":
            yield ("Xero refuses a refresh token that went unused for 60 days or whose user disconnected the app: "
                   "the grant is marked `reconnect`, the `reconnect_needed` alert is raised, and nothing "
                   "is sent.")  # fmt: skip
            yield ""
            yield f"1. `{self.cmd(f'xero connect --destination {name}')}` and consent in the browser as a user of"
            yield "   the organisation (the grant is stored sealed in the state store)."
            yield f"2. Check: `{self.cmd('xero status')}`; the alert clears at the next evaluation."
            yield f"3. Send what waited: `{self.cmd(f'sync run --only {self.sync}')}`."
        elif dest.kind == "xero":
            secret = self._env("client_secret") if getattr(dest, "auth", None) == "client_credentials" else (
                "`BRIDGEHEAD_XERO_ACCESS_TOKEN`")  # fmt: skip
            yield (f"With `auth: {getattr(dest, 'auth', '')}` Xero answers 401 once the credentials are revoked: runs "
                   f"end `failed` and `failing_runs` is raised after {after} runs.")  # fmt: skip
            yield ""
            yield f"1. Create new credentials in the Xero developer portal and put them in {secret}."
            yield f"2. Restart `{self.cmd('sync run --loop')}`;"
            yield f"   check with `{self.cmd(f'sync run --only {self.sync}')}`."
        else:
            yield f"1. Renew destination `{name}`'s credentials ({dest.kind});"
            yield f"   restart `{self.cmd('sync run --loop')}`."
            yield f"2. Check with `{self.cmd(f'sync run --only {self.sync}')}`."
        yield ""
        yield (f"Whatever the destination, the `reconnect_needed` alert and `{self.cmd('sync status')}` (state "
               "`reconnect`) say when a stored grant was refused.")  # fmt: skip

    def failing(self) -> Iterator[str]:
        yield "Console (scope `admin`):"
        yield ""
        for key, what in (("sync", "each sync's state, last runs with counts, lag, next run, pause/resume, "
                           "and the active alerts"),
                          ("run", "one run's records, each with the request sent and the answer"),
                          ("dlq", "dead letters with their reasons; replay or discard"),
                          ("conflicts", "`owner: newest` clashes"), ("approvals", "held runs and their diff"),
                          ("runbook", "this page"),
                          ("audit", "the gateway's writes")):  # fmt: skip
            yield f"- `{self.page(key, run_id='{run_id}')}`: {what}"
        yield ""
        yield f"Command line: `{self.cmd('sync status')}`, `{self.cmd(f'sync history --sync {self.sync}')}`,"
        yield f"`{self.cmd(f'sync errors --sync {self.sync}')}`, `{self.cmd(f'sync conflicts --sync {self.sync}')}`."
        yield ""
        yield (f"Metrics (`{self.cmd('sync run --loop --metrics-port 9464')}` serves them at "
               f"`http://HOST:9464/metrics`; label `sync=\"{self.sync}\"`):")  # fmt: skip
        yield ""
        for metric, what in SYNC_METRICS:
            yield f"- `{metric}`: {what}"
        yield ""
        yield "Logs (JSON lines, logger `bridgehead.sync`; filter on `sync`):"
        yield ""
        for event, fields in LOG_EVENTS:
            yield f"- `{event}`: {fields}"

    def _threshold(self, name: str) -> Any:
        from sync.alerts.config import AlertConfig

        own = getattr(self.spec.alert, name, None) if self.spec.alert else None
        return own if own is not None else getattr(self.config.alert or AlertConfig(), name)

    def alerts(self) -> Iterator[str]:
        channels = []
        alert = self.config.alert
        if alert and alert.webhook_url:
            channels.append("a signed webhook")
        if alert and alert.email and alert.email.enabled:
            channels.append("e-mail")
        if alert and alert.command:
            channels.append("a command")
        refs = env_references(self.path) if self.path else {}
        switchable = [n for p, ns in refs.items() if p in ("sync.alert.webhook_url", "sync.alert.email.host")
                      for n in ns]  # fmt: skip
        where = " and ".join(channels) or "no channel where this page was made"
        yield (f"Each is raised once when it starts and cleared once when it ends, through {where}; "
               f"`{self.cmd('sync status')}` and the console ({self.page('alerts')}) list them "
               "either way.")  # fmt: skip
        if switchable:
            yield f"Channels are switched on by setting {', '.join(f'`{n}`' for n in switchable)}."
        yield ""
        muted = set(self.spec.alert.mute) if self.spec.alert else set()
        deviation = self._threshold("count_deviation")
        rows = [
            ("failing_runs", f"{self._threshold('after_failures')} failing runs in a row",
             "read the run's error (`sync history`); a refused token: Reconnect; the database down: wait, it retries"),
            ("dlq_growth", f"more than {self._threshold('dlq_threshold')} dead letters", "Replay dead letters"),
            ("lag", f"last successful run started more than {self.spec.latency_target_s:g} s ago"
             if self.spec.latency_target_s is not None else "off (no latency target)",
             "is the loop running? paused? a held run? failing runs?"),
            ("count_deviation", f"a full pass reading {deviation:.0%} more or fewer rows than recent runs"
             if deviation is not None else "off", "check the legacy table and the resource's `where`"),
            ("reconnect_needed", f"destination `{self.spec.destination}` must be reconnected", "Reconnect"),
            ("awaiting_approval", "a run waits for a decision", "Approve or reject a held run"),
        ]  # fmt: skip
        yield "| alert | raised when | what to do |"
        yield "|---|---|---|"
        for kind, when, todo in rows:
            yield f"| `{kind}` | {'muted for this sync' if kind in muted else when} | {todo} |"

    def state(self) -> Iterator[str]:
        if self.store is None:
            yield f"The state store could not be read; see `{self.cmd('sync status')}`."
            return
        store, name = self.store, self.sync
        last = store.runs(name, limit=1)
        held = store.awaiting_approval(name)
        yield f"- Paused: {'yes' if store.is_paused(name) else 'no'}" + (
            f"; run {held} waits for approval" if held else ""
        )
        if last:
            run = last[0]
            yield (f"- Last run: #{run['id']} {run['status']}, started {run['started_at']:%Y-%m-%d %H:%M:%S} UTC"
                   + (f" ({run['error'][:200]})" if run["error"] else ""))  # fmt: skip
        else:
            yield "- Last run: never"
        yield f"- Waiting in the outbox: {store.pending(name)}; dead letters: {store.dlq_count(name)}; "
        yield f"  records in the destination: {store.id_count(name)}"
        mine = [a for a in list_active(store) if a.sync == name or a.destination == self.spec.destination]
        if not mine:
            yield "- Active alerts: none"
        for a in mine:
            yield f"- Active alert `{a.kind}` since {a.since:%Y-%m-%d %H:%M:%S} UTC: {a.message}"
