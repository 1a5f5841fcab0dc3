"""``python -m bench.sync_latency``: how long a stock change takes to reach the shop while a full items run is going.

python -m bench.sync_latency                 # 2,000 items, the demo's schedule (stock every 30 s): ~5 min
python -m bench.sync_latency --items 200     # a quick look (about a minute)

The 60-second stock promise (issue 12): the demo's syncs run the way ``bridgehead
sync run --loop`` runs them (``sync.scheduler.SyncLoop``: one thread per sync, each
on its own ``interval_s``), against the fake shop over ``httpx.MockTransport`` with
Shopify's Standard-plan cost bucket (1,000 points, 100 restored per second), the
state in a SQLite file (the default setup).

1. Initial load of items and stock with an unlimited bucket (not measured).
2. Every item's price changes: the items sync has a catalogue-wide run to do
   (10 points per product: about 20 s per 200 items at the Standard rate). A plan
   that changes every product trips the approval gate (``sync.approval``: more than
   10 % of the remote records), so the run stops in ``awaiting_approval`` and the
   following items runs end ``cancelled`` ("run N is waiting for approval"): the bench
   approves it at once, as the operator of a planned price change would
   (``bridgehead sync approve``), and the approved push is the items run measured.
3. While that run goes on, one random STKBAL row gains 7 units every ``--every``
   seconds; a watcher polls the shop and notes when each change shows.

Bounded: the items run is given ``--timeout`` seconds (default 600; ~200 s are
needed for 2,000 items at the Standard rate), the changes made during it then get
two stock intervals and 30 s to arrive. A change that never arrives counts as
infinitely late in the percentiles, and a run that did not finish says so.

Reported: stock latency p50 / p99 / max over the changes made during the items
run, how long the items run took, how every run of both syncs ended, and the
THROTTLED answers the shop gave.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import data

__all__ = ("main", "run")


def _environ(db: Path) -> dict[str, str]:
    return {"BRIDGEHEAD_DB_URL": f"sqlite:///{db}", "BRIDGEHEAD_JWT_SECRET": data.JWT_SECRET}


def _database(items: int) -> Path:
    from legacy_adapters.demo import create_demo_database

    source = data.CACHE / f"sync-latency-{items}-{data.demo_schema_tag()}.db"
    if not source.exists():  # the demo makes one item per ten jobs
        data.CACHE.mkdir(parents=True, exist_ok=True)
        partial = source.with_name(f"{source.name}.{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        create_demo_database(partial, rows=items * 10)
        partial.replace(source)
    work = data.work_path(f"sync-latency-{items}-work.db")
    work.write_bytes(source.read_bytes())  # every run starts from the same data
    return work


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(items: int, every: float, timeout_s: float = 600.0, seed: int = 7) -> dict[str, Any]:
    import httpx

    from legacy_adapters.database import Database
    from legacy_adapters.demo import DEMO_MAPPING_PATH
    from legacy_adapters.mapping import load_mapping
    from sync.config import load_sync_config
    from sync.connectors.shopify.fake import CostBucket, FakeShopify
    from sync.engine import SyncEngine
    from sync.scheduler import SyncLoop
    from sync.state.sync_store import SyncStore

    db = _database(items)
    state = data.work_path("sync-latency-state.db")
    for path in (state, state.with_suffix(".db-wal"), state.with_suffix(".db-shm")):
        path.unlink(missing_ok=True)
    mapping = load_mapping(DEMO_MAPPING_PATH, _environ(db))
    config = load_sync_config(mapping.sync)
    config = type(config)(**{**{f: getattr(config, f) for f in config.__struct_fields__},
                             "syncs": {n: config.syncs[n] for n in ("items", "stock")}})  # fmt: skip
    fake = FakeShopify(bucket=CostBucket(maximum=1e9, restore_rate=1e9))
    store = SyncStore.from_url(f"sqlite:///{state}")
    database = Database(mapping.database)
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    engine = SyncEngine(config, mapping, database, store, http)
    print(f"bench: initial load of {items:,} items and their stock ...", flush=True)
    engine.run_all()
    fake.bucket = CostBucket(maximum=1000, restore_rate=100)  # Standard plan from here on
    fake.throttled = 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ITEMMAST SET PRICE = PRICE + 100")
        slots = conn.execute("SELECT ITEMNO, WHSE FROM STKBAL").fetchall()
    conn.close()
    by_sku = {p["variants"][0]["sku"]: p["variants"][0]["inventoryItem"] for p in fake.shop.products.values()}
    location = {n: g for g, n in fake.shop.locations.items()}
    slots = [(i, w) for i, w in slots if i.strip() in by_sku]
    rng = random.Random(seed)
    latencies: list[float] = []
    pending: list[tuple[float, tuple[str, str], int]] = []
    stop = threading.Event()

    def shop_qty(slot: tuple[str, str]) -> int:
        return fake.shop.inventory.get((by_sku[slot[0].strip()], location[slot[1].strip()]), 0)

    def writer() -> None:
        while not stop.wait(every):
            itemno, whse = rng.choice(slots)
            if any(s == (itemno, whse) for _, s, _ in pending):
                continue
            before = shop_qty((itemno, whse))
            with sqlite3.connect(db, timeout=30) as conn:
                conn.execute("UPDATE STKBAL SET ONHAND = ONHAND + 7000 WHERE ITEMNO = ? AND WHSE = ?", (itemno, whse))
            conn.close()
            pending.append((time.monotonic(), (itemno, whse), before))

    def watcher() -> None:
        while not stop.wait(0.1):
            for entry in list(pending):
                changed_at, slot, before = entry
                if shop_qty(slot) != before:
                    latencies.append(time.monotonic() - changed_at)
                    pending.remove(entry)

    items_done = threading.Event()
    outcomes: Counter[str] = Counter()
    approved: list[int] = []

    def on_report(report: Any) -> None:
        outcomes[f"{report.sync} {report.status}"] += 1
        if report.sync != "items":
            return
        if report.status == "awaiting_approval" and not approved:
            # The planned price change, approved as an operator would: the push runs in this thread.
            approved.append(report.run_id)
            print(f"bench: items run {report.run_id} awaits approval ({report.error}); approving it", flush=True)
            on_report(engine.approve(report.run_id, "bench"))
        elif report.done["update"]:
            items_done.set()
        elif report.status not in ("succeeded",):
            print(f"bench: items run {report.run_id} ended {report.status}: {report.error}", flush=True)

    loop = SyncLoop(engine, ["items", "stock"], on_report=on_report)
    threads = [threading.Thread(target=f, daemon=True) for f in (writer, watcher)]
    print(
        f"bench: full items run ({items:,} price changes) with a stock change every {every:g} s "
        f"(at most {timeout_s:g} s) ...",
        flush=True,
    )
    started = time.monotonic()
    loop.start()
    for t in threads:
        t.start()
    finished = items_done.wait(timeout_s)
    items_seconds = time.monotonic() - started
    stop.set()  # no more changes; let the ones made arrive
    drain_s = 2 * config.syncs["stock"].interval_s + 30
    print(f"bench: items run {'done' if finished else 'NOT done'} after {items_seconds:.0f} s; "
          f"{len(pending)} stock changes still on their way (waiting up to {drain_s:g} s)", flush=True)  # fmt: skip
    deadline = time.monotonic() + drain_s
    while pending and time.monotonic() < deadline:
        for entry in list(pending):
            if shop_qty(entry[1]) != entry[2]:
                latencies.append(time.monotonic() - entry[0])
                pending.remove(entry)
        time.sleep(0.1)
    loop.stop.set()
    if not finished:  # the push checks the pause between batches: the items thread ends its run soon
        store.set_paused("items", True)
    loop.join(60)
    http.close()
    database.dispose()
    store.db.dispose()
    # A change that never arrived is later than any that did: it sorts last, as infinity.
    every_change = latencies + [math.inf] * len(pending)
    return {
        "items": items, "items_seconds": items_seconds, "items_finished": finished, "timeout_s": timeout_s,
        "changes": len(every_change), "lost": len(pending),
        "p50": statistics.median(every_change) if every_change else math.nan,
        "p99": _percentile(every_change, 0.99) if every_change else math.nan,
        "max": max(every_change, default=math.nan), "throttled": fake.throttled,
        "stock_interval": config.syncs["stock"].interval_s, "approved": approved, "runs": dict(outcomes),
    }  # fmt: skip


def _seconds(value: float) -> str:
    return "never" if math.isinf(value) else ("–" if math.isnan(value) else f"{value:.1f}")


def render(r: dict[str, Any]) -> str:
    runs = ", ".join(f"{what} × {n}" for what, n in sorted(r["runs"].items()))
    lines = [
        f"Stock latency during a full items run ({r['items']:,} price changes, Standard bucket, "
        f"stock interval_s {r['stock_interval']:g})",
        "",
        "| items run (s) | stock changes | not arrived | p50 (s) | p99 (s) | max (s) | THROTTLED |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['items_seconds']:.0f}{'' if r['items_finished'] else ' (not finished)'} | {r['changes']} | {r['lost']} "
        f"| {_seconds(r['p50'])} | {_seconds(r['p99'])} | {_seconds(r['max'])} | {r['throttled']} |",
        "",
        f"Runs: {runs}. The catalogue-wide plan waited for approval (more than 10 % of the products change) "
        f"and was approved by the bench at once (run {', '.join(map(str, r['approved'])) or 'none'})."
        if r["approved"]
        else f"Runs: {runs}.",
    ]
    if not r["items_finished"]:
        lines.append(f"**The items run did not finish within {r['timeout_s']:g} s**: the figures cover that time only.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000, help="items in the demo database (one price change each)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between stock changes")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds the items run may take")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    figures = run(args.items, args.every, args.timeout)
    table = render(figures)
    print(table)
    if args.out:  # the table, and its figures for the targets in bench/results/latest.md
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
