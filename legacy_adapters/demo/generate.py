"""Seeded generator of the demo legacy database: a 1998-style job shop in SQLite.

``create_demo_database(path, rows, seed)`` writes ``rows`` jobs and tables scaled
from it (customers ``rows/20`` (min 25), items ``rows/10`` (min 50), 3-5 routing
operations per job, each item stocked in 2-3 warehouses). The same seed always
gives the same file contents, so tests, benchmarks and bug reports can name a
database by ``(rows, seed)``.

Dirty rows — a deterministic sprinkle the gateway must survive, chosen per seed
(see ``DIRTY_KINDS``; each kind appears at least twice whatever the size):

- ``JOBMAST.DUEDT`` holding impossible dates such as 20230231 or 20241301;
- ``JOBMAST.JSTAT`` holding ``'X'``, a status letter no mapping knows;
- ``JOBMAST.NOTES`` with trailing spaces (a VARCHAR, so nothing pads it on purpose);
- ``CUSTMAST.EMAIL`` with leading and trailing spaces;
- soft-deleted rows: ``JOBMAST.DELFLG = 'Y'`` and ``CUSTMAST.DELFLG = 'Y'``
  (their operations and jobs stay behind, as they would);
- near-duplicate customers: a name repeated under a new number, differing
  only by letter case or by a doubled space.

Not dirty but legacy all the same: every CHAR value is right-padded to its
width, ``DUEDT`` uses 0 (none) and 99999999 (open-ended), ``STKBAL.CNTDT`` is
``''`` for never-counted bins, ``ITEMMAST.LASTRCV`` is 0 for never-received items.

Speed: one million jobs (about 5.4 million rows in all) take well under a
minute on two cores. Rows stream from generators into ``executemany`` in
chunks, the journal and fsync are off while loading, indexes are built after
the load, and the file is written under a temporary name and renamed into
place, so a crash never leaves a half-built database behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = (
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DEMO_SCHEMA_PATH",
    "DIRTY_KINDS",
    "DemoSummary",
    "create_demo_database",
    "upgrade_demo_database",
)

DEFAULT_ROWS = 2000
DEFAULT_SEED = 1998
DEMO_SCHEMA_PATH = Path(__file__).with_name("schema.sql")

DIRTY_KINDS = (
    "invalid_due_date",
    "unknown_status",
    "notes_trailing_spaces",
    "email_surrounding_spaces",
    "deleted_job",
    "deleted_customer",
    "near_duplicate_customer",
)
"""Names of the dirty-row kinds; ``DemoSummary.dirty`` counts each one."""

_JOB_BLOCK = 5_000
"""Jobs per random stream and per insert batch (with their ~20,000 operations)."""
_Row = tuple[object, ...]
_PARALLEL_FROM = 200_000
"""Jobs from which a second process shares the work; below it, starting one costs more than it saves."""
_CHUNK = 20_000
"""Rows per ``executemany`` call: large enough to amortise the call, small enough to stay flat in memory."""

_INVALID_DATES = (20230231, 20220230, 20210431, 20241301, 20190229, 20250000)
_STATUS_RECENT = "RRRRPPPHHCCC"
"""Status letters of recent jobs, by weight; old jobs are almost all complete."""

_FIRST = (
    "Acme", "Northern", "Precision", "Atlas", "Brunel", "Pennine", "Severn", "Thames",
    "Crown", "Albion", "Midland", "Castle", "Harbour", "Summit", "Vale", "Kestrel",
)  # fmt: skip
_TRADE = (
    "Tooling", "Engineering", "Fabrications", "Castings", "Motors",
    "Plastics", "Hydraulics", "Components", "Machining", "Springs",
)  # fmt: skip
_SUFFIX = ("Ltd", "Limited", "& Co", "plc", "Group", "(UK) Ltd")

_ITEM_KINDS = (
    ("BRKT", "BRACKET"), ("SHFT", "SHAFT"), ("GEAR", "SPUR GEAR"), ("PLT", "MOUNTING PLATE"),
    ("BUSH", "BUSHING"), ("HSG", "HOUSING"), ("FLNG", "FLANGE"), ("PIN", "DOWEL PIN"),
    ("SPCR", "SPACER"), ("VALV", "VALVE BODY"),
)  # fmt: skip
_MATERIALS = ("STEEL", "ST/STEEL", "ALUM", "BRASS", "NYLON", "CAST IRON")
_UOMS = ("EA ", "EA ", "EA ", "KG ", "M  ", "BOX", "PR ")
_WAREHOUSES = ("W01", "W02", "W03", "W05", "W07")

_ROUTE_STEPS = (
    ("SAW01", "CUT TO LENGTH"),
    ("CNC01", "CNC MILL OP 1"),
    ("CNC02", "CNC MILL OP 2"),
    ("LATHE1", "TURN O/D"),
    ("DRL01", "DRILL AND TAP"),
    ("WELD01", "WELD ASSEMBLY"),
    ("DEBUR", "DEBURR"),
    ("PAINT", "PAINT/FINISH"),
    ("ASSY01", "ASSEMBLE"),
    ("INSP", "FINAL INSPECTION"),
)
_NOTES = (
    "CALL BEFORE DELIVERY",
    "CUST SUPPLIED MATERIAL",
    "SEE DRAWING REV C",
    "PART SHIP OK",
    "HOLD FOR QA SIGN OFF",
    "EXPEDITE - PER J.SMITH",
)

_FIRST_DAY = date(1998, 1, 5)
_LAST_ORDER_DAY = date(2026, 12, 31)
_DAYS = [
    (_FIRST_DAY + timedelta(days=n)).year * 10000
    + (_FIRST_DAY + timedelta(days=n)).month * 100
    + (_FIRST_DAY + timedelta(days=n)).day
    for n in range((date(2027, 12, 31) - _FIRST_DAY).days + 1)
]
"""YYYYMMDD of every day from the first order to the end of 2027: day arithmetic by list index."""
_ORDER_SPAN = (_LAST_ORDER_DAY - _FIRST_DAY).days
_TIMES = [h * 10000 + m * 100 + s for h in range(6, 18) for m in range(60) for s in range(60)]
"""HHMMSS of every second of shop hours: no time falls in a daylight-saving gap of Europe/London."""


class DemoSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What ``create_demo_database`` wrote."""

    path: Path
    seed: int
    customers: int
    items: int
    stock: int
    jobs: int
    operations: int
    dirty: dict[str, int]
    """Dirty-row kind -> how many rows of that kind were written."""
    seconds: float
    """Wall time of the whole build, for benchmarks."""


def _pad(value: str, width: int) -> str:
    # CHAR(n) semantics made explicit: SQLite stores what it is given, and the
    # gateway must meet the padding a real legacy database returns.
    return value[:width].ljust(width)


def _cyymmdd(yyyymmdd: int) -> int:
    # C is the century past 1900: 2026-01-15 -> 1260115, 1998-03-02 -> 980302.
    return yyyymmdd - 19_000_000


def _julian(day: date) -> int:
    return (day.year - 1900) * 1000 + day.timetuple().tm_yday


def _mmddyyyy(yyyymmdd: int) -> str:
    return f"{yyyymmdd // 100 % 100:02d}/{yyyymmdd % 100:02d}/{yyyymmdd // 10000}"


def _pick(rng: random.Random, population: int, count: int) -> set[int]:
    """``count`` distinct 0-based row numbers out of ``population``, at least 2."""
    return set(rng.sample(range(population), min(population, max(2, count))))


def _chunks(rows: Iterable[_Row]) -> Iterator[list[_Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk


class _Builder:
    """One build: sizes, the dirty-row choices, and a generator per table."""

    def __init__(self, rows: int, seed: int) -> None:
        self.seed = seed
        self.jobs = rows
        self.customers = max(25, rows // 20)
        self.items = max(50, rows // 10)
        self.dirty = dict.fromkeys(DIRTY_KINDS, 0)
        # Dirty positions come from their own stream so that changing one
        # table's generator never moves another table's dirty rows.
        pick = random.Random(f"{seed}/dirty")
        self.bad_due = _pick(pick, rows, rows // 400)
        self.bad_status = _pick(pick, rows, rows // 500)
        self.spaced_notes = _pick(pick, rows, rows // 300)
        self.deleted_jobs = _pick(pick, rows, rows // 250)
        # Customer 0 is never made dirty: it is C0001, the one the docs show.
        self.spaced_email = _pick(pick, self.customers - 1, self.customers // 40)
        self.deleted_customers = _pick(pick, self.customers - 1, self.customers // 50)
        self.near_dupes = _pick(pick, self.customers - 1, self.customers // 100)

    def customer_rows(self) -> Iterator[_Row]:
        rng = random.Random(f"{self.seed}/CUSTMAST")
        names: list[str] = []
        for n in range(self.customers):
            # Row n+1 is a near-duplicate of an earlier customer (never of row 0's slot itself).
            if n - 1 in self.near_dupes:
                original = names[rng.randrange(len(names))]
                name = original.upper() if rng.random() < 0.5 else original.replace(" ", "  ", 1)
                self.dirty["near_duplicate_customer"] += 1
            else:
                name = f"{rng.choice(_FIRST)} {rng.choice(_TRADE)} {rng.choice(_SUFFIX)}"
            names.append(name)
            number = n + 1
            email: str | None = f"orders{number}@{name.split()[0].lower()}.example.com"
            if n - 1 in self.spaced_email:
                email = f"  {email} "
                self.dirty["email_surrounding_spaces"] += 1
            elif rng.random() < 0.05:
                email = None
            deleted = n - 1 in self.deleted_customers
            self.dirty["deleted_customer"] += deleted
            opened = _DAYS[rng.randrange(_ORDER_SPAN // 2)]
            yield (
                _pad(f"C{number:04d}", 8),
                _pad(name, 30),
                email,
                "I" if deleted or rng.random() < 0.08 else "A",
                rng.randrange(10, 500) * 100_000,
                _cyymmdd(opened),
                "Y" if deleted else "N",
            )

    def item_number(self, n: int) -> str:
        return _pad(f"{_ITEM_KINDS[n % len(_ITEM_KINDS)][0]}-{n + 1:05d}", 15)

    def item_rows(self) -> Iterator[_Row]:
        rng = random.Random(f"{self.seed}/ITEMMAST")
        for n in range(self.items):
            _, noun = _ITEM_KINDS[n % len(_ITEM_KINDS)]
            cost = rng.randrange(50, 250_000)  # cents
            received = 0 if rng.random() < 0.04 else _julian(_FIRST_DAY + timedelta(rng.randrange(10_500)))
            yield (
                self.item_number(n),
                _pad(f"{rng.choice(_MATERIALS)} {noun} {rng.randrange(4, 400)}MM", 40),
                rng.choice(_UOMS),
                cost * rng.randrange(120, 260),  # price: 4 implied decimals, a 20-160% margin
                cost,
                "I" if rng.random() < 0.06 else "A",
                received,
                f"{rng.randrange(1, 10**8):09d}",
            )

    def stock_rows(self) -> Iterator[_Row]:
        rng = random.Random(f"{self.seed}/STKBAL")
        for n in range(self.items):
            item = self.item_number(n)
            for whse in sorted(rng.sample(_WAREHOUSES, rng.randrange(2, 4))):
                on_hand = rng.randrange(0, 5_000_000)
                counted = "" if rng.random() < 0.15 else _mmddyyyy(_DAYS[rng.randrange(len(_DAYS) - 400)])
                yield (item, whse, on_hand, rng.randrange(0, on_hand + 1) // 2, counted)

    def job_blocks(self, blocks: range) -> Iterator[tuple[list[_Row], list[_Row]]]:
        """Jobs and their operations, one block of ``_JOB_BLOCK`` jobs at a time.

        Each block has its own random stream, so any split of the blocks
        between processes writes the same rows. Operations are made with their
        job because their state follows the job's status and order date.
        """
        customers = [_pad(f"C{n:04d}", 8) for n in range(1, self.customers + 1)]
        items = [self.item_number(n) for n in range(self.items)]
        steps = [(_pad(wc, 6), _pad(desc, 30)) for wc, desc in _ROUTE_STEPS]
        n_customers, n_items, n_steps, n_notes = len(customers), len(items), len(steps), len(_NOTES)
        n_recent, n_times, total = len(_STATUS_RECENT), len(_TIMES), self.jobs
        recent_from = int(total * 0.97)
        days, times, dirty = _DAYS, _TIMES, self.dirty
        for block in blocks:
            # rng.random() scaled by hand is several times cheaper than randrange(),
            # and at four million operations that is most of the build time.
            rand = random.Random(f"{self.seed}/JOBMAST/{block}").random
            jobs: list[_Row] = []
            ops: list[_Row] = []
            for n in range(block * _JOB_BLOCK, min(total, (block + 1) * _JOB_BLOCK)):
                # Job numbers were handed out in order, so order dates rise with them.
                day = min(n * _ORDER_SPAN // total + int(rand() * 4), _ORDER_SPAN)
                if n >= recent_from:  # noqa: SIM108 - clearer than a nested conditional
                    status = _STATUS_RECENT[int(rand() * n_recent)]
                else:
                    status = "C" if rand() < 0.985 else "H"
                roll = rand()
                due = 0 if roll < 0.03 else 99999999 if roll < 0.05 else days[day + 7 + int(roll * 110)]
                notes = _NOTES[int(rand() * n_notes)] if rand() < 0.2 else ""
                deleted = "N"
                if n in self.bad_due:
                    due = _INVALID_DATES[n % len(_INVALID_DATES)]
                    dirty["invalid_due_date"] += 1
                if n in self.bad_status:
                    status = "X"
                    dirty["unknown_status"] += 1
                if n in self.spaced_notes:
                    notes = (notes or _NOTES[0]) + "   "
                    dirty["notes_trailing_spaces"] += 1
                if n in self.deleted_jobs:
                    deleted = "Y"
                    dirty["deleted_job"] += 1
                job_no = _pad(f"J{n + 1:06d}", 10)
                roll = rand()
                jobs.append(
                    (
                        job_no,
                        customers[int(rand() * n_customers)],
                        items[int(rand() * n_items)],
                        status,
                        days[day],
                        times[int(rand() * n_times)],
                        due,
                        "Y" if roll < 0.07 else "N",
                        int(rand() * 2000 + 1) * 100 if roll < 0.9 else int(rand() * 500_000 + 100),
                        1 if roll < 0.1 else 0,
                        notes,
                        deleted,
                        "N",  # PAIDFL: payments arrive from the accounting system (Xero webhooks)
                        0,  # PAIDDT
                    )
                )
                n_ops = 3 + int(rand() * 3)
                first = int(rand() * (n_steps - n_ops + 1))
                # Complete jobs finished every step; released ones are part-way; the rest wait.
                finished = n_ops if status == "C" else int(rand() * n_ops) if status == "R" else 0
                started = finished + 1 if status == "R" else finished
                for k in range(n_ops):
                    wrkctr, desc = steps[first + k]
                    if k < started:
                        state = "F" if k < finished else "S"
                        start = days[day + 1 + 2 * k + int(rand() * 2)]
                        start_tm = times[int(rand() * n_times)]
                    else:
                        state, start, start_tm = "Q", 0, 0
                    ops.append(
                        (
                            job_no,
                            10 * (k + 1),
                            wrkctr,
                            desc,
                            int(rand() * 4000 + 25),
                            state,
                            start,
                            start_tm,
                            "Y" if state == "F" else "N",
                        )
                    )
            yield jobs, ops


def _open(path: Path, tables_sql: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    # A half-built file is thrown away anyway, so durability buys nothing while loading.
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-200000")
    db.execute("BEGIN")
    for statement in _statements(tables_sql):
        db.execute(statement)
    return db


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction; split on ';' instead
    # (the schema file holds no ';' inside strings or comments).
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _insert(db: sqlite3.Connection, table: str, width: int, rows: Iterable[_Row]) -> int:
    sql = f"INSERT INTO {table} VALUES ({', '.join('?' * width)})"
    count = 0
    for chunk in _chunks(rows):
        db.executemany(sql, chunk)
        count += len(chunk)
    return count


def _insert_jobs(db: sqlite3.Connection, builder: _Builder, blocks: range) -> tuple[int, int]:
    jobs = operations = 0
    for job_rows, op_rows in builder.job_blocks(blocks):
        db.executemany(f"INSERT INTO JOBMAST VALUES ({', '.join('?' * 14)})", job_rows)
        db.executemany(f"INSERT INTO JOBOPS VALUES ({', '.join('?' * 9)})", op_rows)
        jobs += len(job_rows)
        operations += len(op_rows)
    return jobs, operations


def _jobs_part(path: Path, tables_sql: str, rows: int, seed: int, blocks: range) -> tuple[int, int, dict[str, int]]:
    """Worker process: write some job blocks to a file of their own, for the parent to copy in."""
    builder = _Builder(rows, seed)
    db = _open(path, tables_sql)
    try:
        jobs, operations = _insert_jobs(db, builder, blocks)
        db.execute("COMMIT")
    finally:
        db.close()
    return jobs, operations, builder.dirty


_ADDED_COLUMNS = (
    ("JOBMAST", "PAIDFL", "CHAR(1) NOT NULL DEFAULT 'N'"),
    ("JOBMAST", "PAIDDT", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns later versions of the schema added, with what a database made before them gets."""


def upgrade_demo_database(path: Path) -> list[str]:
    """Add the columns a demo database made by an older version lacks; returns ``TABLE.COLUMN`` added."""
    added = []
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                added.append(f"{table}.{column}")
    return added


def create_demo_database(path: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> DemoSummary:
    """Write the demo job-shop database to ``path``, replacing any file there.

    From ``_PARALLEL_FROM`` jobs on, and where ``fork`` exists, a second process
    writes the later half of the jobs to a side file that is then copied in;
    the contents are the same either way.

    Args:
        path: Target SQLite file; its directory is created if missing.
        rows: Number of jobs (JOBMAST rows); every other table scales from it.
        seed: Same seed, same contents.

    Returns:
        Row counts per table and per dirty-row kind.

    Raises:
        ValueError: ``rows`` is below 1.
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target so the final rename is atomic (same file system).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    tables_sql, indexes_sql = DEMO_SCHEMA_PATH.read_text(encoding="utf-8").split("\n-- @indexes\n")
    blocks = -(-rows // _JOB_BLOCK)
    # fork, not spawn: the child needs no re-import of __main__ (scripts without a
    # main guard) and starts at once; it only touches its own new SQLite file.
    parallel = rows >= _PARALLEL_FROM and (os.cpu_count() or 1) > 1
    parallel = parallel and "fork" in multiprocessing.get_all_start_methods()
    # The parent also writes the small tables, so it takes a little less than half the jobs.
    split = blocks * 47 // 100 if parallel else blocks
    builder = _Builder(rows, seed)
    for stale in (tmp, part):
        stale.unlink(missing_ok=True)
    db = _open(tmp, tables_sql)
    try:
        with contextlib.ExitStack() as stack:
            future = None
            if parallel:
                pool = stack.enter_context(
                    ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
                )
                future = pool.submit(_jobs_part, part, tables_sql, rows, seed, range(split, blocks))
            customers = _insert(db, "CUSTMAST", 7, builder.customer_rows())
            items = _insert(db, "ITEMMAST", 8, builder.item_rows())
            stock = _insert(db, "STKBAL", 5, builder.stock_rows())
            jobs, operations = _insert_jobs(db, builder, range(split))
            if future is not None:
                more_jobs, more_operations, more_dirty = future.result()
                db.execute("ATTACH DATABASE ? AS part", (str(part),))
                db.execute("INSERT INTO main.JOBMAST SELECT * FROM part.JOBMAST")
                db.execute("INSERT INTO main.JOBOPS SELECT * FROM part.JOBOPS")
                jobs, operations = jobs + more_jobs, operations + more_operations
                for kind, count in more_dirty.items():
                    builder.dirty[kind] += count
        for statement in _statements(indexes_sql):
            db.execute(statement)
        db.execute("COMMIT")
        if parallel:
            db.execute("DETACH DATABASE part")
        # Sampled statistics are plenty for the planner and take a fraction of the time.
        db.execute("PRAGMA analysis_limit=1000")
        db.execute("ANALYZE")
    except BaseException:
        db.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        part.unlink(missing_ok=True)
    db.close()
    os.replace(tmp, path)
    return DemoSummary(
        path=path,
        seed=seed,
        customers=customers,
        items=items,
        stock=stock,
        jobs=jobs,
        operations=operations,
        dirty=builder.dirty,
        seconds=round(time.perf_counter() - started, 3),
    )
