"""The fake refuses and answers what Shopify refuses and answers (issue 12, "as strict as Shopify")."""

from __future__ import annotations

import httpx
import pytest

from sync.connectors.shopify.fake import FakeShopify, Faults
from sync.sandbox import SandboxServer
from tests.sync.test_fake_shopify import SET, URL, make_item, post, quantities

LOCATION = "gid://shopify/Location/1"
BY_HANDLE = """mutation P($id: ProductSetIdentifiers, $i: ProductSetInput!) { productSet(identifier: $id, input: $i,
  synchronous: true) { product { id handle title } userErrors { code } } }"""
CUSTOMER = """mutation C($i: CustomerSetInput!) { customerSet(input: $i) { customer { id } userErrors { code } } }"""


def test_product_set_by_handle_upserts_instead_of_creating_a_second_product() -> None:
    fake = FakeShopify()
    first = post(fake, BY_HANDLE, {"id": {"handle": "blue-widget"}, "i": {"title": "Blue"}}).json()
    again = post(fake, BY_HANDLE, {"id": {"handle": "blue-widget"}, "i": {"title": "Blue, renamed"}}).json()
    one, two = first["data"]["productSet"]["product"], again["data"]["productSet"]["product"]
    assert one["handle"] == "blue-widget" and one["id"] == two["id"]
    assert len(fake.shop.products) == 1 and two["title"] == "Blue, renamed"


def test_products_and_customers_queries_filter() -> None:
    fake = FakeShopify()
    for key in ("I1", "I2", "J3"):
        make_item(fake, key)
    for email in ("ann@example.com", "bob@example.com"):
        post(fake, CUSTOMER, {"i": {"email": email, "lastName": email[:3]}})
    products = "query($q: String) { products(first: 10, query: $q) { nodes { variants(first: 1) { nodes { sku } } } } }"

    def skus(q: str) -> list[str]:
        nodes = post(fake, products, {"q": q}).json()["data"]["products"]["nodes"]
        return [n["variants"]["nodes"][0]["sku"] for n in nodes]

    assert skus("sku:I2") == ["I2"]
    assert skus("sku:I*") == ["I1", "I2"]
    assert skus("sku:I1 OR sku:J3") == ["I1", "J3"]
    assert skus("-sku:I1") == ["I2", "J3"]
    assert skus("no_such_field:I1") == [], "an unknown filter matches nothing, never everything"
    customers = "query($q: String) { customers(first: 10, query: $q) { nodes { email } } }"
    found = post(fake, customers, {"q": "email:bob@example.com"}).json()["data"]["customers"]["nodes"]
    assert found == [{"email": "bob@example.com"}]


def test_inventory_adjustment_group_has_changes_and_quantities_are_distinct() -> None:
    fake = FakeShopify()
    item = make_item(fake)
    slot = (item, LOCATION)
    fake.shop.inventory[slot] = 10
    fake.shop.sell(slot, 3)  # an order: 3 committed, on hand unchanged
    read = f"""{{ inventoryItem(id: "{item}") {{ inventoryLevel(locationId: "{LOCATION}")
      {{ quantities(names: ["available", "committed", "on_hand"]) {{ name quantity }} }} }} }}"""

    def levels() -> dict[str, int]:
        body = post(fake, read).json()["data"]["inventoryItem"]["inventoryLevel"]["quantities"]
        return {q["name"]: q["quantity"] for q in body}

    assert levels() == {"available": 7, "committed": 3, "on_hand": 10}
    group = "inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }"
    query = SET.replace("inventoryAdjustmentGroup { id }", group) % "k1"
    body = post(fake, query, quantities(item, 20, changeFromQuantity=7)).json()["data"]["inventorySetQuantities"]
    changes = {c["name"]: (c["delta"], c["quantityAfterChange"]) for c in body["inventoryAdjustmentGroup"]["changes"]}
    assert changes == {"available": (13, 20), "on_hand": (13, 23)}
    assert levels() == {"available": 20, "committed": 3, "on_hand": 23}
    # The compare-and-set compares the named quantity: on_hand is 23, not 20.
    on_hand = quantities(item, 30, changeFromQuantity=20)
    on_hand["input"]["name"] = "on_hand"
    stale = post(fake, SET % "k2", on_hand).json()["data"]["inventorySetQuantities"]["userErrors"]
    assert stale[0]["code"] == "CHANGE_FROM_QUANTITY_STALE"


def test_query_cost_multiplies_nested_connections_and_refuses_past_the_single_query_limit() -> None:
    fake = FakeShopify()
    small = "{ products(first: 10) { nodes { id variants(first: 5) { nodes { id } } } pageInfo { hasNextPage } } }"
    cost = post(fake, small).json()["extensions"]["cost"]["requestedQueryCost"]
    assert cost == 2 + 10 * (1 + 2 + 5)
    big = "{ products(first: 250) { nodes { id variants(first: 10) { nodes { id } } } } }"
    body = post(fake, big).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2 + 250 * 13 and "data" not in body


def test_an_idempotency_key_reused_with_other_parameters_is_refused() -> None:
    fake = FakeShopify()
    item = make_item(fake)
    post(fake, SET % "same", quantities(item, 7, changeFromQuantity=0))
    body = post(fake, SET % "same", quantities(item, 3, changeFromQuantity=7)).json()["data"]
    assert body["inventorySetQuantities"]["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    assert fake.shop.inventory[(item, LOCATION)] == 7, "a refused reuse changes nothing"


@pytest.fixture
def sandbox() -> SandboxServer:
    fake = FakeShopify(hang_s=3.0)
    with SandboxServer(fake) as server:
        yield server


def _send(server: SandboxServer, query: str, variables: dict | None = None) -> httpx.Response:
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as client:
        return client.post(
            server.url + httpx.URL(URL).path,
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": "sandbox-token"},
        )


def test_sandbox_injects_real_read_timeouts_and_dropped_connections(sandbox: SandboxServer) -> None:
    fake = sandbox.fake
    item = make_item(fake)
    fake.faults = Faults(queued=["timeout"])
    with pytest.raises(httpx.ReadTimeout):
        _send(sandbox, SET % "t1", quantities(item, 4, changeFromQuantity=0))
    assert fake.shop.inventory[(item, LOCATION)] == 0, "a timeout before the write applied nothing"
    fake.faults = Faults(queued=["drop_after_write"])
    with pytest.raises(httpx.RemoteProtocolError):
        _send(sandbox, SET % "t2", quantities(item, 5, changeFromQuantity=0))
    assert fake.shop.inventory[(item, LOCATION)] == 5, "the write happened; only the answer was lost"
    fake.faults = Faults(queued=["drop"])
    with pytest.raises(httpx.RemoteProtocolError):
        _send(sandbox, SET % "t3", quantities(item, 6, changeFromQuantity=5))
    assert fake.shop.inventory[(item, LOCATION)] == 5
    assert _send(sandbox, "{ locations(first: 5) { nodes { id } } }").status_code == 200
