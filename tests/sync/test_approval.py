"""Risky runs wait for a human (issue 12, item 12): the gate, and `sync approve` / `sync reject`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from legacy_adapters.demo import DEMO_MAPPING_PATH
from sync.cli import sync_group
from sync.config import ApprovalConfig, FieldMap
from sync.connectors.shopify.fake import FakeShopify
from sync.sandbox import SandboxServer
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ
from tests.sync.test_demo_e2e import legacy, shop_products


@pytest.fixture
def cli(fake: FakeShopify, writable_db: Path, tmp_path: Path) -> Any:
    """``bridgehead sync …`` against the same fake shop, served over real HTTP, and the test's state store."""
    with SandboxServer(fake) as server:
        env = {**demo_environ(writable_db), "BRIDGEHEAD_SHOPIFY_URL": server.url}
        state = f"sqlite:///{tmp_path / 'state.db'}"

        def invoke(*args: str) -> Any:
            return CliRunner().invoke(sync_group, [*args, "-c", str(DEMO_MAPPING_PATH), "--state-url", state], env=env)

        yield invoke


def _spec(engine: Any, name: str, **changes: Any) -> None:
    spec = msgspec.structs.replace(engine.config.syncs[name], **changes)
    engine.config = msgspec.structs.replace(engine.config, syncs={**engine.config.syncs, name: spec})


def test_a_run_changing_more_than_a_tenth_waits_and_approve_sends_it(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, cli: Any
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'RENAMED ' || ITEMNO WHERE ITEMNO IN "
                        "(SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 30)")  # fmt: skip
    writes = len(fake.shop.writes)
    (held,) = engine.run_all(only="items")
    assert held.status == "awaiting_approval" and "30 of 200" in (held.error or "")
    assert len(fake.shop.writes) == writes, "nothing is sent before a human decides"
    assert store.runs("items")[0]["status"] == "awaiting_approval"
    (blocked,) = engine.run_all(only="items")
    assert (blocked.status, blocked.error) == ("cancelled", f"run {held.run_id} is waiting for approval")
    assert f"held #{held.run_id}" in cli("status").output
    assert "waiting for approval: would change or delete 30 of 200" in cli("history", "--sync", "items").output
    listed = cli("approvals")
    assert f"run #{held.run_id} items: 0 creates, 30 updates, 0 deletes of 200" in listed.output
    assert "RENAMED" in listed.output, "the planned diff is shown"
    result = cli("approve", str(held.run_id), "--by", "alice")
    assert result.exit_code == 0, result.output
    assert f"run {held.run_id} approved by alice" in result.output
    assert sum(p["title"].startswith("RENAMED ") for p in shop_products(fake).values()) == 30
    run = next(r for r in store.runs("items") if r["id"] == held.run_id)
    assert (run["status"], run["done_updates"]) == ("succeeded", 30)
    (decided,) = store.approvals("items")
    assert (decided["decision"], decided["decided_by"]) == ("approved", "alice")
    assert cli("approve", str(held.run_id)).exit_code == 2, "a decided run cannot be decided again"
    (after,) = engine.run_all(only="items")
    assert after.status == "succeeded" and sum(after.planned.values()) == 0


def test_reject_cancels_the_mass_delete_and_the_next_run_asks_again(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, cli: Any
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO IN (SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 25)")
    (held,) = engine.run_all(only="items")
    assert held.status == "awaiting_approval" and "25 deletes" in (held.error or "")
    result = cli("reject", str(held.run_id), "--by", "bob")
    assert result.exit_code == 0, result.output
    assert len(fake.shop.products) == 200, "no product deleted"
    run = next(r for r in store.runs("items") if r["id"] == held.run_id)
    assert (run["status"], run["error"]) == ("cancelled", "rejected by bob")
    assert store.pending("items") == 0 and store.approvals("items")[0]["decided_by"] == "bob"
    (again,) = engine.run_all(only="items")
    assert again.status == "awaiting_approval", "the source still lacks the rows: ask again, never drop silently"


def test_a_record_count_far_from_recent_runs_waits(make_engine: Any, writable_db: Path) -> None:
    engine = make_engine()
    _spec(engine, "items", mode="upsert")  # deletes are ignored: only the count can tell
    for _ in range(3):
        assert engine.run("items").status == "succeeded"
    legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO IN (SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 150)")
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'X' || DESCR WHERE ITEMNO = (SELECT MIN(ITEMNO) FROM ITEMMAST)")
    held = engine.run("items")
    assert held.status == "awaiting_approval"
    assert "read 50 source rows where recent runs read about 200" in (held.error or "")


def test_the_first_run_after_a_mapping_change_can_require_approval(
    make_engine: Any, fake: FakeShopify, writable_db: Path
) -> None:
    engine = make_engine()
    rules = ApprovalConfig(max_change_share=None, after_mapping_change=True)
    _spec(engine, "items", approval=rules)
    assert engine.run("items").status == "succeeded"
    fields = {**engine.config.syncs["items"].fields, "productType": FieldMap(value="Widget")}
    _spec(engine, "items", fields=fields)
    held = engine.run("items")
    assert held.status == "awaiting_approval" and "definition changed" in (held.error or "")
    assert engine.approve(held.run_id, "carol").status == "succeeded"
    itemno = legacy(writable_db, "SELECT MIN(ITEMNO) FROM ITEMMAST")[0][0]
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'RENAMED' WHERE ITEMNO = ?", itemno)
    assert engine.run("items").status == "succeeded", "approved once, the new definition is in force"
    assert shop_products(fake)[f'["{itemno.strip()}"]']["productType"] == "Widget"


def test_small_changes_and_first_loads_go_through(make_engine: Any, writable_db: Path) -> None:
    engine = make_engine()
    first = engine.run("items")
    assert first.status == "succeeded" and first.done["create"] == 200, "creating is not changing remote records"
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'RENAMED' WHERE ITEMNO IN "
                        "(SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 20)")  # fmt: skip
    assert engine.run("items").status == "succeeded", "20 of 200 is exactly 10 %: not more than the share"


def test_who_decided_defaults_to_the_os_user(make_engine: Any, writable_db: Path, store: SyncStore, cli: Any) -> None:
    import getpass

    engine = make_engine()
    engine.run("items")
    legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO IN (SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 30)")
    held = engine.run("items")
    assert cli("reject", str(held.run_id)).exit_code == 0
    assert store.approvals("items")[0]["decided_by"] == getpass.getuser()
    assert cli("approve", "99999").exit_code == 2, "an unknown run is a clear error, not a traceback"


def test_a_held_run_alerts_a_human(
    sync_mapping: Any, sync_config: Any, store: SyncStore, fake: FakeShopify, writable_db: Path
) -> None:
    import json

    import httpx

    from legacy_adapters.database import Database
    from sync.config import AlertConfig
    from sync.engine import SyncEngine

    hooks: list[dict[str, Any]] = []

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "alerts.example":
            hooks.append(json.loads(request.content))
            return httpx.Response(204)
        return fake.handler(request)

    config = msgspec.structs.replace(sync_config, alert=AlertConfig(webhook_url="http://alerts.example/hook"))
    database = Database(sync_mapping.database)
    with httpx.Client(transport=httpx.MockTransport(route)) as http:
        engine = SyncEngine(config, sync_mapping, database, store, http)
        engine.run("items")
        legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO IN (SELECT ITEMNO FROM ITEMMAST LIMIT 30)")
        held = engine.run("items")
    database.dispose()
    held_alerts = [h for h in hooks if h["kind"] == "awaiting_approval"]
    assert [(h["event"], h["details"]["run_id"], h["details"]["status"]) for h in held_alerts] == [
        ("raised", held.run_id, "awaiting_approval")
    ]
    assert "30 deletes" in held_alerts[0]["details"]["error"] and "waits for approval" in held_alerts[0]["message"]
