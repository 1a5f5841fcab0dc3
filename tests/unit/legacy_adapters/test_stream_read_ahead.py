"""``Database.stream_batches`` reads one batch ahead on a thread of its own, and closes cleanly.

The driver waits for the server with the GIL released, so the next batch is fetched while
the caller decodes and sends this one. These tests run a real SQLite file through the
export pool and watch the driver-level batches (``Database._batches``) as they are made.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from legacy_adapters.database import Database
from legacy_adapters.exceptions import DatabaseError
from legacy_adapters.mapping.model import DatabaseConfig

ROWS = 95
BATCH = 10


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'numbers.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(f"INSERT INTO numbers (n) {' UNION ALL '.join(f'SELECT {i}' for i in range(ROWS))}")
    engine.dispose()
    db = Database(DatabaseConfig(url=url))
    yield db
    db.dispose()


STATEMENT = sa.select(sa.column("n")).select_from(sa.table("numbers")).order_by(sa.column("n"))


class _Watched:
    """Wraps ``Database._batches``: which thread made each batch, and an event per batch made."""

    def __init__(self, database: Database, monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> None:
        self.threads: list[str] = []
        self.made = [threading.Event() for _ in range(ROWS // BATCH + 2)]
        self.closed_on: str | None = None
        real = database._batches

        def watched(*args: Any) -> Iterator[Sequence[Sequence[Any]]]:
            try:
                for i, batch in enumerate(real(*args)):
                    if i == fail_at:
                        raise DatabaseError("the server went away")
                    self.threads.append(threading.current_thread().name)
                    self.made[i].set()
                    yield batch
            finally:
                self.closed_on = threading.current_thread().name

        monkeypatch.setattr(database, "_batches", watched)


def test_the_next_batch_is_fetched_while_the_caller_holds_this_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = _Watched(database, monkeypatch)
    stream = database.stream_batches(STATEMENT, BATCH)
    first = next(stream)
    assert [r[0] for r in first] == list(range(BATCH))
    # Nobody asked for the second batch yet: it is fetched anyway, and no further.
    assert watched.made[1].wait(5), "the second batch was not read ahead"
    assert not watched.made[2].wait(0.2), "more than one batch was read ahead"
    rest = [r[0] for batch in stream for r in batch]
    assert rest == list(range(BATCH, ROWS))
    caller = threading.current_thread().name
    assert all(name.startswith("bridgehead-fetch") for name in watched.threads), watched.threads
    assert caller not in watched.threads
    assert watched.closed_on is not None and watched.closed_on.startswith("bridgehead-fetch")
    assert database.export_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_closing_early_waits_for_the_fetch_in_flight_and_gives_the_connection_back(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = _Watched(database, monkeypatch)
    stream = database.stream_batches(STATEMENT, BATCH)
    next(stream)
    stream.close()  # a client that went away after one batch
    assert watched.closed_on is not None and watched.closed_on.startswith("bridgehead-fetch")
    assert database.export_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert len(watched.threads) <= 2  # the one taken and at most the one read ahead


def test_a_failed_fetch_reaches_the_caller_after_the_batches_before_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Watched(database, monkeypatch, fail_at=3)
    stream = database.stream_batches(STATEMENT, BATCH)
    got = [next(stream) for _ in range(3)]
    assert [r[0] for batch in got for r in batch] == list(range(3 * BATCH))
    with pytest.raises(DatabaseError, match="went away"):
        next(stream)
    assert database.export_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_keyset_pages_of_page_rows_are_handed_on_in_batches(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buffering driver's pages after the first hold ``page_rows``: one statement per page, batches of BATCH."""
    monkeypatch.setattr(database.backend, "buffers_results", True)
    monkeypatch.setattr(database.backend, "page_rows", 25)
    asked: list[tuple[Any, int]] = []

    def page_after(last: Sequence[Any] | None, limit: int) -> sa.Executable:
        asked.append((None if last is None else last[0], limit))
        after = STATEMENT if last is None else STATEMENT.where(sa.column("n") > last[0])
        return after.limit(limit)

    batches = list(database.stream_batches(STATEMENT, BATCH, pages=page_after))
    assert [r[0] for batch in batches for r in batch] == list(range(ROWS))
    # 95 rows: a first page of one batch (the first byte waits for no more), then 25, 25, 25, 10
    assert [len(b) for b in batches] == [10] + [10, 10, 5] * 3 + [10]
    assert asked == [(None, 10), (9, 25), (34, 25), (59, 25), (84, 25)]  # the short last page ends it
    assert database.export_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
