"""``python -m bench.sync_snapshot``: the snapshot diff over 1M rows, and sync throughput at the shop's rate limit.

python -m bench.sync_snapshot                       # both (about 4 min on 2 cores)
python -m bench.sync_snapshot --only snapshot       # 1M-row diff: time and peak RSS per pass
python -m bench.sync_snapshot --only throughput --records 2000

Snapshot: the demo's JOBMAST (1M jobs, ``bench/.cache/jobs-1000000-<schema tag>.db``, made
once by ``bench/data.py``) read through the demo mapping's ``jobs`` resource,
every field. Each pass runs in its own process so its peak RSS is its own:

- ``stream``: the baseline, ``Reader.stream`` of the same rows, decoded, nothing else;
- ``first``: the diff against an empty state, storing each batch's fingerprints as
  delivery would (all rows are changes);
- ``unchanged``: the diff again (no changes);
- ``one_percent``: after 1 % of the stored fingerprints are made stale (as if those
  rows had changed since delivery: the diff's work is the same), the diff again.

Throughput: the ``items`` sync (one product per legacy item) into the fake shop on
the Advanced-plan bucket (2,000 points, 200 restored per second) over
``httpx.MockTransport``, so the bucket, not the network, is the limit. Reported:
points the shop charged over the points the bucket allowed during the run
(``maximum + restoreRate x elapsed``), and THROTTLED answers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import data

__all__ = ("main",)

STATE = data.WORK / "sync-snapshot-state.db"
"""This checkout's own (``bench/.work``): the cache may be shared by several checkouts."""
DEFAULT_STATE_URL = f"sqlite:///{STATE}"
PASSES = ("stream", "first", "unchanged", "one_percent")
BATCH = 5000


def _rss_mb() -> float:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries the latter across ``exec``,
    so a pass would report the bench parent's peak (the database generation's) when that was higher."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _environ(db: Path, state: Path) -> dict[str, str]:
    return {
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{state.with_name('unused-state.db')}",
        "BRIDGEHEAD_JWT_SECRET": data.JWT_SECRET,
    }


def _one_pass(name: str, db: Path, state_url: str) -> dict[str, Any]:
    """Run one pass in this process; what it did, how long, and this process's peak RSS."""
    from legacy_adapters.database import Database
    from legacy_adapters.demo import DEMO_MAPPING_PATH
    from legacy_adapters.mapping import load_mapping
    from legacy_adapters.query.resource import bind_version
    from legacy_adapters.reader import Reader, ReadQuery
    from sync.changes import SnapshotHashDetector
    from sync.state.sync_store import SyncStore

    mapping = load_mapping(DEMO_MAPPING_PATH, _environ(db, STATE))
    jobs = bind_version(mapping, "v1")["jobs"]
    fields = tuple(jobs.fields.values())
    database = Database(mapping.database)
    read = [0]

    class CountingReader(Reader):
        def stream_batches(self, query: ReadQuery, *, batch_size: int = 2000) -> Any:
            for batch in super().stream_batches(query, batch_size=batch_size):
                read[0] += len(batch)
                yield batch

    reader = CountingReader(database)
    changes = 0
    # The store's schema is made (or found current) before the clock starts: on an empty store that is
    # Alembic's import and every migration (~2 s), a process's start-up, not part of any pass.
    tag = f"bench-snapshot-{os.getpid()}"  # names this pass's PostgreSQL backends, whose CPU is the server's share
    url = sa.make_url(state_url)
    if url.get_backend_name() == "postgresql":
        state_url = url.update_query_dict({"application_name": tag}).render_as_string(hide_password=False)
    store = None if name == "stream" else SyncStore.from_url(state_url)
    server_before = _server_cpu(store, tag)
    started, cpu = time.perf_counter(), time.process_time()
    if store is None:
        for _ in reader.stream_batches(ReadQuery(jobs, fields), batch_size=BATCH):
            pass
    else:
        detector = SnapshotHashDetector("jobs", jobs, fields, reader, store, BATCH)
        for batch in detector.detect():
            changes += len(batch)
            if name == "first":  # delivery stores the fingerprints; the next passes compare against them
                store.accept("jobs", {c.key: c.fingerprint for c in batch if c.fingerprint})
        detector.commit()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    server_after = _server_cpu(store, tag)
    server = None
    if server_before is not None and server_after is not None:
        server = sum(after - server_before.get(pid, 0.0) for pid, after in server_after.items())
    if store is not None:
        store.db.dispose()
    database.dispose()
    return {"pass": name, "seconds": seconds, "cpu_seconds": cpu_seconds, "rows": read[0], "changes": changes,
            "rss_mb": _rss_mb(), "server_cpu_seconds": server}  # fmt: skip


def _server_cpu(store: Any, tag: str) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend serving this process (its ``application_name``), read from
    ``/proc``: the state store's share of a pass, which the pass's own CPU seconds leave out. None on SQLite,
    or when the server is not on this machine."""
    if store is None or not store.db.is_postgresql:
        return None
    with store.engine.connect() as conn:
        pids = conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :tag"), {"tag": tag})
        found = [int(pid) for (pid,) in pids]
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in found:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return out


def _stale_one_percent(state_url: str) -> int:
    """Every hundredth stored fingerprint in key order made stale, as if those rows had changed."""
    every_100th = (
        "SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) AS n FROM sync_fingerprints "
        "WHERE sync = 'jobs') AS numbered WHERE n % 100 = 0"
    )
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:
        changed = conn.execute(sa.text(
            f"UPDATE sync_fingerprints SET fingerprint = 'stale' WHERE sync = 'jobs' AND key IN ({every_100th})"
        )).rowcount  # fmt: skip
    engine.dispose()
    return int(changed)


def _empty_state(state_url: str) -> None:
    url = sa.make_url(state_url)
    if url.get_backend_name() == "sqlite":
        state = Path(url.database or STATE)
        state.parent.mkdir(parents=True, exist_ok=True)
        for path in (state, state.with_name(f"{state.name}-wal"), state.with_name(f"{state.name}-shm")):
            path.unlink(missing_ok=True)
        return
    engine = sa.create_engine(state_url)
    with engine.begin() as conn:
        if sa.inspect(conn).has_table("sync_fingerprints"):
            conn.execute(sa.text("DELETE FROM sync_fingerprints WHERE sync = 'jobs'"))
    engine.dispose()


def run_snapshot(rows: int, state_url: str = DEFAULT_STATE_URL) -> list[dict[str, Any]]:
    db = data.ensure_database(rows)
    _empty_state(state_url)
    results = []
    for name in PASSES:
        if name == "one_percent":
            print(f"bench: {_stale_one_percent(state_url):,} fingerprints made stale", flush=True)
        print(f"bench: snapshot pass {name} ...", flush=True)
        out = subprocess.run(
            [sys.executable, "-m", "bench.sync_snapshot", "--pass", name, "--db", str(db), "--state-url", state_url],
            check=True, capture_output=True, text=True, cwd=data.ROOT,
        )  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def run_throughput(records: int) -> dict[str, Any]:
    """The items sync into the fake shop at its bucket's pace; points used over points allowed."""
    import httpx

    from legacy_adapters.database import Database
    from legacy_adapters.demo import DEMO_MAPPING_PATH, create_demo_database
    from legacy_adapters.mapping import load_mapping
    from sync.config import load_sync_config
    from sync.connectors.shopify.fake import CostBucket, FakeShopify
    from sync.engine import SyncEngine
    from sync.state.memory import MemoryStore

    db = data.CACHE / f"sync-items-{records}.db"
    if not db.exists():  # the demo makes one item per ten jobs
        data.CACHE.mkdir(parents=True, exist_ok=True)
        create_demo_database(db, rows=records * 10)
    mapping = load_mapping(DEMO_MAPPING_PATH, _environ(db, STATE))
    config = load_sync_config(mapping.sync)
    fake = FakeShopify(bucket=CostBucket(maximum=2000, restore_rate=200))
    charged = {"points": 0.0, "requests": 0, "throttled": 0}

    def metered(request: httpx.Request) -> httpx.Response:
        response = fake.handler(request)
        body = json.loads(response.content or b"{}")
        cost = (body.get("extensions") or {}).get("cost") or {}
        charged["points"] += cost.get("actualQueryCost") or 0
        charged["requests"] += 1
        codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or [] if isinstance(e, dict)]
        charged["throttled"] += "THROTTLED" in codes
        return response

    database = Database(mapping.database)
    with httpx.Client(transport=httpx.MockTransport(metered)) as http:
        engine = SyncEngine(config, mapping, database, MemoryStore(), http)
        print(f"bench: throughput, items sync of {records:,} records ...", flush=True)
        started = time.perf_counter()
        (report,) = engine.run_all(only="items")
        elapsed = time.perf_counter() - started
    database.dispose()
    allowed = fake.bucket.maximum + fake.bucket.restore_rate * elapsed
    delivered = sum(report.done.values())
    return {
        "records": delivered, "status": report.status, "seconds": elapsed, "points": charged["points"],
        "allowed": allowed, "share": charged["points"] / allowed, "requests": charged["requests"],
        "throttled": charged["throttled"], "ceiling_rps": allowed / (charged["points"] / delivered) / elapsed,
        "rps": delivered / elapsed,
    }  # fmt: skip


def render(snapshot: list[dict[str, Any]], throughput: dict[str, Any] | None) -> str:
    lines = []
    if snapshot:
        base = snapshot[0]
        lines += [
            f"Snapshot diff, {base['rows']:,} JOBMAST rows (demo mapping `jobs`, every field), batch {BATCH:,}",
            "",
            "| pass | time (s) | CPU (s) | server CPU (s) | rows/s | peak RSS (MiB) | changes | time vs stream "
            "| CPU vs stream | RSS vs stream |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in snapshot:
            rate = base["rows"] / r["seconds"]
            server = r.get("server_cpu_seconds")
            lines.append(
                f"| {r['pass']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {'-' if server is None else f'{server:.1f}'} "
                f"| {rate:,.0f} | {r['rss_mb']:.0f} | {r['changes']:,} | {r['seconds'] / base['seconds']:.2f}× "
                f"| {r['cpu_seconds'] / base['cpu_seconds']:.2f}× | {r['rss_mb'] / base['rss_mb']:.2f}× |"
            )
    if throughput:
        t = throughput
        lines += [
            "",
            "Throughput into the fake shop at its rate limit (Advanced plan bucket: 2,000 points, 200/s)",
            "",
            "| records | time (s) | records/s | ceiling records/s | points used | points allowed | share of limit "
            "| requests | THROTTLED |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {t['records']:,} | {t['seconds']:.1f} | {t['rps']:.1f} | {t['ceiling_rps']:.1f} | {t['points']:,.0f} "
            f"| {t['allowed']:,.0f} | {t['share']:.0%} | {t['requests']:,} | {t['throttled']} |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_snapshot", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("snapshot", "throughput"))
    parser.add_argument("--rows", type=int, default=1_000_000, help="jobs in the cached demo database")
    parser.add_argument("--state-url", default=DEFAULT_STATE_URL,
                        help="state store of the snapshot passes (a PostgreSQL URL: its 'jobs' fingerprints are reset)")  # fmt: skip
    parser.add_argument("--records", type=int, default=2000, help="items synced in the throughput run")
    parser.add_argument("--out", help="also write the table to this file (and its figures beside it, .json)")
    parser.add_argument("--pass", dest="one", choices=PASSES, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_one_pass(args.one, Path(args.db), args.state_url)))
        return
    snapshot = run_snapshot(args.rows, args.state_url) if args.only in (None, "snapshot") else []
    throughput = run_throughput(args.records) if args.only in (None, "throughput") else None
    table = render(snapshot, throughput)
    print(table)
    if args.out:  # the table, and its figures for the targets in bench/results/latest.md
        Path(args.out).write_text(table + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps({"snapshot": snapshot, "throughput": throughput}))


if __name__ == "__main__":
    main()
