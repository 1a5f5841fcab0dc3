"""The fake follows the documented Shopify behaviour (notes/saas-apis.md), not our connector."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sync.connectors.shopify.fake import CostBucket, FakeShopify

URL = "http://shop/admin/api/2026-04/graphql.json"
SET = """mutation S($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) @idempotent(key: "%s")
  { inventoryAdjustmentGroup { id } userErrors { field message code } } }"""
PRODUCT = """mutation P($id: ProductSetIdentifiers, $i: ProductSetInput!) { productSet(identifier: $id, input: $i,
  synchronous: true) { product { id variants(first: 1) { nodes { inventoryItem { id } } } } userErrors { code } } }"""


def post(
    fake: FakeShopify, query: str, variables: dict[str, Any] | None = None, token: str = "sandbox-token"
) -> httpx.Response:
    client = httpx.Client(transport=httpx.MockTransport(fake.handler))
    return client.post(
        URL, json={"query": query, "variables": variables or {}}, headers={"X-Shopify-Access-Token": token}
    )


def make_item(fake: FakeShopify, key: str = "I1") -> str:
    ident = {"customId": {"namespace": "bridgehead", "key": "legacy_key", "value": key}}
    variant = {"optionValues": [{"optionName": "Title", "name": "Default Title"}], "sku": key, "price": "1.00"}
    inp = {
        "title": key,
        "productOptions": [{"name": "Title", "values": [{"name": "Default Title"}]}],
        "variants": [variant],
    }
    body = post(fake, PRODUCT, {"id": ident, "i": inp}).json()
    return body["data"]["productSet"]["product"]["variants"]["nodes"][0]["inventoryItem"]["id"]


def quantities(item: str, qty: int, **extra: Any) -> dict[str, Any]:
    q = {"inventoryItemId": item, "locationId": "gid://shopify/Location/1", "quantity": qty, **extra}
    return {"input": {"name": "available", "reason": "correction", "quantities": [q]}}


def test_product_set_upserts_by_identifier() -> None:
    fake = FakeShopify()
    assert make_item(fake) == make_item(fake)
    assert len(fake.shop.products) == 1


def test_change_from_quantity_is_required_and_compared() -> None:
    fake = FakeShopify()
    item = make_item(fake)
    missing = post(fake, SET % "a", quantities(item, 5)).json()["data"]["inventorySetQuantities"]
    assert missing["userErrors"][0]["field"][-1] == "changeFromQuantity"
    stale = post(fake, SET % "b", quantities(item, 5, changeFromQuantity=3)).json()["data"]["inventorySetQuantities"]
    assert stale["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    ok = post(fake, SET % "c", quantities(item, 5, changeFromQuantity=0)).json()["data"]["inventorySetQuantities"]
    assert ok["userErrors"] == [] and fake.shop.inventory[(item, "gid://shopify/Location/1")] == 5
    opt_out = post(fake, SET % "d", quantities(item, 9, changeFromQuantity=None)).json()["data"]
    assert opt_out["inventorySetQuantities"]["userErrors"] == []


def test_idempotent_key_replays_the_first_result() -> None:
    fake = FakeShopify()
    item = make_item(fake)
    first = post(fake, SET % "k", quantities(item, 5, changeFromQuantity=0)).json()["data"]
    again = post(fake, SET % "k", quantities(item, 5, changeFromQuantity=0)).json()["data"]
    assert first == again and first["inventorySetQuantities"]["userErrors"] == []


def test_throttled_is_http_200_with_cost_extensions() -> None:
    fake = FakeShopify(bucket=CostBucket(maximum=15, restore_rate=1))
    make_item(fake)
    response = post(fake, PRODUCT, {"i": {"title": "x"}})
    body = response.json()
    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 15 and status["restoreRate"] == 1 and status["currentlyAvailable"] < 10


def test_wrong_token_is_401() -> None:
    assert post(FakeShopify(), "{ products(first: 1) { nodes { id } } }", token="nope").status_code == 401


@pytest.mark.parametrize("first", [0, 251])
def test_page_size_is_capped_at_250(first: int) -> None:
    body = post(FakeShopify(), "query($n: Int) { products(first: $n) { nodes { id } } }", {"n": first}).json()
    assert body["errors"]


def test_idempotent_key_from_a_variable_replays_the_first_result() -> None:
    """graphql-core 3.3 hands resolvers a VariableValues tuple, not a dict: `key: $k` must still resolve."""
    fake = FakeShopify()
    item = make_item(fake)
    declared = SET.replace("InventorySetQuantitiesInput!)", "InventorySetQuantitiesInput!, $k: String!)")
    query = declared.replace('"%s"', "$k")
    first = post(fake, query, {**quantities(item, 5, changeFromQuantity=0), "k": "v1"})
    again = post(fake, query, {**quantities(item, 5, changeFromQuantity=0), "k": "v1"})
    assert first.status_code == 200 and "errors" not in first.json(), first.text
    assert first.json()["data"] == again.json()["data"]
    assert first.json()["data"]["inventorySetQuantities"]["userErrors"] == []
