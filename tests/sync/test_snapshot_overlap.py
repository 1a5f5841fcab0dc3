"""Two snapshot passes that overlap (a worker whose planning lease lapsed mid-pass) plan no deletes of
rows that exist (issue 12, item 4). The interleaving is forced, not hoped for: worker A's read of the
legacy table stops after its first batch until worker B has run a whole pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from legacy_adapters.reader import Reader, ReadQuery
from sync.config import DetectorConfig
from sync.connectors.shopify.fake import FakeShopify
from sync.state.sync_store import SyncStore

LEASE_S = 0.3


class GatedReader(Reader):
    """Stops a full-table stream after ``after`` rows until ``resume`` is set (``paused`` says it is there)."""

    def __init__(self, database: Any, after: int) -> None:
        super().__init__(database)
        self.after, self.paused, self.resume = after, threading.Event(), threading.Event()

    def stream_batches(self, query: ReadQuery, *, batch_size: int = 2000) -> Iterator[list[dict[str, Any]]]:
        read = 0
        for batch in super().stream_batches(query, batch_size=batch_size):
            if read >= self.after and not query.conditions and not self.resume.is_set():
                self.paused.set()
                assert self.resume.wait(30), "the test never let worker A go on"
            read += len(batch)
            yield batch


def test_a_pass_that_lost_its_lease_plans_no_deletes(
    make_engine: Any, fake: FakeShopify, shared_store: SyncStore, sync_config: Any
) -> None:
    spec = msgspec.structs.replace(sync_config.syncs["items"], detector=DetectorConfig(batch_size=50))
    config = msgspec.structs.replace(sync_config, lease_s=LEASE_S, syncs={"items": spec})
    a, b = make_engine(worker="worker-a"), make_engine(worker="worker-b")
    for engine in (a, b):
        engine.store, engine.config = shared_store, config
    assert b.run("items").done["create"] == 200
    gate = GatedReader(a.reader.database, after=50)
    a.reader = gate
    reports: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: reports.update(a=a.run("items")))
    thread.start()
    assert gate.paused.wait(30), "worker A never started its pass"
    time.sleep(LEASE_S + 0.2)  # A is stuck mid-pass: its lease lapses
    reports["b"] = b.run("items")  # B takes the lease, runs a whole pass, commits
    gate.resume.set()
    thread.join(30)
    assert reports["b"].status == "succeeded" and sum(reports["b"].planned.values()) == 0
    assert reports["a"].planned["delete"] == 0, "a lapsed pass planned deletes of rows that exist"
    assert shared_store.pending("items") == 0
    assert len(fake.shop.products) == 200
    assert not [w for w in fake.shop.writes if w[0] == "productDelete"]


def test_a_real_delete_is_still_planned_after_an_overlap(
    make_engine: Any, fake: FakeShopify, shared_store: SyncStore, sync_config: Any, writable_db: Any
) -> None:
    import sqlite3

    config = msgspec.structs.replace(sync_config, lease_s=LEASE_S)
    engine = make_engine(worker="worker-a")
    engine.store, engine.config = shared_store, config
    engine.run("items")
    with sqlite3.connect(writable_db) as conn:
        (itemno,) = conn.execute("SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1").fetchone()
        conn.execute("DELETE FROM ITEMMAST WHERE ITEMNO = ?", (itemno,))
    conn.close()
    # A pass that never finished (its worker hung) saw the deleted row: the next pass does not share its set.
    dead = shared_store.snapshot_pass("items")
    dead.see([(f'["{itemno.strip()}"]', "as-it-was")])
    report = engine.run("items")
    dead.close()
    assert report.done["delete"] == 1 and len(fake.shop.products) == 199
