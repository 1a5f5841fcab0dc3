"""Demo database -> sync engine -> fake Shopify, end to end, then legacy edits converge."""

from __future__ import annotations

import math
import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from sync.connectors.shopify.fake import FakeShopify
from sync.state.sync_store import SyncStore


def legacy(db: Path, sql: str, *params: Any) -> list[Any]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(sql, params).fetchall()
    conn.close()
    return rows


def shop_products(fake: FakeShopify) -> dict[str, dict[str, Any]]:
    """Shop products by legacy key (the customId metafield)."""
    return {p["metafields"][("bridgehead", "legacy_key")]: p for p in fake.shop.products.values()}


def assert_converged(fake: FakeShopify, db: Path) -> None:
    items = {f'["{no.strip()}"]': (descr.strip(), Decimal(price) / 10000, actcd) for no, descr, price, actcd in
             legacy(db, "SELECT ITEMNO, DESCR, PRICE, ACTCD FROM ITEMMAST")}  # fmt: skip
    products = shop_products(fake)
    assert len(products) == len(fake.shop.products), "two products for one legacy item"
    assert set(products) == set(items)
    for key, (title, price, actcd) in items.items():
        product = products[key]
        assert product["title"] == title
        # Prices go out in cents (currency: USD), banker's rounding of the 4 legacy decimals.
        assert product["variants"][0]["price"] == str(price.quantize(Decimal("0.01"), ROUND_HALF_EVEN))
        assert product["status"] == ("ACTIVE" if actcd == "A" else "ARCHIVED")
    by_sku = {p["variants"][0]["sku"]: p["variants"][0]["inventoryItem"] for p in fake.shop.products.values()}
    names = {n: g for g, n in fake.shop.locations.items()}
    for itemno, whse, onhand, alloc in legacy(db, "SELECT ITEMNO, WHSE, ONHAND, ALLOC FROM STKBAL"):
        if itemno.strip() in by_sku:
            # available = on hand - allocated, floored to whole units (3 implied decimals).
            expected = math.floor(Decimal(onhand - alloc) / 1000)
            assert fake.shop.inventory[(by_sku[itemno.strip()], names[whse.strip()])] == expected


def test_first_run_creates_everything(make_engine, fake: FakeShopify, writable_db: Path, store: SyncStore) -> None:
    reports = make_engine().run_all()
    assert [r.status for r in reports[:2]] == ["succeeded", "succeeded"]
    item_count = legacy(writable_db, "SELECT COUNT(*) FROM ITEMMAST")[0][0]
    assert reports[0].done["create"] == item_count
    assert_converged(fake, writable_db)
    assert len(fake.shop.customers) > 0
    assert store.runs("items")[0]["done_creates"] == item_count


def test_second_run_sends_nothing(make_engine, fake: FakeShopify) -> None:
    engine = make_engine()
    engine.run_all()
    writes, requests = len(fake.shop.writes), fake.requests
    reports = engine.run_all()
    assert len(fake.shop.writes) == writes
    assert fake.requests == requests, "an unchanged source must not even be read back from the shop"
    assert all(sum(r.planned.values()) == 0 and r.failed == 0 for r in reports)


def test_edits_inserts_and_deletes_converge(make_engine, fake: FakeShopify, writable_db: Path) -> None:
    engine = make_engine()
    engine.run_all()
    first = legacy(writable_db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 3")
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'RENAMED BRACKET', PRICE = 99990 WHERE ITEMNO = ?", first[0][0])
    legacy(
        writable_db,
        "UPDATE ITEMMAST SET ACTCD = CASE ACTCD WHEN 'A' THEN 'I' ELSE 'A' END WHERE ITEMNO = ?",
        first[1][0],
    )
    legacy(writable_db, "DELETE FROM ITEMMAST WHERE ITEMNO = ?", first[2][0])
    legacy(writable_db, "DELETE FROM STKBAL WHERE ITEMNO = ?", first[2][0])
    legacy(
        writable_db,
        "INSERT INTO ITEMMAST VALUES ('ZNEW-0001      ', 'NEW WIDGET', 'EA ', 12345, 100, 'A', 0, '000000001')",
    )
    legacy(writable_db, "INSERT INTO STKBAL VALUES ('ZNEW-0001      ', 'W01', 7000, 0, '')")
    legacy(writable_db, "UPDATE STKBAL SET ONHAND = 42000 WHERE ITEMNO = ?", first[0][0])
    items, stock, _ = engine.run_all()
    assert (items.done["create"], items.done["update"], items.done["delete"]) == (1, 2, 1)
    assert stock.done["create"] >= 1
    assert_converged(fake, writable_db)


def test_destination_owned_field_survives(make_engine, fake: FakeShopify, writable_db: Path) -> None:
    engine = make_engine()
    engine.run_all(only="items")
    itemno = legacy(writable_db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1")[0][0]
    product = shop_products(fake)[f'["{itemno.strip()}"]']
    assert product["descriptionHtml"].startswith("<p>")
    product["descriptionHtml"] = "<p>Written by the merchandiser</p>"
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'NEW LEGACY TEXT' WHERE ITEMNO = ?", itemno)
    engine.run_all(only="items")
    product = shop_products(fake)[f'["{itemno.strip()}"]']
    assert product["title"] == "NEW LEGACY TEXT"
    assert product["descriptionHtml"] == "<p>Written by the merchandiser</p>"


def test_newer_shop_email_is_kept_and_the_conflict_recorded(
    make_engine, fake: FakeShopify, writable_db: Path, store: SyncStore
) -> None:
    engine = make_engine()
    engine.run_all(only="customers")
    custno, _email = legacy(
        writable_db,
        "SELECT CUSTNO, EMAIL FROM CUSTMAST WHERE EMAIL LIKE '%@%' AND DELFLG = 'N' ORDER BY CUSTNO LIMIT 1",
    )[0]
    customer = next(
        c
        for c in fake.shop.customers.values()
        if c["metafields"][("bridgehead", "legacy_key")] == f'["{custno.strip()}"]'
    )
    customer["email"], customer["updatedAt"] = "typed.in.shop@example.com", "2999-01-01T00:00:00+00:00"
    legacy(
        writable_db,
        "UPDATE CUSTMAST SET EMAIL = 'nightly.export@example.com', CUSTNM = 'RENAMED LTD' WHERE CUSTNO = ?",
        custno,
    )
    (report,) = engine.run_all(only="customers")
    assert customer["email"] == "typed.in.shop@example.com"
    assert customer["lastName"] == "RENAMED LTD"
    assert report.conflicts == 1
    (conflict,) = store.conflicts("customers")
    assert (conflict["field"], conflict["winner"]) == ("email", "destination")
