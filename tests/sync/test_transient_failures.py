"""What a failure costs: transient ones back off and never dead-letter, applied records stay applied,
one sync's failure never stops the others, and retries send the row as it is now (issue 12, items 2, 3, 5, 6)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sync.connectors.shopify.fake import FakeShopify, Faults
from sync.state.sync_store import SyncStore
from tests.sync.test_demo_e2e import legacy

ATTEMPTS = 10
"""Request attempts under stamina's testing mode (tests/sync/conftest.py)."""


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Time between runs is what the backoff is about: shrink it instead of sleeping minutes.
    monkeypatch.setattr("sync.retry.RUN_BACKOFF_BASE_S", 0.02)
    monkeypatch.setattr("sync.retry.RUN_BACKOFF_CAP_S", 0.1)


def shop_quantity(fake: FakeShopify, itemno: str, whse: str) -> int:
    product = next(p for p in fake.shop.products.values() if p["variants"][0]["sku"] == itemno.strip())
    location = next(g for g, n in fake.shop.locations.items() if n == whse.strip())
    return fake.shop.inventory[(product["variants"][0]["inventoryItem"], location)]


def test_a_shop_outage_never_dead_letters_and_the_shop_catches_up(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all()
    itemno, whse = legacy(writable_db, "SELECT ITEMNO, WHSE FROM STKBAL ORDER BY ITEMNO LIMIT 1")[0]
    # Nothing allocated: the shop's available is then the legacy on-hand (123).
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 123000, ALLOC = 0 WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)
    fake.faults = Faults(rate=1.0, kinds=("503", "429", "timeout"))
    outage = []
    for _ in range(4):  # more runs than max_attempts (3): the old engine dead-lettered the row here
        (report,) = engine.run_all(only="stock")
        outage.append(report)
        time.sleep(fake.retry_after + 0.1)  # the record's backoff passes (at least a 429's Retry-After)
    assert all(r.status == "partially_failed" and r.failed == 1 and r.dead_lettered == 0 for r in outage)
    assert store.dlq("stock") == [] and store.pending("stock") == 1
    fake.faults = Faults()
    (back,) = engine.run_all(only="stock")
    assert (back.status, back.done["update"]) == ("succeeded", 1)
    assert shop_quantity(fake, itemno, whse) == 123
    assert store.pending("stock") == 0


def test_a_refusal_still_dead_letters(make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore) -> None:
    engine = make_engine()
    engine.run_all(only="customers")
    (custno,) = legacy(writable_db, "SELECT CUSTNO FROM CUSTMAST WHERE DELFLG = 'N' ORDER BY CUSTNO LIMIT 1")[0]
    legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE CUSTNO = ?", custno)
    reports = [engine.run_all(only="customers")[0] for _ in range(3)]
    assert [r.dead_lettered for r in reports] == [0, 0, 1]
    (letter,) = store.dlq("customers")
    assert letter["last_error"].startswith("INVALID")


def test_a_429_on_the_newest_field_read_fails_one_run_not_the_loop(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all()
    (custno,) = legacy(writable_db, "SELECT CUSTNO FROM CUSTMAST WHERE DELFLG = 'N' ORDER BY CUSTNO LIMIT 1")[0]
    legacy(writable_db, "UPDATE CUSTMAST SET CUSTNM = 'RENAMED LTD' WHERE CUSTNO = ?", custno)
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = ONHAND + 5000 WHERE rowid = 1")
    # Customers go last in the demo: make them first so the failing read sits before another sync.
    config = msgspec.structs.replace(engine.config, syncs={n: engine.config.syncs[n] for n in ("customers", "stock")})
    engine.config = config
    fake.faults = Faults(queued=["429"] * ATTEMPTS)  # the `owner: newest` read of the changed customer
    customers, stock = engine.run_all()
    assert (customers.status, customers.failed) == ("partially_failed", 1)
    assert "429" in store.record_errors(customers.run_id)[0]["error"]
    assert stock.status == "succeeded" and stock.done["update"] == 1, "a failed sync stopped the next one"
    time.sleep(fake.retry_after + 0.1)  # the record waits at least what the shop's Retry-After said
    (again,) = engine.run_all(only="customers")
    assert again.status == "succeeded" and again.done["update"] == 1


def test_records_applied_before_a_failing_request_stay_applied(
    make_engine: Any, fake: FakeShopify, store: SyncStore
) -> None:
    # The first batch of 50 items goes out as 5 requests of 10; the 3rd fails past every retry.
    fake.faults = Faults(queued=[None, None, *["503"] * ATTEMPTS])  # type: ignore[list-item]
    engine = make_engine()
    (first,) = engine.run_all(only="items")
    assert first.failed == 10 and first.done["create"] == 190
    assert store.runs("items")[0]["done_creates"] == 190
    time.sleep(0.15)
    (second,) = engine.run_all(only="items")
    assert second.done["create"] == 10 and second.status == "succeeded"
    writes = Counter(ident for op, ident in fake.shop.writes if op == "productSet")
    assert len(writes) == 200 and max(writes.values()) == 1, "an applied record was sent again"


def test_a_replayed_dead_letter_sends_the_row_as_it_is_now(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, sync_config: Any
) -> None:
    engine = make_engine()
    engine.run_all(only="customers")
    (custno,) = legacy(writable_db, "SELECT CUSTNO FROM CUSTMAST WHERE DELFLG = 'N' ORDER BY CUSTNO LIMIT 1")[0]
    legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE CUSTNO = ?", custno)
    for _ in range(3):
        engine.run_all(only="customers")
    assert len(store.dlq("customers")) == 1
    legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'fixed@example.com' WHERE CUSTNO = ?", custno)
    assert store.replay("customers") == 1
    # A second worker pushes while this one holds the planning lease: it sees only the outbox.
    assert store.acquire_plan("customers", "planner", lease_s=60)
    pusher = make_engine(worker="pusher")
    pusher.config = msgspec.structs.replace(sync_config, lease_s=0.2)
    (report,) = pusher.run_all(only="customers")
    assert report.done["update"] == 1 and report.failed == 0, "the stale copy was sent again"
    customer = next(c for c in fake.shop.customers.values()
                    if c["metafields"][("bridgehead", "legacy_key")] == f'["{custno.strip()}"]')  # fmt: skip
    assert customer["email"] == "fixed@example.com"


def test_a_record_back_to_what_was_delivered_leaves_without_a_write(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all(only="customers")
    query = "SELECT CUSTNO, EMAIL FROM CUSTMAST WHERE DELFLG = 'N' AND EMAIL LIKE '%@%' ORDER BY CUSTNO LIMIT 1"
    custno, email = legacy(writable_db, query)[0]
    legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE CUSTNO = ?", custno)  # A -> B (refused)
    (refused,) = engine.run_all(only="customers")
    assert refused.failed == 1
    legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = ? WHERE CUSTNO = ?", email, custno)  # B -> A
    writes = len(fake.shop.writes)
    (report,) = engine.run_all(only="customers")
    assert (report.status, report.failed, len(fake.shop.writes)) == ("succeeded", 0, writes)
    assert store.pending("customers") == 0 and store.dlq("customers") == []


class _Killed(BaseException):
    """The worker died right after the shop applied its write."""


def test_a_create_applied_by_a_killed_worker_is_deleted_once_its_row_is_gone(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, sync_config: Any,
    sync_mapping: Any,
) -> None:  # fmt: skip
    import httpx

    from legacy_adapters.database import Database
    from sync.engine import SyncEngine

    config = msgspec.structs.replace(sync_config, lease_s=0.2)
    engine = make_engine()
    engine.config = config
    engine.run_all(only="items")
    legacy(writable_db, "INSERT INTO ITEMMAST VALUES ('ZNEW-0001      ', 'NEW', 'EA ', 100, 1, 'A', 0, '000000001')")

    def die_after_write(request: httpx.Request) -> httpx.Response:
        response = fake.handler(request)
        if b"mutation" in request.content:
            raise _Killed
        return response

    database = Database(sync_mapping.database)
    http = httpx.Client(transport=httpx.MockTransport(die_after_write))
    doomed = SyncEngine(config, sync_mapping, database, store, http)
    with pytest.raises(_Killed):
        doomed.run("items")
    database.dispose()
    assert len(fake.shop.products) == 201 and store.pending("items") == 1  # applied, never recorded
    legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO = 'ZNEW-0001      '")
    time.sleep(0.3)  # the dead worker's lease lapses
    for _ in range(2):  # the next run learns the product it never recorded; the one after deletes it
        engine.run("items")
    assert len(fake.shop.products) == 200, "a product of a deleted row stayed in the shop"
    assert store.pending("items") == 0
