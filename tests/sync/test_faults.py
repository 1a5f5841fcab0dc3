"""20 % injected faults (429, 5xx, timeouts, connections dropped after the write): nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

from sync.connectors.shopify.fake import FakeShopify, Faults
from sync.state.sync_store import SyncStore
from tests.sync.test_demo_e2e import assert_converged, legacy


def test_faulty_shop_converges_without_duplicates(
    make_engine, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    fake.faults = Faults(rate=0.2, seed=11)
    engine = make_engine()
    for _ in range(4):
        engine.run_all()
    injected = fake.faults.injected
    assert injected.get("drop_after_write", 0) > 0 and injected.get("429", 0) > 0 and injected.get("timeout", 0) > 0
    assert_converged(fake, writable_db)
    # Every record is delivered or dead-lettered, never stuck or lost.
    assert all(store.pending(name) == 0 for name in ("items", "stock", "customers"))
    customers = legacy(writable_db, "SELECT COUNT(*) FROM CUSTMAST WHERE DELFLG <> 'Y'")[0][0]
    assert len(fake.shop.customers) + len(store.dlq("customers")) == customers
    keys = [c["metafields"][("bridgehead", "legacy_key")] for c in fake.shop.customers.values()]
    assert len(keys) == len(set(keys))
    # Injected faults are transient: none may end in the DLQ (only data the shop refuses may).
    assert {d["last_error"].split(":")[0] for d in store.dlq()} <= {"INVALID"}


def test_retry_after_is_honoured_in_fractional_seconds(make_engine, fake: FakeShopify) -> None:
    fake.faults = Faults(queued=["429", "429"])
    fake.retry_after = 0.25
    engine = make_engine()
    (report,) = engine.run_all(only="items")
    assert report.status == "succeeded"
    waits = engine.clients["shop"].hook.waits
    assert len(waits) == 2 and all(0.25 <= w < 0.4 for w in waits)
