"""The Xero client against the strict fake: pacing before the minute limit, 429s, the day limit, 401s.

Time is simulated: the fake and the client's pacing share one clock, and the pacer's sleep moves it.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.connectors.base import OutRecord
from sync.connectors.xero.client import MAX_KEY, XeroClient
from sync.connectors.xero.config import XeroDestination
from sync.connectors.xero.connector import XeroConnector, flatten, nest
from sync.connectors.xero.fake import FakeXero, XeroFaults
from sync.connectors.xero.limits import TenantLimits
from sync.connectors.xero.tokens import ClientCredentialsTokenSource, StaticTokenSource
from sync.exceptions import Fatal, QuotaExhausted, Skippable
from sync.state.sync_store import SyncStore


class Clock:
    def __init__(self, at: float = 1_796_100_000.0) -> None:
        self.at = at
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.at += seconds


DESTINATION = XeroDestination(url="https://api.xero.test", identity_url="https://identity.xero.test")


def make_client(fake: FakeXero, clock: Clock | None = None, store: SyncStore | None = None, **kw: object) -> XeroClient:
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    now = clock or Clock()
    tokens = ClientCredentialsTokenSource(http, "https://identity.xero.test/connect/token", fake.client_id,
                                          fake.client_secret, clock=now)  # fmt: skip
    limits = TenantLimits(sleep=now.sleep, clock=now) if clock else None
    return XeroClient(http, DESTINATION, tokens, store=store, name="books", limits=limits, clock=now, **kw)  # type: ignore[arg-type]


def test_calls_are_paced_before_the_minute_limit_not_after_it() -> None:
    clock = Clock()
    fake = FakeXero(clock=clock)
    client = make_client(fake, clock)
    start = clock.at
    for _ in range(150):
        client.request("GET", "/Items")
    assert fake.rate_limited == 0, "the pacer let a call run into the minute limit"
    assert client.limits.waits, "150 calls at 60 a minute must wait"
    assert clock.at - start >= 120  # two full windows, at least
    assert client.limits.minute_left is not None and client.limits.day_left == 5000 - 150  # read from the headers


def test_a_minute_429_is_retried_after_its_retry_after() -> None:
    fake = FakeXero(faults=XeroFaults(queued=["429"]))
    client = make_client(fake)
    assert client.request("GET", "/Items") == {"Items": []}
    assert fake.faults.injected == {"429": 1} and client.hook.waits and client.hook.waits[0] >= 1.0


def test_the_day_limit_raises_at_once_with_the_reset_and_later_calls_go_nowhere(tmp_path: Path) -> None:
    clock = Clock()
    store = SyncStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    fake = FakeXero(clock=clock, per_day=1)
    client = make_client(fake, clock, store)
    client.request("GET", "/Items")
    with pytest.raises(QuotaExhausted) as spent:
        client.request("GET", "/Items")
    midnight = dt.datetime.fromtimestamp(clock.at, dt.UTC).replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
    assert abs((spent.value.until - midnight).total_seconds()) <= 2 and fake.rate_limited == 1  # no retries
    store.hold_destination("books", spent.value.until, str(spent.value))  # what the engine does with it
    requests = fake.requests
    with pytest.raises(QuotaExhausted):
        make_client(fake, clock, store).request("GET", "/Items")  # another worker: not one call
    assert fake.requests == requests
    usage = {row["account"]: row for row in store.usage()}
    assert usage[f"xero:{fake.tenant_id}"]["calls"] == 2 and usage[f"xero:{fake.tenant_id}"]["bytes_in"] > 0


def test_a_refused_token_is_retried_once_then_says_reconnect_without_a_storm() -> None:
    fake = FakeXero()
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    client = XeroClient(http, DESTINATION, StaticTokenSource("revoked", tenant=fake.tenant_id), name="books")
    with pytest.raises(Fatal, match="reconnect"):
        client.request("GET", "/Items")
    assert fake.requests == 1


def test_never_more_than_five_calls_in_flight() -> None:
    fake = FakeXero(latency_s=0.05, per_minute=10_000)
    client = make_client(fake)
    threads = [threading.Thread(target=client.request, args=("GET", "/Items")) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.rate_limited == 0, "a sixth call was in flight"


def test_a_code_longer_than_30_is_refused_alone_without_a_request() -> None:
    fake = FakeXero()
    connector = XeroConnector(make_client(fake), "item")
    records = [OutRecord('["A1"]', "create", {"Code": "A1", "Name": "Bracket"}, send_id="1:1:a"),
               OutRecord('["B"]', "create", {"Code": "B" * 31, "Name": "Too long"}, send_id="1:2:b")]  # fmt: skip
    ok, long = connector.push(records)
    assert ok.error is None and ok.remote_id in fake.org.items
    assert isinstance(long.error, Skippable) and "has 31 characters; Xero allows 30" in str(long.error)
    assert [i["Code"] for i in fake.org.items.values()] == ["A1"]


_segment = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.lists(_segment, min_size=1, max_size=3).map(".".join), st.integers(), max_size=8))
def test_dotted_fields_nest_and_flatten_back(values: dict[str, int]) -> None:
    # Keys where one is a prefix path of another cannot both be leaves: keep the prefix-free ones.
    leaves = {k: v for k, v in values.items() if not any(o != k and o.startswith(k + ".") for o in values)}
    leaves = {k: v for k, v in leaves.items() if not any(k.startswith(o + ".") for o in leaves if o != k)}
    assert flatten(nest(leaves)) == leaves


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=50))
def test_idempotency_keys_fit_xero_and_follow_the_send_ids(send_ids: list[str]) -> None:
    seen: list[str] = []
    fake = FakeXero()
    client = make_client(fake)
    original = client.request

    def spy(method: str, path: str, **kwargs: object) -> object:
        seen.append(str(kwargs.get("idempotency_key")))
        return original(method, path, **kwargs)  # type: ignore[arg-type]

    client.request = spy  # type: ignore[method-assign]
    connector = XeroConnector(client, "contact")
    records = [OutRecord(f'["C{n}"]', "create", {"Name": f"Name {n}"}, send_id=s) for n, s in enumerate(send_ids)]
    connector.push(records)
    connector.push(records)  # the same sends again: the same key, replayed
    assert len(seen) == 2 and seen[0] == seen[1] and len(seen[0]) <= MAX_KEY
    assert len(fake.org.contacts) == len(records)


def test_fetch_reads_records_by_id_flattened_with_their_update_time() -> None:
    fake = FakeXero()
    connector = XeroConnector(make_client(fake), "contact")
    (made,) = connector.push([OutRecord('["C9"]', "create", {"Name": "Nine", "EmailAddress": "a@nine.example"},
                                        send_id="1:9:x")])  # fmt: skip
    assert made.remote_id is not None
    fake.org.contacts[made.remote_id]["EmailAddress"] = "typed@in.xero"  # a bookkeeper's edit
    found = connector.fetch([made.remote_id])
    assert found[made.remote_id]["EmailAddress"] == "typed@in.xero"
    assert found[made.remote_id]["ContactNumber"] == "C9" and found[made.remote_id]["updatedAt"].startswith("20")
