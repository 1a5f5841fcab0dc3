"""Property tests: any sequence of stock levels, with repeats, shop sales and faults, ends in the shop;
rounding and money never move a value further than their rule allows; stored values compare equal."""

from __future__ import annotations

import math
from decimal import Decimal

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.config import DestinationConfig
from sync.connectors.base import OutRecord
from sync.connectors.shopify import ShopifyClient, ShopifyConnector
from sync.connectors.shopify.fake import CostBucket, FakeShopify, Faults
from sync.numbers import to_destination
from sync.plan import same
from tests.sync.test_fake_shopify import make_item

FAULTS = st.sampled_from(["", "drop_after_write", "timeout_after_write", "internal_error", "500", "drop", "timeout"])
STEP = st.tuples(st.sampled_from([0, 3, 7, 42, 50]), st.integers(0, 2), st.lists(FAULTS, max_size=3))


@settings(max_examples=40, derandomize=True, deadline=None)
@given(steps=st.lists(STEP, min_size=2, max_size=8))
def test_every_stock_level_in_any_sequence_reaches_the_shop(steps: list[tuple[int, int, list[str]]]) -> None:
    fake = FakeShopify(bucket=CostBucket(maximum=1_000_000, restore_rate=1_000_000))
    item = make_item(fake)
    slot = (item, "gid://shopify/Location/1")
    fake.shop.inventory[slot] = 10
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    client = ShopifyClient(http, DestinationConfig(url="http://shop", token="sandbox-token"), attempts=10)
    extra: dict[str, object] = {}  # what the engine keeps in the id map between runs
    for run, (quantity, sold, faults) in enumerate(steps, 1):
        if sold and fake.shop.inventory[slot] >= sold:
            fake.shop.sell(slot, sold)  # the shop moves stock between our runs: the compare-and-set notices
        fake.faults = Faults(queued=list(faults))
        connector = ShopifyConnector(client, "inventory")  # one per run, as the engine makes them
        values = {"inventoryItemId": item, "location": "W01", "quantity": quantity}
        record = OutRecord('["I1","W01"]', "update", values, extra=extra, send_id=f"{run}:1:fp{quantity}")
        (result,) = connector.push([record])
        assert result.error is None, result.error
        extra = result.extra
        assert fake.shop.inventory[slot] == quantity, f"run {run}: the shop kept {fake.shop.inventory[slot]}"


QUANTITIES = st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(value=QUANTITIES, rule=st.sampled_from(["floor", "ceil", "round_half_even", "round_half_up", "truncate"]))
def test_a_rounded_quantity_is_a_whole_number_within_its_rule(value: Decimal, rule: str) -> None:
    out, note = to_destination(value, rounding=rule, decimals=None)  # type: ignore[arg-type]
    assert isinstance(out, int)
    bounds = {
        "floor": out <= value < out + 1,
        "ceil": out - 1 < value <= out,
        "truncate": abs(out) <= abs(value) < abs(out) + 1,
    }
    assert bounds.get(rule, abs(out - value) <= Decimal("0.5"))
    assert (note is None) == (out == value)
    if note is not None:
        assert (Decimal(note.source), int(note.sent), note.rule) == (value, out, rule)
    if rule == "floor":
        assert out == math.floor(value)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(value=st.decimals(min_value=-(10**7), max_value=10**7, places=4, allow_nan=False, allow_infinity=False),
       decimals=st.sampled_from([0, 2, 3]))  # fmt: skip
def test_money_goes_out_with_the_currency_decimals_rounded_half_even(value: Decimal, decimals: int) -> None:
    out, note = to_destination(value, rounding=None, decimals=decimals)
    assert isinstance(out, str) and len(out.partition(".")[2]) == decimals
    assert abs(Decimal(out) - value) <= Decimal(1).scaleb(-decimals) / 2
    assert (note is None) == (Decimal(out) == value)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(value=st.decimals(allow_nan=False, allow_infinity=False))
def test_a_number_equals_its_stored_text(value: Decimal) -> None:
    import msgspec

    stored = msgspec.json.decode(msgspec.json.encode(value))  # what the id map gives back
    assert same(value, stored) and same(stored, value)
    assert not same(value, str(value + 1)) or value + 1 == value


@settings(max_examples=60, derandomize=True, deadline=None)
@given(raw=st.one_of(st.decimals(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.integers()))
def test_a_quantity_is_sent_whole_or_refused_never_truncated(raw: object) -> None:
    fake = FakeShopify(bucket=CostBucket(maximum=1_000_000, restore_rate=1_000_000))
    item = make_item(fake)
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    client = ShopifyClient(http, DestinationConfig(url="http://shop", token="sandbox-token"))
    values = {"inventoryItemId": item, "location": "W01", "quantity": raw}
    (result,) = ShopifyConnector(client, "inventory").push([OutRecord('["I1","W01"]', "update", values, send_id="1")])
    level = fake.shop.inventory[(item, "gid://shopify/Location/1")]
    try:
        whole = Decimal(str(raw or 0))
        exact = whole.is_finite() and whole == whole.to_integral_value() and abs(whole) < 2**31
    except ArithmeticError:
        exact = False
    if exact:
        assert result.error is None and level == int(whole)
    else:
        assert result.error is not None and level == 0, "refused, and nothing sent"
