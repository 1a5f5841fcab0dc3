"""Signed webhooks: verified over the raw body, stored once, applied to STKBAL through the mapping."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, load_mapping
from sync.webhooks.signatures import sign
from tests.conftest import demo_environ

SHOPIFY_SECRET = "shopify-webhook-secret-for-tests-0123456789"
XERO_KEY = "xero-webhook-key-for-tests-0123456789abcdef"


def _mapping(db: Path, **extra: str) -> Mapping:
    environ = {
        **demo_environ(db),
        "BRIDGEHEAD_SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
        "BRIDGEHEAD_XERO_WEBHOOK_KEY": XERO_KEY,
        **extra,
    }
    return load_mapping(DEMO_MAPPING_PATH, environ)


def _alloc(db: Path, sku: str, warehouse: str = "W01") -> int:
    """The oracle: STKBAL.ALLOC as stored (three implied decimals)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT ALLOC FROM STKBAL WHERE TRIM(ITEMNO) = ? AND WHSE = ?", (sku, warehouse)).fetchone()
    return int(row[0])


def _skus(db: Path, n: int) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT TRIM(ITEMNO) FROM STKBAL WHERE WHSE = 'W01' ORDER BY ITEMNO LIMIT ?", (n,))
        return [r[0] for r in rows]


@pytest.fixture
def shop(writable_db: Path) -> Iterator[tuple[TestClient[Any], Path]]:
    from gateway import create_app

    with TestClient(create_app(_mapping(writable_db))) as client:
        yield client, writable_db


def _deliver(
    client: TestClient[Any], topic: str, order: dict[str, Any], webhook_id: str, at: str, *, body: bytes | None = None
) -> Any:
    raw = body if body is not None else json.dumps(order).encode()
    headers = {
        "X-Shopify-Hmac-SHA256": sign(SHOPIFY_SECRET, json.dumps(order).encode() if body is not None else raw),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": at,
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/shopify", content=raw, headers=headers)


def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the webhook was not applied in time")
        time.sleep(0.05)


def test_a_signed_order_reserves_stock_once_visible_through_rest_and_audit(
    shop: tuple[TestClient[Any], Path], admin: dict[str, str]
) -> None:
    client, db = shop
    sku = _skus(db, 1)[0]
    before = _alloc(db, sku)
    order = {"id": 9001, "line_items": [{"sku": sku, "quantity": 2}, {"sku": None, "quantity": 1}]}
    first = _deliver(client, "orders/create", order, "wh-1", "2026-12-01T10:00:00Z")
    assert first.status_code == 200 and first.json() == {"received": True, "duplicate": False}
    _until(lambda: _alloc(db, sku) == before + 2000)  # 2 units, three implied decimals
    again = _deliver(client, "orders/create", order, "wh-1", "2026-12-01T10:00:00Z")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    time.sleep(0.3)
    assert _alloc(db, sku) == before + 2000  # the redelivery changed nothing
    served = client.get(f"/v1/stock/{sku},W01", headers=admin).json()
    assert served["allocated"] == pytest.approx((before + 2000) / 1000)
    audit = client.get(f"/admin/audit?key={sku},W01", headers=admin).json()["data"]
    entry = next(e for e in audit if e["action"] == "webhook orders/create")
    assert entry["subject"] == "webhook:shopify" and entry["request_id"] == "shopify:wh-1"


def test_the_same_json_with_other_whitespace_is_refused(shop: tuple[TestClient[Any], Path]) -> None:
    client, db = shop
    sku = _skus(db, 1)[0]
    before = _alloc(db, sku)
    order = {"id": 9002, "line_items": [{"sku": sku, "quantity": 5}]}
    reserialised = json.dumps(order, indent=2).encode()  # same JSON, other bytes; signed over the compact form
    answer = _deliver(client, "orders/create", order, "wh-2", "2026-12-01T10:00:00Z", body=reserialised)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("invalid-signature")
    unsigned = client.post("/webhooks/shopify", content=b"{}", headers={"X-Shopify-Topic": "orders/create"})
    assert unsigned.status_code == 401
    time.sleep(0.3)
    assert _alloc(db, sku) == before


def test_updates_and_cancellations_move_only_the_difference_and_old_events_lose(
    shop: tuple[TestClient[Any], Path],
) -> None:
    client, db = shop
    a, b = _skus(db, 2)
    base_a, base_b = _alloc(db, a), _alloc(db, b)
    order = {"id": 9003, "line_items": [{"sku": a, "quantity": 3}]}
    _deliver(client, "orders/create", order, "wh-3a", "2026-12-01T10:00:00Z")
    _until(lambda: _alloc(db, a) == base_a + 3000)
    changed = {"id": 9003, "line_items": [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 4}]}
    _deliver(client, "orders/updated", changed, "wh-3b", "2026-12-01T10:05:00Z")
    _until(lambda: (_alloc(db, a), _alloc(db, b)) == (base_a + 1000, base_b + 4000))
    # A cancellation, then a late copy of an older update: the older one must not re-reserve.
    _deliver(client, "orders/cancelled", {**changed, "cancelled_at": "2026-12-01T10:09:00Z"}, "wh-3c",
             "2026-12-01T10:09:00Z")  # fmt: skip
    _until(lambda: (_alloc(db, a), _alloc(db, b)) == (base_a, base_b))
    _deliver(client, "orders/updated", changed, "wh-3d", "2026-12-01T10:07:00Z")
    time.sleep(0.5)
    assert (_alloc(db, a), _alloc(db, b)) == (base_a, base_b)


def test_an_order_for_an_unknown_sku_is_dead_lettered_with_its_reason(
    shop: tuple[TestClient[Any], Path], writable_db: Path
) -> None:
    from sync.state import StateDatabase
    from sync.webhooks import WebhookQueue

    client, db = shop
    sku = _skus(db, 1)[0]
    before = _alloc(db, sku)
    order = {"id": 9004, "line_items": [{"sku": sku, "quantity": 1}, {"sku": "NO-SUCH-SKU", "quantity": 1}]}
    assert _deliver(client, "orders/create", order, "wh-4", "2026-12-01T10:00:00Z").status_code == 200
    queue = WebhookQueue(StateDatabase(demo_environ(writable_db)["BRIDGEHEAD_STATE_URL"]))
    _until(lambda: bool(queue.dead()))
    (dead,) = queue.dead()
    assert dead["topic"] == "orders/create" and "NO-SUCH-SKU" in dead["error"]
    assert _alloc(db, sku) == before  # all or nothing: the known SKU was not reserved either


def test_xero_intent_to_receive_and_events_stored_once(shop: tuple[TestClient[Any], Path], writable_db: Path) -> None:
    from sync.state import StateDatabase
    from sync.webhooks import WebhookQueue

    client, _ = shop
    intent = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "X"}).encode()
    good = client.post("/webhooks/xero", content=intent, headers={"x-xero-signature": sign(XERO_KEY, intent)})
    assert good.status_code == 200 and good.content == b""
    bad = client.post("/webhooks/xero", content=intent, headers={"x-xero-signature": sign("wrong-key", intent)})
    assert bad.status_code == 401 and bad.content == b""
    event = {"resourceId": "5b0f2b4a", "eventDateUtc": "2026-12-01T10:00:00.000", "eventType": "UPDATE",
             "eventCategory": "INVOICE", "tenantId": "t-1", "tenantType": "ORGANISATION"}  # fmt: skip
    batch = json.dumps({"events": [event], "firstEventSequence": 1, "lastEventSequence": 1}).encode()
    for _ in range(2):
        stored = client.post("/webhooks/xero", content=batch, headers={"x-xero-signature": sign(XERO_KEY, batch)})
        assert stored.status_code == 200
    counts = WebhookQueue(StateDatabase(demo_environ(writable_db)["BRIDGEHEAD_STATE_URL"])).counts()
    # Kept durably, once (its resourceId is no Xero invoice id, so applying it dead-letters it).
    assert sum(counts.values()) == 1


def test_no_secret_no_route(writable_db: Path) -> None:
    from gateway import create_app

    mapping = _mapping(writable_db, BRIDGEHEAD_SHOPIFY_WEBHOOK_SECRET="", BRIDGEHEAD_XERO_WEBHOOK_KEY="")
    with TestClient(create_app(mapping)) as client:
        assert client.post("/webhooks/shopify", content=b"{}").status_code in (404, 405)


_EVENT = st.tuples(
    st.integers(0, 2),  # which order
    st.sampled_from(["orders/create", "orders/updated", "orders/cancelled"]),
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4)), max_size=3),  # (sku index, quantity)
    st.integers(0, 50),  # minutes past ten: the event time
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_EVENT, max_size=8), order=st.randoms(use_true_random=False), repeats=st.integers(0, 3))
def test_any_delivery_order_leaves_what_the_newest_events_say(
    writable_db: Path, tmp_path_factory: pytest.TempPathFactory, events: list[Any], order: Any, repeats: int
) -> None:
    """Shuffled, repeated deliveries: each order ends holding what its newest event says, once."""
    import shutil

    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import bind_version
    from sync.state import StateDatabase
    from sync.state.audit import AuditLog
    from sync.webhooks import WebhookQueue, load_webhooks_config
    from sync.webhooks.shopify_orders import StockReservations
    from sync.webhooks.worker import WebhookWorker

    folder = tmp_path_factory.mktemp("hooks")
    db = folder / "demo.db"
    shutil.copyfile(writable_db, db)
    mapping = _mapping(db)
    skus = _skus(db, 3)
    start = {s: _alloc(db, s) for s in skus}
    state = StateDatabase(f"sqlite:///{folder / 'state.db'}")
    state.migrate()
    queue = WebhookQueue(state)
    spec = load_webhooks_config(mapping.webhooks).shopify.reserve_stock  # type: ignore[union-attr]
    assert spec is not None
    database = Database(mapping.database)
    applier = StockReservations(spec, bind_version(mapping, "v1")["stock"], database, queue, AuditLog(state))
    worker = WebhookWorker(queue, {"shopify": applier})
    deliveries = []
    for n, (which, topic, lines, minute) in enumerate(events):
        payload = {"id": 7000 + which, "line_items": [{"sku": skus[i], "quantity": q} for i, q in lines]}
        at = f"2026-12-01T10:{minute:02d}:00.{n:06d}Z"  # distinct times: "newest" is well defined
        deliveries.append(("shopify", f"e{n}", topic, str(7000 + which), at, json.dumps(payload).encode()))
    shuffled = deliveries + deliveries[:repeats]
    order.shuffle(shuffled)
    for delivery in shuffled:
        queue.receive(*delivery)
        worker.run_once()
    worker.run_once()
    expected = dict(start)
    newest: dict[str, tuple[str, str, bytes]] = {}
    for _src, _id, topic, obj, at, body in deliveries:
        if obj not in newest or at > newest[obj][0]:
            newest[obj] = (at, topic, body)
    for _at, topic, body in newest.values():
        if topic == "orders/cancelled":
            continue
        for line in json.loads(body)["line_items"]:
            expected[line["sku"]] += 1000 * line["quantity"]
    # Out-of-order arrival can apply an older event first; the newest one always has the last word.
    assert {s: _alloc(db, s) for s in skus} == expected
    database.engine.dispose()
    state.dispose()
