"""``sync run --loop``: each sync on its own schedule, so stock never waits behind a long items run,
and a failing run never ends the loop (issue 12, items 3 and 7)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec

from sync.connectors.shopify.fake import FakeShopify
from sync.scheduler import SyncLoop
from sync.state.sync_store import SyncStore
from tests.sync.test_demo_e2e import legacy
from tests.sync.test_transient_failures import shop_quantity


def test_stock_is_delivered_while_a_long_items_run_is_still_going(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, sync_config: Any
) -> None:
    stock_delivered = threading.Event()
    items_state_then: list[str] = []

    def hold_items(name: str, done: int, total: int) -> None:
        if name == "items":  # a catalogue-wide run that lasts until stock has had its turn
            stock_delivered.wait(20)

    engine = make_engine()
    engine.run_all()
    # A catalogue-wide price change is exactly what the approval gate holds; this test is about the
    # schedule, so the items sync runs it without waiting for a human.
    items = sync_config.syncs["items"]
    ungated = msgspec.structs.replace(items, approval=msgspec.structs.replace(items.approval, max_change_share=None))
    engine.config = msgspec.structs.replace(sync_config, syncs={**sync_config.syncs, "items": ungated})
    legacy(writable_db, "UPDATE ITEMMAST SET PRICE = PRICE + 100")
    itemno, whse = legacy(writable_db, "SELECT ITEMNO, WHSE FROM STKBAL ORDER BY ITEMNO LIMIT 1")[0]
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 4242000 WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)

    def on_report(report: Any) -> None:
        if report.sync == "stock" and report.done["update"]:
            items_state_then.append(store.runs("items")[0]["status"])
            stock_delivered.set()

    engine.progress = hold_items
    loop = SyncLoop(engine, ["items", "stock"], on_report=on_report).start()
    try:
        assert stock_delivered.wait(20), "stock waited behind the items run"
    finally:
        loop.stop.set()
        loop.join(30)
    assert items_state_then == ["running"]
    (allocated,) = legacy(writable_db, "SELECT ALLOC FROM STKBAL WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)[0]
    assert shop_quantity(fake, itemno, whse) == (4242000 - allocated) // 1000  # available = on hand - allocated
    assert store.runs("items")[0]["done_updates"] == 200


def test_a_failing_run_never_ends_the_loop(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, sync_config: Any
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    spec = msgspec.structs.replace(sync_config.syncs["stock"], interval_s=0.05)
    engine.config = msgspec.structs.replace(sync_config, syncs={**sync_config.syncs, "stock": spec})
    fake.token = "revoked"  # every request fails: Fatal 401 runs, then the merchant fixes the token
    reports: list[Any] = []
    fixed = threading.Event()

    def on_report(report: Any) -> None:
        reports.append(report)
        if len(reports) == 3:
            fake.token = "sandbox-token"
        if report.status == "succeeded":
            fixed.set()

    loop = SyncLoop(engine, ["stock"], on_report=on_report, min_sleep_s=0.01).start()
    try:
        assert fixed.wait(20), f"the loop stopped after {[r.status for r in reports]}"
    finally:
        loop.stop.set()
        loop.join(30)
    assert [r.status for r in reports[:3]] == ["failed"] * 3
    assert all(t.is_alive() is False for t in loop.threads)
