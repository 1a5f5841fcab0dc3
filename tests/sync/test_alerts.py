"""Alerts: each condition raises once per change and clears on recovery; delivered by webhook and e-mail.

The engine runs the demo syncs against the fake shop (httpx.MockTransport); the alert
webhook is a recorder on the same transport, e-mail goes to a real SMTP server on a
local socket (``smtp_sink.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping
from sync.alerts import AlertConfig, AlertMonitor, EmailConfig, alert_history, list_active
from sync.alerts.delivery import SIGNATURE_HEADER, verify_signature
from sync.config import SyncConfig
from sync.connectors.shopify.fake import FakeShopify
from sync.engine import SyncEngine
from sync.scheduler import SyncLoop
from sync.state.sync_store import SyncStore
from tests.sync.smtp_sink import SmtpSink

HOOK = "http://alerts.example/hook"
SECRET = "alert-signing-secret"


@dataclass
class Hooks:
    """The alert webhook's receiver: checks each signature, answers ``statuses`` first, then 204."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    ids: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        assert verify_signature(SECRET, request.content, request.headers.get(SIGNATURE_HEADER), now=time.time())
        self.ids.append(request.headers["X-Bridgehead-Alert-Id"])
        if self.statuses:
            return httpx.Response(self.statuses.pop(0))
        self.bodies.append(json.loads(request.content))
        return httpx.Response(204)

    def events(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        return [(b["event"], b["kind"], b["subject"]) for b in self.bodies if kind in (None, b["kind"])]


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def alerting(
    sync_mapping: Mapping, sync_config: SyncConfig, store: SyncStore, fake: FakeShopify, smtp: SmtpSink
) -> Iterator[Any]:
    """``make(**alert_settings) -> (engine, hooks)``: the demo engine with webhook and e-mail alerts."""
    hooks = Hooks()
    databases: list[Database] = []

    def route(request: httpx.Request) -> httpx.Response:
        return hooks(request) if str(request.url) == HOOK else fake.handler(request)

    def make(config: SyncConfig | None = None, **settings: Any) -> tuple[SyncEngine, Hooks]:
        email = EmailConfig(host="127.0.0.1", port=smtp.port, security="none", sender="bridgehead@example.com",
                            to=["ops@example.com"])  # fmt: skip
        alert = AlertConfig(webhook_url=HOOK, webhook_secret=SECRET, email=email, **settings)
        config = msgspec.structs.replace(config or sync_config, alert=alert)
        databases.append(database := Database(sync_mapping.database))
        http = httpx.Client(transport=httpx.MockTransport(route))
        return SyncEngine(config, sync_mapping, database, store, http), hooks

    yield make
    for database in databases:
        database.dispose()


def legacy(db: Path, sql: str, *params: Any) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)
    conn.close()


def test_three_failing_runs_raise_one_alert_and_recovery_clears_it(
    alerting: Any, fake: FakeShopify, store: SyncStore, smtp: SmtpSink
) -> None:
    from prometheus_client import REGISTRY

    def failed_runs() -> float:
        return REGISTRY.get_sample_value("bridgehead_sync_runs_total", {"sync": "items", "status": "failed"}) or 0.0

    before = failed_runs()
    engine, hooks = alerting()
    fake.token = "rotated-by-the-merchant"  # every request is refused 401: each run fails
    first, second = engine.run("items"), engine.run("items")
    assert (first.status, second.status) == ("failed", "failed")
    assert hooks.events("failing_runs") == [] and smtp.received == []
    third = engine.run("items")
    assert hooks.events("failing_runs") == [("raised", "failing_runs", "items")]
    raised = hooks.bodies[-1]
    assert raised["details"]["run_id"] == third.run_id and raised["details"]["consecutive_failures"] == 3
    assert raised["runbook"] == "items.md" and "3 failing runs in a row" in raised["message"]
    engine.run("items")
    engine.run("items")
    assert len(hooks.events("failing_runs")) == 1, "one alert per state change, not one per failing run"
    (active,) = [a for a in list_active(store) if a.kind == "failing_runs"]
    assert (active.subject, active.value, active.threshold) == ("items", 5, 3)
    assert failed_runs() - before == 5
    assert REGISTRY.get_sample_value("bridgehead_sync_alert_active", {"kind": "failing_runs", "subject": "items"}) == 1

    fake.token = "sandbox-token"
    assert engine.run("items").status == "succeeded"
    assert hooks.events("failing_runs") == [("raised", "failing_runs", "items"), ("cleared", "failing_runs", "items")]
    assert [a for a in list_active(store) if a.kind == "failing_runs"] == []
    assert engine.run("items").status == "succeeded"
    assert len(hooks.events("failing_runs")) == 2, "a healthy sync stays quiet"

    mails = [m.message for m in smtp.received if "failing_runs" in m.message["Subject"]]
    assert [m["Subject"] for m in mails] == [
        "[bridgehead] RAISED: failing_runs items", "[bridgehead] cleared: failing_runs items"
    ]  # fmt: skip
    assert smtp.received[0].recipients == ["ops@example.com"] and "runbook:  items.md" in mails[0].get_payload()
    events = [e for e in alert_history(store) if e.kind == "failing_runs"]
    assert [(e.event, e.delivery) for e in events] == [("cleared", "webhook ok; email ok"),
                                                       ("raised", "webhook ok; email ok")]  # fmt: skip


def test_several_workers_evaluating_at_once_raise_and_deliver_once(
    shared_store: SyncStore, sync_config: SyncConfig
) -> None:
    delivered: list[dict[str, Any]] = []
    lock = threading.Lock()

    def hook(request: httpx.Request) -> httpx.Response:
        with lock:
            delivered.append(json.loads(request.content))
        return httpx.Response(204)

    config = msgspec.structs.replace(sync_config, alert=AlertConfig(webhook_url=HOOK, webhook_secret=SECRET))
    url = shared_store.db.engine.url.render_as_string(hide_password=False)
    stores = [SyncStore.from_url(url) for _ in range(6)]  # six processes' worth of stores on one database
    monitors = [AlertMonitor(config, s, httpx.Client(transport=httpx.MockTransport(hook))) for s in stores]
    barrier = threading.Barrier(len(monitors))

    def evaluate(monitor: AlertMonitor) -> None:
        barrier.wait()
        monitor.evaluate()

    def all_at_once() -> None:
        threads = [threading.Thread(target=evaluate, args=(m,)) for m in monitors]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    shared_store.set_grant("shop", "reconnect_needed", "refresh token revoked")
    all_at_once()
    shared_store.set_grant("shop", "ok")
    all_at_once()
    for s in stores:
        s.db.dispose()
    assert [(d["event"], d["kind"], d["subject"]) for d in delivered] == [
        ("raised", "reconnect_needed", "shop"), ("cleared", "reconnect_needed", "shop")
    ]  # fmt: skip


def test_a_growing_dead_letter_queue_alerts_once_and_clears_after_replay(
    alerting: Any, writable_db: Path, store: SyncStore
) -> None:
    engine, hooks = alerting(after_failures=99)
    engine.run("customers")
    rows = sqlite3.connect(writable_db).execute(
        "SELECT CUSTNO FROM CUSTMAST WHERE DELFLG = 'N' ORDER BY CUSTNO LIMIT 2").fetchall()  # fmt: skip
    for (custno,) in rows:
        legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE CUSTNO = ?", custno)
    config = engine.config
    spec = msgspec.structs.replace(config.syncs["customers"], max_attempts=1)
    engine.config = msgspec.structs.replace(config, syncs={**config.syncs, "customers": spec},
                                            alert=msgspec.structs.replace(config.alert, dlq_threshold=1))  # fmt: skip
    engine.alerts = AlertMonitor(engine.config, store, engine.http)
    report = engine.run("customers")
    assert report.dead_lettered == 2
    assert hooks.events("dlq_growth") == [("raised", "dlq_growth", "customers")]
    assert hooks.bodies[-1]["value"] == 2 and hooks.bodies[-1]["threshold"] == 1
    engine.run("customers")
    assert len(hooks.events("dlq_growth")) == 1
    for (custno,) in rows:  # the data is fixed, the dead letters replayed and delivered
        legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = ? WHERE CUSTNO = ?", f"{custno.strip()}@example.com", custno)
    assert store.replay("customers") == 2
    engine.run("customers")
    assert store.dlq_count("customers") == 0
    assert hooks.events("dlq_growth") == [("raised", "dlq_growth", "customers"), ("cleared", "dlq_growth", "customers")]


def test_lag_past_the_target_is_raised_on_the_loop_tick_and_cleared_by_a_fresh_run(
    alerting: Any, sync_config: SyncConfig, store: SyncStore
) -> None:
    stock = msgspec.structs.replace(sync_config.syncs["stock"], latency_target_s=60)
    config = msgspec.structs.replace(sync_config, syncs={**sync_config.syncs, "stock": stock})
    engine, hooks = alerting(config, tick_s=0.05)
    ahead = [0.0]  # seconds the monitor's clock runs ahead: a minute and more passes in no time
    engine.alerts = AlertMonitor(engine.config, store, engine.http,
                                 clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ahead[0]))  # fmt: skip
    engine.run("items")
    assert engine.run("stock").status == "succeeded"
    assert hooks.events("lag") == []
    loop = SyncLoop(engine, []).start()  # no sync runs: only the alert tick looks at the store
    try:
        ahead[0] = 75.0
        deadline = time.monotonic() + 15
        while not hooks.events("lag") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        loop.stop.set()
        loop.join(10)
    assert hooks.events("lag") == [("raised", "lag", "stock")], "the tick did not raise a stale stock sync"
    assert hooks.bodies[-1]["value"] > 60 and hooks.bodies[-1]["threshold"] == 60
    ahead[0] = 0.0
    assert engine.run("stock").status == "succeeded"
    assert hooks.events("lag") == [("raised", "lag", "stock"), ("cleared", "lag", "stock")]


def test_lag_counts_from_the_last_successful_run(
    alerting: Any, fake: FakeShopify, store: SyncStore, writable_db: Path
) -> None:
    engine, _ = alerting()
    stock = msgspec.structs.replace(engine.config.syncs["stock"], latency_target_s=60)
    engine.config = msgspec.structs.replace(engine.config, syncs={**engine.config.syncs, "stock": stock})
    engine.run("items")
    engine.run("stock")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    monitor = AlertMonitor(engine.config, store, engine.http, clock=lambda: later)
    fake.token = "wrong"
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = ONHAND + 1000 WHERE rowid = (SELECT MIN(rowid) FROM STKBAL)")
    assert engine.run("stock").status == "failed"  # a failed run is not fresh: the successful one counts
    (change,) = [c for c in monitor.evaluate() if c.kind == "lag"]
    fresh = next(r["started_at"] for r in store.runs("stock") if r["status"] == "succeeded")
    assert change.event == "raised" and "above the 60 s target" in change.message
    assert change.value == round((later - fresh).total_seconds(), 1) and change.details["last_success_started_at"] == (
        fresh.isoformat()
    )
    assert monitor.evaluate() == [], "still late: no second alert"


def test_a_record_count_far_from_recent_runs_alerts_and_clears(
    alerting: Any, sync_config: SyncConfig, writable_db: Path, store: SyncStore
) -> None:
    customers = msgspec.structs.replace(
        sync_config.syncs["customers"],
        approval=msgspec.structs.replace(sync_config.syncs["customers"].approval, max_count_deviation=None),
    )
    config = msgspec.structs.replace(sync_config, syncs={**sync_config.syncs, "customers": customers})
    engine, hooks = alerting(config)
    for _ in range(3):
        assert engine.run("customers").status == "succeeded"
    assert hooks.events("count_deviation") == []
    with sqlite3.connect(writable_db) as conn:
        hidden = [r for (r,) in conn.execute("SELECT rowid FROM CUSTMAST WHERE DELFLG = 'N' AND rowid % 4 <> 0")]
    conn.close()
    marks = ",".join(map(str, hidden))
    legacy(writable_db, f"UPDATE CUSTMAST SET DELFLG = 'Y' WHERE rowid IN ({marks})")  # 3 in 4 soft-deleted
    engine.run("customers")
    assert hooks.events("count_deviation") == [("raised", "count_deviation", "customers")]
    assert "fewer than the median of 3 recent runs" in hooks.bodies[-1]["message"]
    legacy(writable_db, f"UPDATE CUSTMAST SET DELFLG = 'N' WHERE rowid IN ({marks})")
    engine.run("customers")
    assert hooks.events("count_deviation")[-1] == ("cleared", "count_deviation", "customers")


def test_a_grant_that_needs_reconnecting_alerts_once_per_change(alerting: Any, store: SyncStore) -> None:
    engine, hooks = alerting()
    store.set_grant("shop", "reconnect_needed", "refresh token revoked by the user")
    engine.alerts.evaluate()
    engine.alerts.evaluate()
    assert hooks.events("reconnect_needed") == [("raised", "reconnect_needed", "shop")]
    body = hooks.bodies[-1]
    assert body["destination"] == "shop" and body["runbook"] == "items.md"
    assert "refresh token revoked by the user" in body["message"]
    store.set_grant("shop", "ok")
    engine.alerts.evaluate()
    assert hooks.events("reconnect_needed")[-1] == ("cleared", "reconnect_needed", "shop")


def test_a_muted_kind_stays_quiet_and_a_removed_sync_is_cleared(
    alerting: Any, fake: FakeShopify, store: SyncStore
) -> None:
    from sync.alerts import SyncAlertConfig

    engine, hooks = alerting(after_failures=1)
    fake.token = "wrong"
    engine.run("customers")
    assert hooks.events("failing_runs") == [("raised", "failing_runs", "customers")]
    config = engine.config
    quiet = msgspec.structs.replace(config.syncs["items"], alert=SyncAlertConfig(mute=["failing_runs"]))
    without = {k: v for k, v in config.syncs.items() if k != "customers"} | {"items": quiet}
    monitor = AlertMonitor(msgspec.structs.replace(config, syncs=without), store, engine.http)
    engine.config = msgspec.structs.replace(config, syncs=without)
    engine.alerts = monitor
    engine.run("items")
    monitor.evaluate()
    assert hooks.events("failing_runs") == [("raised", "failing_runs", "customers"),
                                            ("cleared", "failing_runs", "customers")]  # fmt: skip


def test_the_webhook_is_retried_with_backoff_and_a_refusal_is_not(alerting: Any, store: SyncStore) -> None:
    engine, hooks = alerting()
    hooks.statuses = [503, 429, 502]
    store.set_grant("shop", "reconnect_needed")
    (change,) = engine.alerts.evaluate()
    assert change.delivery == "webhook ok; email ok" and hooks.attempts == 4
    assert len(set(hooks.ids)) == 1, "every retry of one event carries the same alert id"
    hooks.statuses = [400]
    store.set_grant("shop", "ok")
    (change,) = engine.alerts.evaluate()
    assert change.delivery == "webhook failed: alert webhook answered 400; email ok" and hooks.attempts == 5
    assert alert_history(store)[0].delivery == change.delivery


def test_email_is_retried_when_the_server_is_busy(alerting: Any, store: SyncStore, smtp: SmtpSink) -> None:
    engine, _ = alerting()
    smtp.busy = 2
    store.set_grant("shop", "reconnect_needed")
    (change,) = engine.alerts.evaluate()
    assert change.delivery.endswith("email ok") and smtp.connections == 3 and len(smtp.received) == 1


def test_the_signature_covers_body_and_time() -> None:
    from sync.alerts.delivery import signature

    body = b'{"kind":"lag"}'
    header = signature(SECRET, body, 1_700_000_000)
    assert verify_signature(SECRET, body, header, now=1_700_000_100)
    assert not verify_signature(SECRET, body + b" ", header, now=1_700_000_100), "another body"
    assert not verify_signature("other", body, header, now=1_700_000_100), "another secret"
    assert not verify_signature(SECRET, body, header, now=1_700_001_000), "a replay after the tolerance"
    assert not verify_signature(SECRET, body, header.replace("t=1700000000", "t=1700000900"), now=1_700_000_900)
    for hostile in (None, "", "t=,v1=", "v1=abc", "t=x,v1=y", "garbage"):
        assert not verify_signature(SECRET, body, hostile, now=1_700_000_100)


def test_a_revoked_oauth_grant_raises_reconnect_needed_and_a_new_consent_clears_it(
    alerting: Any, store: SyncStore
) -> None:
    from cryptography.fernet import Fernet

    from sync.connectors.xero.oauth import GrantRevoked, TokenSet
    from sync.state.oauth_grants import GrantStore, ReconnectNeeded
    from sync.state.sealing import Sealer

    engine, hooks = alerting()
    grants = GrantStore(store.db, Sealer([Fernet.generate_key().decode()]))
    expired = TokenSet("access", "refresh", expires_at=time.time() - 60)
    grants.save("shop", expired, tenant_id="t1", tenant_name="Demo Ltd")
    engine.alerts.evaluate()
    assert hooks.events("reconnect_needed") == []

    def revoked(_refresh_token: str) -> TokenSet:
        raise GrantRevoked("invalid_grant: the user disconnected the app")

    with pytest.raises(ReconnectNeeded):
        grants.access("shop", revoked)
    engine.alerts.evaluate()
    assert hooks.events("reconnect_needed") == [("raised", "reconnect_needed", "shop")]
    assert "disconnected the app" in hooks.bodies[-1]["message"]
    grants.save("shop", TokenSet("a2", "r2", expires_at=time.time() + 1800), tenant_id="t1", tenant_name="Demo Ltd")
    engine.alerts.evaluate()
    assert hooks.events("reconnect_needed")[-1] == ("cleared", "reconnect_needed", "shop")
