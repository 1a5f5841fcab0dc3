"""``python -m bench.statements``: what the list of 100 costs at the database, per statement, through the driver.

The ``list_100`` scenario's statements as each server sends them (text and parameters
captured from Bridgehead's raw cursor and from sandman2's SQLAlchemy 1.3), run on one
connection made as the floor makes it (``create_engine`` for the bench URL: pyodbc +
sqliteodbc, ``StepAPI=1``, autocommit), for each status the scenario rotates (H, R, P).
The figure is ``time.process_time()`` per ``execute`` + ``fetchall``: SQLite runs inside
this process, so that is the database's CPU and the driver's, and other processes on the
machine do not count. Statements are interleaved in each round, the median of the rounds
is shown. ``fresh cursor`` opens a cursor per call, as Bridgehead's raw cursor path does,
so sqliteodbc prepares the text again each time; the other columns re-use one cursor
(pyodbc then skips the prepare), as the ceiling does.

    python -m bench.statements --calls 300 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from bench import data

__all__ = ("STATEMENTS", "main")

_COLS = ("JOBNO", "CUSTNO", "ITEMNO", "JSTAT", "ORDDT", "ORDTM", "DUEDT", "RUSHFL", "QTY", "PRIO", "NOTES")
_SELECT = ", ".join(f'"JOBMAST"."{c}"' for c in _COLS)
_SANDMAN2_SELECT = ", ".join(f'"JOBMAST"."{c}" AS "JOBMAST_{c}"' for c in (*_COLS, "DELFLG"))
_ORDER = 'ORDER BY "JOBMAST"."DUEDT" ASC'

# name -> (what it is, SQL text, parameters after the status)
STATEMENTS: dict[str, tuple[str, str, tuple[Any, ...]]] = {
    "bridgehead": (
        "Bridgehead (the floor's and the ceiling's differ only in quoting): soft-delete filter, total order, 101 rows",
        f'SELECT {_SELECT} \nFROM "JOBMAST" \nWHERE ("DELFLG" <> \'Y\') AND "JOBMAST"."JSTAT" = ? '
        f'{_ORDER}, "JOBMAST"."JOBNO" ASC\n LIMIT ? OFFSET ?',
        (101, 0),
    ),
    "no_tiebreak": (
        "Bridgehead's without the JOBNO tie-break (not a total order: not what keyset pages can use)",
        f'SELECT {_SELECT} \nFROM "JOBMAST" \nWHERE ("DELFLG" <> \'Y\') AND "JOBMAST"."JSTAT" = ? {_ORDER}\n LIMIT ? OFFSET ?',
        (101, 0),
    ),
    "sandman2": (
        "sandman2's: no soft-delete filter, DUEDT only, 100 rows, 12 columns",
        f'SELECT {_SANDMAN2_SELECT} \nFROM "JOBMAST" \nWHERE "JOBMAST"."JSTAT" = ? {_ORDER}\n LIMIT ? OFFSET ?',
        (100, 0),
    ),
}
STATUSES = ("H", "R", "P")


def _connect(url: str) -> tuple[Any, Any]:
    import sqlalchemy as sa

    import legacy_adapters.dialects  # noqa: F401 - registers sqlite+pyodbc with SQLAlchemy

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    return engine, engine.raw_connection()


def _per_call(connection: Any, sql: str, parameters: tuple[Any, ...], calls: int, fresh: bool) -> float:
    """CPU µs per execute + fetchall."""
    cursor = connection.cursor()
    began = time.process_time()
    for _ in range(calls):
        if fresh:
            cursor = connection.cursor()
        rows = cursor.execute(sql, parameters).fetchall()
        if fresh:
            cursor.close()
    spent = time.process_time() - began
    if not rows:
        raise SystemExit(f"bench.statements: no rows for {parameters}")
    return spent / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300, help="calls per (statement, status) per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-url", help="default: sqlite+pyodbc on the bench's cached database")
    args = parser.parse_args(argv)
    db = data.ensure_database(args.rows)
    url = args.db_url or f"sqlite+pyodbc:///{db}"
    engine, fairy = _connect(url)
    connection = fairy.driver_connection
    try:
        plans = {}
        for name, (_, sql, _) in STATEMENTS.items():
            explained = connection.cursor().execute("EXPLAIN QUERY PLAN " + sql, ("H", 101, 0)).fetchall()
            plans[name] = "; ".join(str(r[-1]) for r in explained)
        ties = dict(
            connection.cursor()
            .execute("SELECT JSTAT, count(*) FROM JOBMAST WHERE DUEDT = 0 AND DELFLG <> 'Y' GROUP BY JSTAT")
            .fetchall()
        )
        columns = [(name, status, False) for name in STATEMENTS for status in STATUSES]
        columns += [("bridgehead", status, True) for status in STATUSES]
        figures: dict[tuple[str, str, bool], list[float]] = {c: [] for c in columns}
        for c in columns:  # warm the page cache and the driver
            _per_call(connection, STATEMENTS[c[0]][1], (c[1], *STATEMENTS[c[0]][2]), 20, c[2])
        for round_no in range(args.rounds):
            shift = round_no % len(columns)
            for c in columns[shift:] + columns[:shift]:
                figures[c].append(
                    _per_call(connection, STATEMENTS[c[0]][1], (c[1], *STATEMENTS[c[0]][2]), args.calls, c[2])
                )
    finally:
        fairy.close()
        engine.dispose()

    print(f"CPU µs per execute + fetchall, {url.split(':')[0]}, median of {args.rounds} rounds x {args.calls} calls")
    print(f"rows with DUEDT = 0 (visible): {', '.join(f'{s} {int(ties.get(s, 0)):,}' for s in STATUSES)}")
    print()
    print("| statement | " + " | ".join(STATUSES) + " | mean | plan |")
    print("|---|" + "--:|" * (len(STATUSES) + 1) + "---|")
    rows = [(name, False) for name in STATEMENTS] + [("bridgehead", True)]
    for name, fresh in rows:
        cells = [statistics.median(figures[(name, s, fresh)]) for s in STATUSES]
        label = f"{name}, fresh cursor per call" if fresh else name
        plan = "(same)" if fresh else plans[name]
        print(f"| {label} | " + " | ".join(f"{c:,.0f}" for c in cells) + f" | {statistics.mean(cells):,.0f} | {plan} |")
    print()
    for name, (title, _, _) in STATEMENTS.items():
        print(f"- {name}: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
