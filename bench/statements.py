"""``python -m bench.statements``: what the list of 100 costs at the database, per statement, through the driver.

The ``list_100`` scenario's statements as each server sends them (text and parameters
captured from Bridgehead's raw cursor and from sandman2's SQLAlchemy 1.3), run on one
connection made as the floor makes it (``create_engine`` for the bench URL: pyodbc +
sqliteodbc, ``StepAPI=1``, autocommit), for each status the scenario rotates (H, R, P).
The figure is ``time.process_time()`` per ``execute`` + ``fetchall``: SQLite runs inside
this process, so that is the database's CPU and the driver's, and other processes on the
machine do not count. Statements are interleaved in each round, the median of the rounds
is shown. The statuses take turns call by call, as wrk sends the scenario's paths (``--hot``:
each status's calls in a row, which keeps its pages hot). ``fresh cursor`` opens a cursor per call, as Bridgehead's raw cursor path does,
so sqliteodbc prepares the text again each time; the other columns re-use one cursor
(pyodbc then skips the prepare), as the ceiling does.

    python -m bench.statements --calls 200 --rounds 3          # add --hot: each status's calls in a row
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


def _measure(connection: Any, name: str, calls: int, fresh: bool, rotate: bool) -> dict[str, float]:
    """CPU µs per execute + fetchall of statement ``name``, for each status.

    ``rotate``: the statuses in turn, call by call, as wrk sends the scenario's paths;
    otherwise each status's calls in a row (its pages stay hot in SQLite's cache and the CPU's).
    """
    _, sql, tail = STATEMENTS[name]
    order = [STATUSES[i % len(STATUSES)] for i in range(calls * len(STATUSES))]
    if not rotate:
        order.sort(key=STATUSES.index)
    spent = dict.fromkeys(STATUSES, 0.0)
    cursor = connection.cursor()
    clock = time.process_time
    for status in order:
        began = clock()
        if fresh:
            cursor = connection.cursor()
        rows = cursor.execute(sql, (status, *tail)).fetchall()
        if fresh:
            cursor.close()
        spent[status] += clock() - began
        if not rows:
            raise SystemExit(f"bench.statements: {name} found no rows for {status}")
    return {status: total / calls * 1e6 for status, total in spent.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200, help="calls per (statement, status) per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-url", help="default: sqlite+pyodbc on the bench's cached database")
    parser.add_argument("--hot", action="store_true", help="each status's calls in a row instead of in turn")
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
        runs = [(name, False) for name in STATEMENTS] + [("bridgehead", True)]
        figures: dict[tuple[str, bool], list[dict[str, float]]] = {r: [] for r in runs}
        for name, fresh in runs:  # warm the page cache and the driver
            _measure(connection, name, 10, fresh, rotate=True)
        for round_no in range(args.rounds):
            shift = round_no % len(runs)
            for name, fresh in runs[shift:] + runs[:shift]:
                figures[(name, fresh)].append(_measure(connection, name, args.calls, fresh, rotate=not args.hot))
    finally:
        fairy.close()
        engine.dispose()

    order = "each status's calls in a row" if args.hot else "the statuses in turn, call by call"
    print(
        f"CPU µs per execute + fetchall, {url.split(':')[0]}, {order}, median of {args.rounds} rounds x {args.calls} calls"
    )
    print(f"rows with DUEDT = 0 (visible): {', '.join(f'{s} {int(ties.get(s, 0)):,}' for s in STATUSES)}")
    print()
    print("| statement | " + " | ".join(STATUSES) + " | mean | plan |")
    print("|---|" + "--:|" * (len(STATUSES) + 1) + "---|")
    for name, fresh in runs:
        cells = [statistics.median(f[s] for f in figures[(name, fresh)]) for s in STATUSES]
        label = f"{name}, fresh cursor per call" if fresh else name
        plan = "(same)" if fresh else plans[name]
        print(f"| {label} | " + " | ".join(f"{c:,.0f}" for c in cells) + f" | {statistics.mean(cells):,.0f} | {plan} |")
    print()
    for name, (title, _, _) in STATEMENTS.items():
        print(f"- {name}: {title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
