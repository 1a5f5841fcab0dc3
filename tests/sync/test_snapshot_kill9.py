"""A process killed with SIGKILL in the middle of a snapshot pass's batch leaves the state store consistent,
and the next pass finds exactly the deletes: nothing the dead pass marked hides one, nothing it wrote is lost.

The child marks a first batch, stores fingerprints as a delivery would, and dies inside its second
batch's transaction (SQLite: from SQLite's progress handler, mid-statement; PostgreSQL: while the
server runs the statement).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import sync_store_on

KEYS = [f'["K{n:05}"]' for n in range(3000)]
GONE = set(KEYS[::7])  # deleted at the source after the killed pass

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from sync.state.sync_store import SyncStore
    keys = [f'["K{n:05}"]' for n in range(3000)]
    store = SyncStore.from_url(sys.argv[1])
    scratch = store.snapshot_pass("s")
    scratch.see([(k, "old") for k in keys[:1000]])
    store.accept("s", {k: "new" for k in keys[:500]})  # a delivery while the pass runs
    die = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
    if store.engine.dialect.name == "sqlite":
        scratch.conn.connection.dbapi_connection.set_progress_handler(lambda: die(), 2000)
    else:
        threading.Timer(0.05, die).start()
    while True:  # the kill lands inside one of these batches' transactions
        scratch.see([(k, "old") for k in keys[1000:]])
    """
)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_pass_killed_mid_batch_leaves_a_store_the_next_pass_diffs_exactly(kind: str, tmp_path: Path) -> None:
    with sync_store_on(kind, tmp_path) as store:
        store.accept("s", {k: "old" for k in KEYS})
        child = subprocess.run([sys.executable, "-c", CHILD, store.db.url], capture_output=True, text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, child.stderr
        if kind == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # What the dead process committed stays: its delivery's fingerprints.
        assert store.fingerprints("s", KEYS[:500]) == {k: "new" for k in KEYS[:500]}
        alive = [k for k in KEYS if k not in GONE]
        with store.snapshot_pass("s") as scratch:
            changed = scratch.see([(k, "old") for k in alive])
            assert [alive[n] for n in changed] == [k for k in alive if k in KEYS[:500]]
            assert sorted(k for part in scratch.unseen(batch_size=100) for k in part) == sorted(GONE)
        with store.engine.connect() as conn:  # the store's tables are the only ones there: no scratch left behind
            tables = set(sa.inspect(conn).get_table_names())
            assert "sync_pass_seen" not in tables and "sync_fingerprints" in tables
