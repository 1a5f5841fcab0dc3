"""Two workers on one PostgreSQL state store share a sync's work without sending any record twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.state.sync_store import SyncStore
from tests.conftest import private_pg_schema


@pytest.fixture
def pg_store() -> Iterator[SyncStore]:
    with private_pg_schema() as url:
        store = SyncStore.from_url(url)
        yield store
        store.db.dispose()


def test_two_workers_split_the_outbox(make_engine, fake: FakeShopify, pg_store: SyncStore, sync_config) -> None:
    first = make_engine(worker="worker-a")
    second = make_engine(worker="worker-b")
    first.store = second.store = pg_store
    # Plan once, then let both workers drain the outbox at the same time.
    first._plan("items", sync_config.syncs["items"], __import__("sync.engine").engine.RunReport(0, "items"), False)
    assert pg_store.pending("items") == 200
    reports = {}

    def work(engine, name):
        reports[name] = engine.run("items")

    threads = [threading.Thread(target=work, args=(e, n)) for e, n in ((first, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writes = Counter(ident for op, ident in fake.shop.writes if op == "productSet")
    assert len(writes) == 200 and max(writes.values()) == 1, "a record was sent by both workers"
    assert reports["a"].done["create"] + reports["b"].done["create"] == 200
    assert reports["a"].done["create"] > 0 and reports["b"].done["create"] > 0, "one worker did all the work"
    assert pg_store.pending("items") == 0


def test_two_workers_share_the_shops_cost_bucket(make_engine, fake: FakeShopify, pg_store: SyncStore) -> None:
    # Shopify's leaky bucket, scaled down so the run takes seconds: 300 points, 600 restored per second.
    # 200 products are 20 requests of 100 points: twice the bucket, so pacing on it is what is tested.
    fake.bucket = CostBucket(maximum=300, restore_rate=600)
    first, second = make_engine(worker="worker-a"), make_engine(worker="worker-b")
    first.store = second.store = pg_store
    reports = {}
    threads = [threading.Thread(target=lambda e=e, n=n: reports.update({n: e.run("items")}))
               for e, n in ((first, "a"), (second, "b"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.throttled <= 1, f"{fake.throttled} THROTTLED answers: the workers paced on separate views"
    writes = Counter(ident for op, ident in fake.shop.writes if op == "productSet")
    assert len(writes) == 200 and max(writes.values()) == 1, "a record was written twice"
    assert all(r.failed == 0 for r in reports.values()) and pg_store.pending("items") == 0
