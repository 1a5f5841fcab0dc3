"""``python -m bench.backends``: the 1M-row NDJSON export on PostgreSQL and MariaDB through ODBC.

python -m bench.backends                      # both servers on both backends (first run loads the data)
python -m bench.backends --backends postgresql --out bench/results/export-backends.md
python -m bench.backends --rows 20000 --export-rounds 2   # a trial on bench_jobs_20000

The cached 1M-job SQLite database (``bench/data.py``) is copied once into a database
``bench_jobs`` on the local PostgreSQL (psqlODBC, ``PostgreSQL Unicode``) and MariaDB
(Connector/ODBC, ``MariaDB Unicode``) servers, by COPY and LOAD DATA LOCAL INFILE (about a
minute each; ``--load-only`` stops there); a table ``BENCH_LOADED`` records which cached
file it came from, so later runs reuse it while JOBMAST still holds that file's rows.
Another ``--rows`` loads ``bench_jobs_<rows>`` instead. Then, per backend, ``--export-rounds`` rounds
(default 3): in each, Bridgehead and the floor (who goes first alternating by round) are each
started fresh (2 workers) and export every visible job with ``Accept: application/x-ndjson``;
``VmHWM`` of the server's processes is that export's peak RSS. The table and the targets take
the rounds' median rows/s and the worst round's first byte and memory (``ExportRounds``).
Only JOBMAST is copied, so Bridgehead serves a copy of the bench mapping holding v1's ``jobs`` alone.

The floor is what a developer writes by hand: ``stream_results`` with ``yield_per`` and, on
PostgreSQL, psqlODBC's documented streaming options (``UseDeclareFetch=1;Fetch=2000``) in
its URL. MariaDB Connector/ODBC before 3.1.17 has no streaming option at all (``NO_CACHE``
came with 3.1.17): the floor's export is buffered whole by the driver there, while
Bridgehead reads keyset batches (``buffers_results``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass

import sqlalchemy as sa

from bench import data
from bench.__main__ import SERVERS
from bench.export import ExportResult, ExportRounds, run_export
from bench.servers import start

__all__ = ("BACKENDS", "main")

SERVER = {"postgresql": "postgresql+pyodbc://postgres@127.0.0.1:5432", "mariadb": "mysql+pyodbc://root@127.0.0.1:3306"}
DRIVER = {"postgresql": "PostgreSQL+Unicode", "mariadb": "MariaDB+Unicode"}
FLOOR_OPTIONS = {"postgresql": "&UseDeclareFetch=1&Fetch=2000", "mariadb": ""}
BACKENDS = tuple(SERVER)
DATABASE = "bench_jobs"
"""The shared database of the 1M-row run; other sizes get ``bench_jobs_<rows>`` (``database_for``)."""


@dataclass(frozen=True)
class Row:
    backend: str
    server: str
    result: ExportRounds | None
    note: str = ""


def _say(text: str) -> None:
    print(f"bench.backends: {text}", flush=True)


def database_for(rows: int) -> str:
    """A small trial run never replaces the 1M rows other runs read."""
    return DATABASE if rows == 1_000_000 else f"{DATABASE}_{rows}"


def url_for(backend: str, rows: int = 1_000_000) -> str:
    return f"{SERVER[backend]}/{database_for(rows)}?driver={DRIVER[backend]}"


def _admin(backend: str, statement: str) -> None:
    import pyodbc

    if backend == "postgresql":
        target = "Server=127.0.0.1;Port=5432;Database=postgres;UID=postgres"
    else:
        target = "Server=127.0.0.1;Port=3306;UID=root"
    conn = pyodbc.connect(f"DRIVER={{{DRIVER[backend].replace('+', ' ')}}};{target}", autocommit=True, timeout=5)
    try:
        conn.cursor().execute(statement)
    except pyodbc.Error as exc:
        if "already exists" not in str(exc):
            raise
    finally:
        conn.close()


def loaded_tag(backend: str, url: str, source: os.PathLike[str]) -> str | None:
    """Why ``backend``'s bench database cannot be reused, or None when it holds ``source``'s JOBMAST whole."""
    quote = '"' if backend == "postgresql" else "`"
    tag = os.path.basename(source)  # the cached file's name carries the demo schema's version
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as cached:
        expected = cached.execute("SELECT COUNT(*) FROM JOBMAST").fetchone()[0]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("BENCH_LOADED"):
                return "never loaded"
            loaded = conn.exec_driver_sql(f"SELECT source FROM {quote}BENCH_LOADED{quote}").scalar()
            if loaded != tag:
                return f"holds {loaded}, not {tag}"
            count = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote}JOBMAST{quote}").scalar()
            if count != expected:
                return f"holds {count:,} jobs, not {expected:,}"
    finally:
        engine.dispose()
    return None


def ensure_loaded(backend: str, source: os.PathLike[str], rows: int) -> str:
    """``backend``'s bench database with the cached jobs in it (loaded when stale or missing); its URL.

    Reused when its ``BENCH_LOADED`` row names the cached file (whose name carries the demo
    schema's tag) and JOBMAST holds as many rows as the cached file. Otherwise JOBMAST is
    recreated and filled by the server's bulk path (``load_demo(bulk=True)``: COPY on
    PostgreSQL, LOAD DATA LOCAL INFILE on MariaDB, indexes after the load), and the tag
    is written last, so an interrupted load is redone next time.
    """
    import legacy_adapters.dialects  # noqa: F401 - registers postgresql+pyodbc
    from legacy_adapters.demo.load import load_demo

    quote = '"' if backend == "postgresql" else "`"
    _admin(
        backend,
        f"CREATE DATABASE {quote}{database_for(rows)}{quote}"
        if backend == "postgresql"
        else f"CREATE DATABASE IF NOT EXISTS `{database_for(rows)}` CHARACTER SET utf8mb4",
    )
    url = url_for(backend, rows)
    stale = loaded_tag(backend, url, source)
    if stale is None:
        return url
    engine = sa.create_engine(url)
    try:
        _say(f"loading {rows:,} jobs into {backend} ({stale}) ...")
        started = time.monotonic()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote}BENCH_LOADED{quote}")
        load_demo(os.fspath(source), url, tables=("JOBMAST",), engine=engine, bulk=True)
        with engine.begin() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql('ANALYZE "JOBMAST"')
            else:
                conn.exec_driver_sql("ANALYZE TABLE `JOBMAST`")
            conn.exec_driver_sql(f"CREATE TABLE {quote}BENCH_LOADED{quote} (source VARCHAR(200))")
            conn.exec_driver_sql(f"INSERT INTO {quote}BENCH_LOADED{quote} VALUES ('{os.path.basename(source)}')")
        _say(f"{backend} loaded in {time.monotonic() - started:.0f} s")
        return url
    finally:
        engine.dispose()


def jobs_only_mapping() -> str:
    """The bench mapping with v1's ``jobs`` alone (no relations, syncs or webhooks): only JOBMAST is loaded."""
    import yaml

    tree = yaml.safe_load(data.bench_mapping().read_text())
    jobs = tree["versions"]["v1"]["resources"]["jobs"]
    jobs.pop("relations", None)
    jobs.pop("actions", None)
    jobs.pop("mcp", None)
    version = {k: v for k, v in tree["versions"]["v1"].items() if k not in ("successor", "deprecated", "sunset")}
    tree["versions"] = {"v1": {**version, "resources": {"jobs": jobs}}}
    for section in ("webhooks", "sync"):
        tree.pop(section, None)
    path = data.work_path("bridgehead-bench-jobs.yaml")
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return str(path)


def run(backends: list[str], rows: int, workers: int, timeout_s: float, rounds: int) -> list[Row]:
    db = data.ensure_database(rows)
    token = data.mint()
    headers = {"Authorization": f"Bearer {token}"}
    mapping = jobs_only_mapping()
    results: list[Row] = []
    for backend in backends:
        try:
            url = ensure_loaded(backend, db, rows)
        except Exception as exc:  # a server that is not running here: say so in the table
            results.append(Row(backend, "-", None, f"not measured: {type(exc).__name__}: {str(exc)[:120]}"))
            continue
        env = {
            "BENCH_DB_URL": url + FLOOR_OPTIONS[backend],
            "BRIDGEHEAD_DB_URL": url,
            "BRIDGEHEAD_JWT_SECRET": data.JWT_SECRET,
            "BENCH_JWT_SECRET": data.JWT_SECRET,
            "BENCH_CURSOR_SECRET": data.CURSOR_SECRET,
            "BENCH_MAPPING": mapping,
        }
        specs = [next(s for s in SERVERS if s.name == name) for name in ("bridgehead", "floor")]
        exported: dict[str, list[ExportResult]] = {spec.name: [] for spec in specs}
        for round_no in range(rounds):
            # Who goes first alternates, so neither always meets the other's leftovers (page cache, WAL, a warm server).
            for spec in specs if round_no % 2 == 0 else specs[::-1]:
                # A fresh server per export, so its VmHWM and RSS at rest are of one start-up and one export.
                running = start(spec, 18400, workers, env, "/")
                try:
                    _say(f"export round {round_no + 1}/{rounds} from {spec.name} on {backend} ...")
                    result = run_export(running, headers, timeout_s)
                    _say(
                        f"{backend} {spec.name}: {result.rows:,} rows in {result.seconds:.1f} s = {result.rows_per_s:,.0f} rows/s, "
                        f"first byte {result.first_byte_s:.2f} s, CPU {result.cpu_us_per_row:.1f} µs/row, "
                        f"peak RSS {result.peak_rss_mb:,.0f} MB ({result.status})"
                    )
                    exported[spec.name].append(result)
                finally:
                    running.stop()
        results += [
            Row(backend, spec.label, ExportRounds(exported[spec.name])) for spec in specs if exported[spec.name]
        ]
    return results


def render(rows: list[Row], began: float, rounds: int) -> str:
    lines = [
        "## Export on PostgreSQL and MariaDB through ODBC",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `python -m bench.backends`, {os.cpu_count()} CPUs "
        f"(shared: other work was running), load average at the end {os.getloadavg()[0]:.1f}, {(time.monotonic() - began) / 60:.1f} min",
        f"- every visible job of the 1M-row JOBMAST as NDJSON, {rounds} round{'s' if rounds != 1 else ''}: in each, Bridgehead "
        "and the floor (who goes first alternating) each from a freshly started server with 2 workers; seconds, rows/s and "
        "CPU are the rounds' medians, first byte and memory the worst round's; "
        "the floor with psqlODBC's `UseDeclareFetch=1;Fetch=2000` on PostgreSQL, nothing to set on MariaDB 3.1.15",
        "",
        "| backend | server | rows | seconds | rows/s (median) | rounds (rows/s) | CPU µs/row | first byte s | peak RSS MB (VmHWM) | RSS at rest MB | status |",
        "|---|---|--:|--:|--:|---|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        e = row.result
        if e is None:
            lines.append(f"| {row.backend} | {row.server} | – | – | – | – | – | – | – | – | {row.note} |")
            continue
        lines.append(
            f"| {row.backend} | {row.server} | {e.rows:,} | {e.seconds:.1f} | {e.rows_per_s:,.0f} | {e.shown()} | "
            f"{e.cpu_us_per_row:.1f} | {e.first_byte_s:.2f} | {e.peak_rss_mb:,.0f} | {e.idle_rss_mb:,.0f} | {e.status} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--export-timeout", type=float, default=300)
    parser.add_argument(
        "--export-rounds", type=int, default=3, help="exports of each server per backend, each from a fresh server"
    )
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--load-only", action="store_true", help="only (re)load the bench databases when stale")
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.load_only:
        db = data.ensure_database(args.rows)
        for backend in args.backends.split(","):
            _say(f"{backend}: {ensure_loaded(backend, db, args.rows)}")
        return 0
    rows = run(args.backends.split(","), args.rows, args.workers, args.export_timeout, args.export_rounds)
    table = render(rows, began, args.export_rounds)
    print(table)
    if args.out:  # the table, and its figures for the targets in bench/results/latest.md
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(table)
        # An entry per round, grouped again by backend and server in bench/targets.py; an unmeasured
        # backend gets one entry, with its note.
        figures = [
            {"backend": r.backend, "server": r.server, "round": n, **dataclasses.asdict(e), "note": r.note}
            for r in rows
            if r.result
            for n, e in enumerate(r.result.rounds, 1)
        ]
        figures += [{"backend": r.backend, "server": r.server, "note": r.note} for r in rows if r.result is None]
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump(figures, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
