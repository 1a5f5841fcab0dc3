"""Stock and money reach the shop as the legacy system means them (issue 12, items 1, 9, 10).

A repeated change is a new change (its own idempotency key), quantities are
available = on hand - allocated rounded as the mapping declares, prices go out in
the currency's decimals, and what was rounded stays visible per record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from legacy_adapters.exceptions import MappingError
from sync.config import FieldMap, load_sync_config
from sync.connectors.shopify import ShopifyConnector
from sync.connectors.shopify.errors import OUTCOMES, user_error
from sync.connectors.shopify.fake import FakeShopify, Faults
from sync.exceptions import Fatal, Retriable, Skippable
from sync.state.sync_store import SyncStore
from tests.sync.test_demo_e2e import legacy

ROW = "SELECT ITEMNO, WHSE FROM STKBAL WHERE ITEMNO IN (SELECT ITEMNO FROM ITEMMAST) ORDER BY ITEMNO, WHSE LIMIT 1"


def shop_level(fake: FakeShopify, store: SyncStore, itemno: str, whse: str) -> int:
    entry = store.id_entries("items", [f'["{itemno.strip()}"]'])[f'["{itemno.strip()}"]']
    location = next(g for g, n in fake.shop.locations.items() if n == whse.strip())
    return fake.shop.inventory[(entry.extra["inventory_item_id"], location)]


@pytest.mark.parametrize(
    "sequence", [(3000, 7000, 3000, 7000), (50000, 42000, 50000, 42000, 50000)], ids=["A-B-A-B", "50-42-50-42-50"]
)
def test_a_repeated_stock_change_reaches_the_shop_every_time(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore, sequence: tuple[int, ...]
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    itemno, whse = legacy(writable_db, ROW)[0]
    for onhand in sequence:
        legacy(
            writable_db, "UPDATE STKBAL SET ONHAND = ?, ALLOC = 0 WHERE ITEMNO = ? AND WHSE = ?", onhand, itemno, whse
        )
        (report,) = engine.run_all(only="stock")
        assert report.status == "succeeded"
        assert shop_level(fake, store, itemno, whse) == onhand // 1000, f"the shop missed the change to {onhand}"
    assert fake.shop.replays == 0, "no genuinely new change may be answered from an old idempotent result"


def test_a_lost_answer_is_retried_with_the_same_key_and_applied_once(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    itemno, whse = legacy(writable_db, ROW)[0]
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 9000, ALLOC = 0 WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)
    engine.run_all(only="stock")
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 4000 WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)
    # The engine keeps the sync's connector (the shop's locations were read by the first stock run),
    # so the next request is the stock write: it is applied and its answer lost, and the retry replays it.
    fake.faults = Faults(queued=["drop_after_write"])
    (report,) = engine.run_all(only="stock")
    assert report.status == "succeeded" and fake.shop.replays == 1
    assert shop_level(fake, store, itemno, whse) == 4


def test_stock_sends_available_as_on_hand_minus_allocated_floored_and_records_the_rounding(
    make_engine: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    itemno, whse = legacy(writable_db, ROW)[0]
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 12750, ALLOC = 2500 WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)
    (report,) = engine.run_all(only="stock")
    assert shop_level(fake, store, itemno, whse) == 10, "12.75 on hand - 2.5 allocated = 10.25, floored"
    fractional = legacy(writable_db, "SELECT COUNT(*) FROM STKBAL WHERE (ONHAND - ALLOC) % 1000 <> 0")[0][0]
    assert report.rounded >= fractional > 0
    key = f'["{itemno.strip()}","{whse.strip()}"]'
    entry = store.id_entries("stock", [key])[key]
    assert entry.extra["rounded"] == {"quantity": {"from": "10.250", "to": "10", "rule": "floor"}}


def test_a_fractional_quantity_without_declared_rounding_is_refused_not_truncated(
    make_engine: Any, sync_config: Any, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    stock = sync_config.syncs["stock"]
    fields = {**stock.fields, "quantity": FieldMap(field="on_hand")}
    config = msgspec.structs.replace(
        sync_config, syncs={**sync_config.syncs, "stock": msgspec.structs.replace(stock, fields=fields)}
    )
    engine = make_engine()
    engine.config = config
    engine.run_all(only="items")
    itemno, whse = legacy(writable_db, ROW)[0]
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 12750 WHERE ITEMNO = ? AND WHSE = ?", itemno, whse)
    (report,) = engine.run_all(only="stock")
    assert report.status == "partially_failed"
    errors = [e["error"] for e in store.record_errors(report.run_id)]
    assert any("12.75" in e and "rounding" in e for e in errors)
    assert shop_level(fake, store, itemno, whse) == 0, "nothing truncated and sent"


def test_prices_go_out_in_the_currencys_decimals(make_engine: Any, fake: FakeShopify, writable_db: Path) -> None:
    itemno = legacy(writable_db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1")[0][0]
    legacy(writable_db, "UPDATE ITEMMAST SET PRICE = 41363548 WHERE ITEMNO = ?", itemno)  # 4136.3548
    make_engine().run_all(only="items")
    prices = [p["variants"][0]["price"] for p in fake.shop.products.values()]
    assert "4136.35" in prices and all(len(p.partition(".")[2]) == 2 for p in prices)


def test_customer_tags_from_a_template_go_out_as_separate_tags(make_engine: Any, fake: FakeShopify) -> None:
    make_engine().run_all(only="customers")
    customer = next(iter(fake.shop.customers.values()))
    custno = msgspec.json.decode(customer["metafields"][("bridgehead", "legacy_key")])[0]
    assert customer["tags"] == ["legacy", custno]


def test_shopify_internal_errors_are_retried_not_fatal(make_engine: Any, fake: FakeShopify) -> None:
    fake.faults = Faults(queued=["internal_error", "internal_error"])
    (report,) = make_engine().run_all(only="items")
    assert report.status == "succeeded" and fake.faults.injected["internal_error"] == 2


def test_a_read_above_the_single_query_cost_limit_is_split(
    make_engine: Any, fake: FakeShopify, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    ids = [e.remote_id for e in store.id_entries("items", _keys(store)).values()]
    fake.max_query_cost = 30  # 200 ids in one nodes() read cost 200
    connector = ShopifyConnector(engine.client("shop", 3), "product")
    found = connector.fetch(ids)
    assert set(found) == set(ids)
    fake.max_query_cost = 0
    with pytest.raises(Fatal, match="single-query cost limit"):
        connector.fetch(ids[:2])


def _keys(store: SyncStore) -> list[str]:
    import sqlalchemy as sa

    from sync.state.sync_tables import ID_MAP

    with store.engine.connect() as conn:
        return list(conn.scalars(sa.select(ID_MAP.c.key).where(ID_MAP.c.sync == "items")))


def test_every_error_code_has_one_outcome_and_the_family_follows_it() -> None:
    assert OUTCOMES["THROTTLED"] == OUTCOMES["INTERNAL_SERVER_ERROR"] == "retry"
    assert OUTCOMES["MAX_COST_EXCEEDED"] == "split"
    assert isinstance(user_error("IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "", "reused"), Fatal)
    assert isinstance(user_error("IDEMPOTENCY_CONCURRENT_REQUEST", "", "busy"), Retriable)
    assert isinstance(user_error("TAKEN", "email", "taken"), Skippable)
    assert isinstance(user_error("SOMETHING_NEW", "x", "?"), Skippable), "unknown record errors dead-letter"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"expression": "on_hand - __import__('os')"}, "only field names"),
        ({"field": "price", "currency": "XYZ"}, "unknown currency"),
        ({"template": "{price}", "rounding": "floor"}, "apply to a number"),
        ({"field": "on_hand", "rounding": "sideways"}, "Invalid enum value 'sideways'"),
    ],
)
def test_number_declarations_are_checked_with_the_path(sync_mapping: Any, field: dict, message: str) -> None:
    raw = msgspec.json.decode(msgspec.json.encode(sync_mapping.sync))
    raw["syncs"]["stock"]["fields"]["quantity"] = field
    with pytest.raises(MappingError, match=message) as caught:
        load_sync_config(raw)
    assert caught.value.path.startswith("sync.syncs")
