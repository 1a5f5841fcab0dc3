"""``/metrics`` reports the syncs from the state store: runs, records, DLQ, lag, rate budget."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.mapping import Mapping
from sync.connectors.shopify.fake import FakeShopify
from sync.state.sync_store import SyncStore


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value in the Prometheus text format; None when absent."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.rpartition(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_sync_metrics_move_with_runs(
    make_engine: Any, sync_mapping: Mapping, store: SyncStore, fake: FakeShopify, writable_db: Path
) -> None:
    with TestClient(create_app(sync_mapping, state=store.db)) as client:
        before = client.get("/metrics").text
        assert sample(before, "bridgehead_sync_store_up") == 1
        assert sample(before, "bridgehead_sync_store_runs_total", sync="customers", outcome="succeeded") is None
        assert sample(before, "bridgehead_sync_store_lag_seconds", sync="customers") == 0

        engine = make_engine()
        once = msgspec.structs.replace(engine.config.syncs["customers"], max_attempts=1)
        engine.config = msgspec.structs.replace(engine.config, syncs={**engine.config.syncs, "customers": once})
        report = engine.run("customers")
        assert report.status == "succeeded"
        after = client.get("/metrics").text
        assert sample(after, "bridgehead_sync_store_runs_total", sync="customers", outcome="succeeded") == 1
        sent = sample(after, "bridgehead_sync_store_records_total", sync="customers", destination="shop", result="sent")
        assert sent is not None and sent == sum(report.done.values()) > 0
        remaining = sample(after, "bridgehead_sync_store_rate_limit_remaining", destination="shop")
        assert remaining is not None and 0 <= remaining <= fake.bucket.maximum
        assert "127.0.0.1:8787" not in after and "sandbox-token" not in after  # names, never URLs or tokens

        # Two customers the shop refuses: with one attempt allowed they are dead-lettered at once.
        with sqlite3.connect(writable_db) as conn:
            bad = conn.execute("SELECT CUSTNO FROM CUSTMAST WHERE DELFLG = 'N' ORDER BY CUSTNO LIMIT 2").fetchall()
            conn.executemany("UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE CUSTNO = ?", bad)
        refused = engine.run("customers")
        assert refused.dead_lettered == 2
        later = client.get("/metrics").text
        assert sample(later, "bridgehead_sync_store_dlq_records", sync="customers") == 2
        dead = sample(
            later, "bridgehead_sync_store_records_total", sync="customers", destination="shop", result="dead_lettered"
        )
        assert dead == 2
        assert sample(later, "bridgehead_sync_store_runs_total", sync="customers", outcome=refused.status) >= 1  # type: ignore[operator]

        # The shop refuses every call: the planned changes wait in the outbox, and lag grows from 0.
        fake.token = "rotated-by-the-merchant"
        with sqlite3.connect(writable_db) as conn:
            conn.execute(
                "UPDATE CUSTMAST SET CUSTNM = 'Renamed Ltd' WHERE CUSTNO = (SELECT MIN(CUSTNO) FROM CUSTMAST"
                " WHERE DELFLG = 'N' AND EMAIL <> 'not-an-email')"
            )
        failed = engine.run("customers")
        assert failed.status != "succeeded"
        stuck = client.get("/metrics").text
        assert sample(stuck, "bridgehead_sync_store_outbox_records", sync="customers") >= 1  # type: ignore[operator]
        assert sample(stuck, "bridgehead_sync_store_lag_seconds", sync="customers") > 0  # type: ignore[operator]


def test_a_state_store_that_does_not_answer_leaves_metrics_up(sync_mapping: Mapping, store: SyncStore) -> None:
    app = create_app(sync_mapping, state=store.db)
    with TestClient(app) as client:
        store.engine.dispose()
        Path(str(store.engine.url.database)).unlink()  # the file is gone: every query fails
        Path(str(store.engine.url.database)).mkdir()  # and cannot be re-created as a database
        response = client.get("/metrics")
        assert response.status_code == 200
        assert sample(response.text, "bridgehead_sync_store_up") == 0
        assert "bridgehead_http_requests_total" in response.text
