"""Pause/resume mid-run, the failure alert (webhook and command), failed runs, and the engine on MemoryStore.

Every alert condition has its own tests in ``test_alerts.py``."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from legacy_adapters.database import Database
from legacy_adapters.mapping import Mapping
from sync.config import AlertConfig, SyncConfig
from sync.connectors.shopify.fake import FakeShopify
from sync.engine import SyncEngine
from sync.state.memory import MemoryStore
from sync.state.sync_store import SyncStore

HOOK = "http://alerts.example/hook"


def product_writes(fake: FakeShopify) -> Counter[str]:
    return Counter(ident for op, ident in fake.shop.writes if op == "productSet")


def test_pause_mid_run_stops_between_batches_and_resume_finishes_without_duplicates(
    make_engine: Any, fake: FakeShopify, store: SyncStore
) -> None:
    def pause_after_first_batch(name: str, done: int, total: int) -> None:
        store.set_paused(name, True)

    (cut,) = make_engine(progress=pause_after_first_batch).run_all(only="items")
    assert (cut.status, cut.error) == ("cancelled", "paused during the run")
    sent = sum(cut.done.values())
    assert 0 < sent < 200 and store.pending("items") == 200 - sent, "the rest waits in the outbox"
    engine = make_engine()
    (idle,) = engine.run_all(only="items")
    assert (idle.status, idle.error, sum(idle.done.values())) == ("cancelled", "paused", 0)
    assert len(fake.shop.products) == sent
    store.set_paused("items", False)
    (resumed,) = engine.run_all(only="items")
    assert resumed.status == "succeeded" and resumed.done["create"] == 200 - sent
    writes = product_writes(fake)
    assert len(writes) == 200 and max(writes.values()) == 1, "a record was sent twice across the pause"


@pytest.fixture
def alert_engine(sync_mapping: Mapping, sync_config: SyncConfig, store: SyncStore, fake: FakeShopify) -> Any:
    """An engine whose shop refuses the token (a Fatal 401) and whose webhook calls are recorded."""
    fake.token = "rotated-by-the-merchant"
    hooks: list[dict[str, Any]] = []

    def route(request: httpx.Request) -> httpx.Response:
        if str(request.url) == HOOK:
            hooks.append(json.loads(request.content))
            return httpx.Response(204)
        return fake.handler(request)

    databases: list[Database] = []

    def make(alert: AlertConfig) -> tuple[SyncEngine, list[dict[str, Any]]]:
        config = msgspec.structs.replace(sync_config, alert=alert)
        databases.append(database := Database(sync_mapping.database))
        http = httpx.Client(transport=httpx.MockTransport(route))
        return SyncEngine(config, sync_mapping, database, store, http), hooks

    yield make
    for database in databases:
        database.dispose()


def test_webhook_alert_fires_once_when_a_sync_fails_n_runs_in_a_row(alert_engine: Any, store: SyncStore) -> None:
    engine, hooks = alert_engine(AlertConfig(after_failures=2, webhook_url=HOOK))
    first = engine.run("items")
    assert first.status == "failed" and first.error
    assert hooks == []
    second = engine.run("items")
    assert [(h["event"], h["sync"], h["details"]["consecutive_failures"], h["details"]["run_id"],
             h["details"]["status"]) for h in hooks] == [("raised", "items", 2, second.run_id, "failed")]  # fmt: skip
    engine.run("items")
    assert len(hooks) == 1, "alert once per streak, not on every later failure"


def test_command_alert_gets_the_sync_and_streak_in_its_environment(
    alert_engine: Any, tmp_path: Path, fake: FakeShopify, writable_db: Path
) -> None:
    out = tmp_path / "alert.txt"
    env = " + ' ' + ".join(
        f"os.environ.get({name!r}, '-')"
        for name in ("BRIDGEHEAD_ALERT_EVENT", "BRIDGEHEAD_SYNC", "BRIDGEHEAD_FAILURES")
    )
    script = f"import os; open({str(out)!r}, 'w').write({env})"
    command = f'{sys.executable} -c "{script}"'
    engine, _ = alert_engine(AlertConfig(after_failures=1, command=command))
    engine.run("customers")
    assert out.read_text() == "raised customers 1"
    fake.token = "sandbox-token"
    assert engine.run("customers").status == "succeeded"  # a success clears the alert...
    assert out.read_text() == "cleared customers 0"
    fake.token = "wrong"
    with sqlite3.connect(writable_db) as conn:  # something to send, so the shop is asked (and refuses)
        conn.execute("UPDATE CUSTMAST SET CUSTNM = 'RENAMED' WHERE CUSTNO = (SELECT MIN(CUSTNO) FROM CUSTMAST)")
    conn.close()
    assert engine.run("customers").status == "failed"
    assert out.read_text() == "raised customers 1"  # ...so the next failure alerts again


def test_an_unexpected_error_fails_that_run_and_the_other_syncs_still_run(
    make_engine: Any, writable_db: Path, store: SyncStore, fake: FakeShopify
) -> None:
    with sqlite3.connect(writable_db) as conn:
        conn.execute("ALTER TABLE ITEMMAST RENAME TO ITEMMAST_GONE")  # mapping drift: the table is gone
    conn.close()
    items, _stock, customers = make_engine().run_all()
    latest = store.runs("items")[0]
    assert latest["status"] == "failed" and latest["finished_at"] is not None and latest["error"]
    assert items.status == "failed" and "SchemaDrift" in (items.error or "")
    assert customers.status == "succeeded" and len(fake.shop.customers) > 0, "a failed sync stopped the next one"


def test_the_engine_runs_on_the_in_memory_store(
    sync_mapping: Mapping, sync_config: SyncConfig, fake: FakeShopify
) -> None:
    memory = MemoryStore()
    database = Database(sync_mapping.database)
    with httpx.Client(transport=httpx.MockTransport(fake.handler)) as http:
        engine = SyncEngine(sync_config, sync_mapping, database, memory, http)
        items, stock, _ = engine.run_all()
        writes = len(fake.shop.writes)
        again = engine.run_all()
    database.dispose()
    assert (items.status, items.done["create"], stock.status) == ("succeeded", 200, "succeeded")
    assert len(fake.shop.writes) == writes and all(sum(r.planned.values()) == 0 for r in again)
    assert memory.id_count("items") == 200 and memory.runs("items")[0]["status"] == "succeeded"
