"""A worker killed with SIGKILL mid-run: the next run finishes the job, nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import httpx
import msgspec

from legacy_adapters.database import Database
from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.engine import SyncEngine
from sync.sandbox import SandboxServer
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ

WORKER = textwrap.dedent(
    """
    import os, sys, httpx, msgspec
    from legacy_adapters.database import Database
    from legacy_adapters.demo import DEMO_MAPPING_PATH
    from legacy_adapters.mapping import load_mapping
    from sync.config import load_sync_config
    from sync.engine import SyncEngine
    from sync.state.sync_store import SyncStore
    mapping = load_mapping(DEMO_MAPPING_PATH, dict(os.environ))
    config = msgspec.structs.replace(load_sync_config(mapping.sync), lease_s=1.0)
    engine = SyncEngine(config, mapping, Database(mapping.database), SyncStore.from_url(sys.argv[1]), httpx.Client())
    engine.run("items")
    """
)


def test_kill_minus_9_mid_run_then_recover(writable_db: Path, tmp_path: Path, sync_mapping, sync_config) -> None:
    # A slow shop (cost bucket refilled at 300 points/s) so the worker is surely mid-run when killed.
    fake = FakeShopify(bucket=CostBucket(maximum=300, restore_rate=300))
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    with SandboxServer(fake) as server:
        env = {**os.environ, **demo_environ(writable_db), "BRIDGEHEAD_SHOPIFY_URL": server.url}
        worker = subprocess.Popen([sys.executable, "-c", WORKER, state_url], env=env, cwd=Path(__file__).parents[2])
        deadline = time.monotonic() + 60
        while len(fake.shop.products) < 40 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = len(fake.shop.products)
        assert 0 < killed_at < 200, "the worker was not killed mid-run"

        store = SyncStore.from_url(state_url)
        killed = store.runs("items")[0]
        assert killed["status"] == "running"  # what a crash leaves behind
        time.sleep(1.1)  # the dead worker's leases expire
        config = msgspec.structs.replace(sync_config, lease_s=1.0)
        shop = msgspec.structs.replace(config.destinations["shop"], url=server.url)
        config = msgspec.structs.replace(config, destinations={"shop": shop})
        database = Database(sync_mapping.database)
        with httpx.Client() as http:
            report = SyncEngine(config, sync_mapping, database, store, http).run("items")
        database.dispose()
    assert report.status == "succeeded"
    # The next run closed the dead worker's run instead of leaving it "running" forever.
    history = {r["id"]: r for r in store.runs("items")}
    assert history[killed["id"]]["status"] == "abandoned"
    assert killed["worker"] in history[killed["id"]]["error"] and history[killed["id"]]["finished_at"] is not None
    # The killed run's history shows what it delivered: each request's records are counted as they are
    # recorded, so at most the one request in flight (10 products) is missing from its count.
    assert killed_at - 10 <= history[killed["id"]]["done_creates"] <= killed_at
    assert history[report.run_id]["done_creates"] == 200 - history[killed["id"]]["done_creates"]
    assert history[report.run_id]["status"] == "succeeded"
    keys = Counter(p["metafields"][("bridgehead", "legacy_key")] for p in fake.shop.products.values())
    assert len(keys) == 200 and max(keys.values()) == 1, "a product was created twice"
    assert store.pending("items") == 0 and store.id_count("items") == 200
    # Re-sent at most the claimed batch that was in flight when the worker died (identifier upserts absorb it).
    writes = Counter(ident for op, ident in fake.shop.writes if op == "productSet")
    assert sum(writes.values()) - 200 <= sync_config.syncs["items"].batch_size
