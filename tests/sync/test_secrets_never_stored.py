"""A destination that quotes our credential back never gets it into the state store, the console or an alert.

The shop here answers every refusal with a message that echoes the access token it was sent (as a
misconfigured proxy or a chatty API does). Whatever the store (memory, SQLite, PostgreSQL), the run's
errors, the dead letter, the row outcomes, the run record and the alert all keep the refusal readable
and the token out.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import msgspec

from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping
from sync.alerts.conditions import evaluate_conditions
from sync.config import SyncConfig
from sync.connectors.shopify.auth import ShopifyTokenAuth
from sync.connectors.shopify.fake import FakeShopify
from sync.engine import SyncEngine
from sync.state.base import StateStore
from sync.state.memory import MemoryStore
from tests.sync.test_demo_e2e import legacy

TOKEN = "shop-credential-3f9a1c7e5b2d"


def _echoing(fake: FakeShopify) -> httpx.MockTransport:
    """The fake shop, with every error message also quoting the access token of the request."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = fake.handler(request)
        sent = request.headers.get("X-Shopify-Access-Token", "")
        if not answer.headers.get("content-type", "").startswith("application/json"):
            return answer
        body = _quote_token(msgspec.json.decode(answer.content), sent)
        return httpx.Response(answer.status_code, headers={"content-type": "application/json"}, json=body)

    return httpx.MockTransport(handler)


def _quote_token(value: Any, token: str) -> Any:
    if isinstance(value, dict):
        return {k: f"{v} (request sent with token {token})" if k == "message" else _quote_token(v, token)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_quote_token(v, token) for v in value]
    return value


def test_an_echoed_token_is_in_no_stored_error_outcome_or_alert(
    sync_mapping: Mapping, sync_config: SyncConfig, fake: FakeShopify, writable_db: Path, state_store: StateStore
) -> None:
    destinations = {n: msgspec.structs.replace(d, token=TOKEN) for n, d in sync_config.destinations.items()}
    config = msgspec.structs.replace(sync_config, destinations=destinations)
    fake.token = TOKEN
    database = Database(sync_mapping.database)
    try:
        with httpx.Client(transport=_echoing(fake)) as http:
            engine = SyncEngine(config, sync_mapping, database, state_store, http)
            engine.run_all(only="customers")
            (custno,) = legacy(writable_db, "SELECT CUSTNO FROM CUSTMAST WHERE DELFLG = 'N' ORDER BY CUSTNO LIMIT 1")[0]
            legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE CUSTNO = ?", custno)
            reports = [engine.run_all(only="customers")[0] for _ in range(3)]
    finally:
        database.dispose()
    assert [r.dead_lettered for r in reports] == [0, 0, 1]
    (letter,) = state_store.dlq("customers")
    errors = [e["error"] for r in reports for e in state_store.record_errors(r.run_id)]
    outcomes = [o for r in reports for o in state_store.outcomes(r.run_id)]
    assert errors and letter["last_error"].startswith("INVALID"), "the refusal must stay readable"
    assert "request sent with token [redacted]" in letter["last_error"], "the echo was there to be redacted"
    for condition in evaluate_conditions(config, state_store, dt.datetime.now(dt.UTC)):
        state_store.transition_alert(condition.kind, condition.subject, condition.active, message=condition.message,
                                   sync=condition.sync, details=condition.details)  # fmt: skip
    stored = msgspec.json.encode(
        [
            letter,
            errors,
            outcomes,
            state_store.runs("customers"),
            state_store.alert_states(),
            state_store.alert_events(),
        ],
        enc_hook=str,
    ).decode()
    assert TOKEN not in stored


def test_a_run_that_failed_quoting_a_token_alerts_without_it(sync_config: SyncConfig, state_store: StateStore) -> None:
    fake_credential = FakeShopify().token  # registered as the engine's auth would register it
    ShopifyTokenAuth(TOKEN)
    state_store.set_paused("customers", False)  # the sync's control row, as the engine's first run makes it
    for _ in range(3):
        run_id = state_store.start_run("customers", "worker-1")
        state_store.move_run(run_id, "failed", error=f"HTTP 401: token {TOKEN} refused; Bearer {fake_credential}")
        state_store.note_outcome("customers", True)
    conditions = evaluate_conditions(sync_config, state_store, dt.datetime.now(dt.UTC), ["customers"])
    (failing,) = [c for c in conditions if c.kind == "failing_runs"]
    assert failing.active and "HTTP 401: token [redacted] refused; Bearer [redacted]" in failing.message
    state_store.transition_alert(failing.kind, failing.subject, True, message=failing.message, details=failing.details)
    stored = msgspec.json.encode([state_store.runs("customers"), state_store.alert_events()], enc_hook=str).decode()
    assert TOKEN not in stored and "refused" in stored


def test_a_run_refused_quoting_our_token_reports_and_logs_it_redacted(
    sync_mapping: Mapping, sync_config: SyncConfig, writable_db: Path
) -> None:
    """The run report (what ``bridgehead sync run`` prints, what the console shows) and the run's log
    lines are text shown too: a refusal that quotes the credential says so without it."""
    import io

    from gateway.logging import configure_logging

    destinations = {n: msgspec.structs.replace(d, token=TOKEN) for n, d in sync_config.destinations.items()}
    config = msgspec.structs.replace(sync_config, destinations=destinations)

    def refuses(request: httpx.Request) -> httpx.Response:
        sent = request.headers.get("X-Shopify-Access-Token", "")
        return httpx.Response(401, json={"errors": f"[API] Invalid API key or access token {sent}"})

    out = io.BytesIO()
    configure_logging("info", log_format="json", stream=out)
    database = Database(sync_mapping.database)
    try:
        with httpx.Client(transport=httpx.MockTransport(refuses)) as http:
            (report,) = SyncEngine(config, sync_mapping, database, MemoryStore(), http).run_all(only="customers")
    finally:
        database.dispose()
        configure_logging("info", log_format="json", stream=io.BytesIO())  # flushes the lines into out
    assert report.status == "failed" and report.error and "Invalid API key" in report.error
    assert TOKEN not in report.error and TOKEN not in out.getvalue().decode()
