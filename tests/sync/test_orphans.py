"""Stock rows whose item is not in the shop get a final outcome with a reason, instead of being deferred
on every run and keeping the stock sync ``partially_failed`` (issue 12, item 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync.connectors.shopify.fake import FakeShopify
from sync.state.sync_store import SyncStore
from tests.sync.test_demo_e2e import legacy


def test_stock_of_a_deleted_item_is_skipped_once_with_a_reason(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all()
    (itemno,) = legacy(writable_db, "SELECT ITEMNO FROM STKBAL GROUP BY ITEMNO HAVING COUNT(*) >= 1 LIMIT 1")[0]
    rows = legacy(writable_db, "SELECT COUNT(*) FROM STKBAL WHERE ITEMNO = ?", itemno)[0][0]
    saved = legacy(writable_db, "SELECT * FROM ITEMMAST WHERE ITEMNO = ?", itemno)[0]
    legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO = ?", itemno)  # the item goes, its stock rows stay
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = ONHAND + 1000 WHERE ITEMNO = ?", itemno)
    items, stock, _ = engine.run_all()
    assert items.done["delete"] == 1
    assert (stock.status, stock.failed, stock.skipped) == ("succeeded", 0, rows)
    assert store.runs("stock")[0]["skipped"] == rows
    reasons = {r["reason"] for r in store.skipped_records("stock")}
    assert reasons == {f'skipped: parent items ["{itemno.strip()}"] not synced (not in the source or not synced)'}
    assert store.pending("stock") == 0
    (_, again, _) = engine.run_all()
    assert (again.status, sum(again.planned.values()), again.skipped) == ("succeeded", 0, 0), "skipped again"
    # The item comes back: its stock follows without anyone touching the stock rows.
    legacy(writable_db, f"INSERT INTO ITEMMAST VALUES ({', '.join('?' * len(saved))})", *saved)
    items, stock, _ = engine.run_all()
    assert items.done["create"] == 1 and stock.done["create"] + stock.done["update"] == rows
    assert store.skipped_records("stock") == []
