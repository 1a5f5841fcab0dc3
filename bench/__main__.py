"""``python -m bench``: prepare, start every server, run interleaved rounds, export, write the table.

python -m bench                         # the http phase of `make bench` (~8.5 min on a quiet 2-core machine)
python -m bench --backend sqlite        # Python's sqlite3 instead of pyodbc + sqliteodbc
python -m bench --rounds 1 --duration 2 --scenarios get,list_100 --no-export --log-pairs 1   # a quick look

After the interleaved rounds, the request log's cost gets more samples: extra pairs of
``get`` and ``list_100`` on Bridgehead with the log on and off only, each pair back to
back (``--log-pairs`` in all, the main rounds' pairs included). Then the SQLite exports:
``--export-rounds`` rounds of Bridgehead and the floor, each export from a fresh server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

import httpx

from bench import data
from bench.export import ExportResult, ExportRounds, run_export
from bench.load import run_wrk
from bench.phase import Meter, machine_lines
from bench.report import Cell, ceiling_line, render
from bench.scenarios import SCENARIOS, bridgehead_deep_cursors
from bench.servers import SANDMAN2_BIN, Running, ServerSpec, cpu_seconds, start
from bench.targets import render_targets, sections

SERVERS = (
    ServerSpec("bridgehead", "Bridgehead", "bridgehead"),
    # The request log's cost: the same server with the access line off (--log-level warning).
    ServerSpec("bridgehead_quiet", "Bridgehead, request log off", "bridgehead", {"BENCH_LOG_LEVEL": "warning"}),
    # What api.rate_limit costs: limits per address and per token, counted on every request, never reached.
    ServerSpec(
        "bridgehead_limited",
        "Bridgehead, rate limits on (per address and per token, never reached)",
        "bridgehead",
        {"BENCH_MAPPING_VAR": "BENCH_MAPPING_LIMITED"},
        only=("get", "list_100"),
    ),
    # The floor runs the way Bridgehead does: one hop per request to an executor sized to the pool.
    ServerSpec("floor", "floor (one hop to a pool-sized executor)", "floor", {"BENCH_FLOOR_MODE": "executor"}),
    ServerSpec("floor_thread", "floor, framework thread pool per request", "floor", {"BENCH_FLOOR_MODE": "thread"}),
    ServerSpec("floor_loop", "floor, blocking on the event loop", "floor", {"BENCH_FLOOR_MODE": "loop"}),
    # What the harness allows: the floor's SQL and clean-up, no framework, no hop (bench/ceiling_app.py).
    ServerSpec(
        "ceiling",
        "ceiling: raw pyodbc on the event loop, no framework (not a model to ship)",
        "ceiling",
        only=("get", "list_100"),
    ),
    ServerSpec("sandman2", "sandman2", "sandman2"),
)
VARIANTS = {"floor_thread", "floor_loop", "bridgehead_quiet", "bridgehead_limited", "ceiling"}
# Servers whose bodies must equal Bridgehead's: they do the same work, or the ratio compares nothing.
SAME_BODIES = ("floor", "ceiling")
EXPORTED = ("bridgehead", "floor", "sandman2")
# The export targets compare these two, so they export in every round; sandman2's 21 s (not a target) once.
EXPORT_ROUNDS_OF = ("bridgehead", "floor")
# The request log's cost: log on vs off, on the scenarios its targets name (bench/targets.py).
LOG_PAIR = ("bridgehead", "bridgehead_quiet")
LOG_SCENARIOS = ("get", "list_100")


def _say(text: str) -> None:
    print(f"bench: {text}", flush=True)


def default_backend() -> str:
    """``sqlite+pyodbc`` when legacy_adapters registers it and the SQLite3 ODBC driver is installed."""
    try:
        from legacy_adapters.dialects import BACKENDS
    except ImportError:
        return "sqlite"
    if "sqlite+pyodbc" not in BACKENDS:
        return "sqlite"
    probe = subprocess.run(["odbcinst", "-q", "-d", "-n", "SQLite3"], capture_output=True, check=False)
    return "sqlite+pyodbc" if probe.returncode == 0 else "sqlite"


def ensure_sandman2() -> bool:
    if (SANDMAN2_BIN / "gunicorn").exists():
        return True
    _say("creating bench/.venv-sandman2 (once) ...")
    venv = SANDMAN2_BIN.parent
    requirements = data.ROOT / "bench" / "sandman2-requirements.txt"
    steps = [
        [sys.executable if sys.prefix == sys.base_prefix else "python3", "-m", "venv", str(venv)],
        [str(SANDMAN2_BIN / "pip"), "install", "-q", "-r", str(requirements)],
        [str(SANDMAN2_BIN / "pip"), "install", "-q", "--no-deps", "sandman2==1.2.3"],
    ]
    for step in steps:
        if subprocess.run(step, check=False).returncode != 0:
            _say(f"sandman2 set-up failed at: {' '.join(step)}; it is left out of this run")
            return False
    return True


def _check(servers: dict, headers: dict[str, str], samples: data.Samples, extras: dict) -> list[str]:
    """Every path answers 200, and the floor's and the ceiling's data equal Bridgehead's (the same work is compared)."""
    notes = []
    for scenario in SCENARIOS:
        bodies = {}
        for name, running in servers.items():
            if not running.spec.runs(scenario.name):
                continue
            paths = scenario.paths(running.spec.kind, samples, extras)
            if paths is None:
                continue
            for path in paths[:3]:
                r = httpx.get(running.base + path, headers=headers, timeout=120)
                if r.status_code != 200:
                    raise SystemExit(f"bench: {name} {path} answered {r.status_code}: {r.text[:300]}")
            r = httpx.get(running.base + paths[0], headers=headers, timeout=120).json()
            bodies[name] = r.get("data", r) if isinstance(r, dict) else r
        if "bridgehead" not in bodies or scenario.name == "page_10000":
            continue
        for other in SAME_BODIES:
            if other in bodies and bodies["bridgehead"] != bodies[other]:
                notes.append(f"- WARNING: {scenario.name}: the {other}'s body differs from Bridgehead's.")
                _say(notes[-1])
    return notes


def _measure(
    cell: Cell, running: Running, paths: list[str], headers: dict[str, str], args: argparse.Namespace, label: str
) -> None:
    """One wrk run into ``cell``, with the server's CPU per request over it."""
    cpu_before = cpu_seconds(running)
    result = run_wrk(running.base, paths, headers, args.duration, args.threads, args.connections)
    cpu = cpu_seconds(running) - cpu_before
    cell.results.append(result)
    if result.requests:
        cell.cpu_us.append(cpu / result.requests * 1e6)
    flag = f" ERRORS={result.errors}" if result.errors else ""
    _say(
        f"{label} {running.spec.name:<15} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  CPU {cpu / max(1, result.requests) * 1e6:6.0f} µs/req{flag}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("auto", "sqlite+pyodbc", "sqlite"), default="auto")
    parser.add_argument("--db-url", help="override the database URL entirely (all servers use it)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server (same for all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--servers", default=",".join(s.name for s in SERVERS))
    parser.add_argument(
        "--log-pairs",
        type=int,
        default=7,
        help="pairs in all (the main rounds' first) of the request log on vs off, on get and list_100; "
        "the ones past --rounds run after the main rounds, back to back (default 7)",
    )
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument(
        "--export-rounds", type=int, default=3, help="exports of Bridgehead and of the floor, each from a fresh server"
    )
    parser.add_argument("--export-timeout", type=float, default=180)
    parser.add_argument("--out", default=str(data.ROOT / "bench" / "results" / "latest.md"))
    args = parser.parse_args(argv)
    began = time.monotonic()
    meter = Meter("http")

    db = data.ensure_database(args.rows)
    samples = data.load_samples(db)
    mapping = data.bench_mapping()
    backend = default_backend() if args.backend == "auto" else args.backend
    url = args.db_url or f"{backend}:///{db}"
    token = data.mint()
    headers = {"Authorization": f"Bearer {token}"}
    env = {
        "BENCH_DB_URL": url,
        "BRIDGEHEAD_DB_URL": url,
        "BRIDGEHEAD_JWT_SECRET": data.JWT_SECRET,
        "BENCH_JWT_SECRET": data.JWT_SECRET,
        "BENCH_CURSOR_SECRET": data.CURSOR_SECRET,
        "BENCH_MAPPING": str(mapping),
        "BENCH_MAPPING_LIMITED": str(data.limited_mapping()),
    }
    wanted = set(args.servers.split(","))
    left_out = {s.name: "left out by --servers" for s in SERVERS if s.name not in wanted}
    left_out |= {s.name: "left out by --scenarios" for s in SCENARIOS if s.name not in args.scenarios.split(",")}
    if args.no_export:
        left_out["export"] = "--no-export"
    if "sandman2" in wanted and not ensure_sandman2():
        wanted.discard("sandman2")
        left_out["sandman2"] = "bench/.venv-sandman2 could not be set up (see the output)"
    specs = [s for s in SERVERS if s.name in wanted]
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    _say(
        f"backend {url.split(':')[0]}, {args.workers} workers per server, wrk -t{args.threads} -c{args.connections} -d{args.duration}s"
    )

    servers = {}
    # The extra log pairs, kept apart from `cells`: the main table's medians stay those of the rounds every server ran.
    log_cells: dict[tuple[str, str], Cell] = {}
    try:
        for i, spec in enumerate(specs):
            servers[spec.name] = start(spec, 18100 + i, args.workers, env, "/")
            _say(f"started {spec.name} on :{servers[spec.name].port}")
        extras = (
            {"deep_cursors": bridgehead_deep_cursors(servers["bridgehead"].base, headers, samples)}
            if "bridgehead" in servers
            else {}
        )
        notes = _check(servers, headers, samples, extras)

        cells: dict[tuple[str, str], Cell] = {}
        plan = []
        for scenario in scenarios:
            for spec in specs:
                if (spec.name in VARIANTS and not scenario.variants) or not spec.runs(scenario.name):
                    continue
                paths = scenario.paths(spec.kind, samples, extras)
                if paths is not None:
                    plan.append((scenario, spec, paths))
                    cells[(scenario.name, spec.name)] = Cell()
        _say(f"warm-up: {len(plan)} pairs x {args.warmup}s")
        for _scenario, spec, paths in plan:
            run_wrk(servers[spec.name].base, paths, headers, args.warmup, args.threads, args.connections)
        for round_no in range(args.rounds):
            # Interleave: every pair once per round, the server order rotated each round.
            for scenario in scenarios:
                pairs = [(sc, sp, p) for sc, sp, p in plan if sc is scenario]
                shift = round_no % max(1, len(pairs))
                for sc, spec, paths in pairs[shift:] + pairs[:shift]:
                    label = f"round {round_no + 1}/{args.rounds} {sc.name:<14}"
                    _measure(cells[(sc.name, spec.name)], servers[spec.name], paths, headers, args, label)
        log_runs = [
            [(sc, sp, p) for sc, sp, p in plan if sc is scenario and sp.name in LOG_PAIR] for scenario in scenarios
        ]
        log_runs = [runs for runs in log_runs if len(runs) == 2 and runs[0][0].name in LOG_SCENARIOS]
        for pair_no in range(args.rounds, args.log_pairs):
            for runs in log_runs:
                # Back to back, so both sides see the same machine; who goes first alternates.
                for sc, spec, paths in runs if pair_no % 2 == 0 else runs[::-1]:
                    label = f"log pair {pair_no + 1}/{args.log_pairs} {sc.name:<14}"
                    cell = log_cells.setdefault((sc.name, spec.name), Cell())
                    _measure(cell, servers[spec.name], paths, headers, args, label)
    finally:
        for running in servers.values():
            running.stop()

    exported: dict[str, list[ExportResult]] = {}
    if not args.no_export:
        # A fresh server per export, so each VmHWM and RSS at rest is of one start-up and one export.
        contenders = [s for s in specs if s.name in EXPORT_ROUNDS_OF]
        schedule = [
            (round_no, spec)
            for round_no in range(args.export_rounds)
            for spec in (contenders if round_no % 2 == 0 else contenders[::-1])
        ]
        schedule += [(0, spec) for spec in specs if spec.name in EXPORTED and spec.name not in EXPORT_ROUNDS_OF]
        for round_no, spec in schedule:
            running = start(spec, 18200, args.workers, env, "/")
            try:
                _say(f"export round {round_no + 1} from {spec.name} ...")
                e = run_export(running, headers, args.export_timeout)
                exported.setdefault(spec.name, []).append(e)
                _say(
                    f"export {spec.name}: {e.rows:,} rows in {e.seconds:.1f} s = {e.rows_per_s:,.0f} rows/s, peak RSS {e.peak_rss_mb:,.0f} MB ({e.status})"
                )
            finally:
                running.stop()
    exports = {name: ExportRounds(exported[name]) for name in EXPORTED if name in exported}

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=data.ROOT, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        # The phases before this one rewrite their result files: those are not changes to the code measured.
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results"],
        capture_output=True,
        text=True,
        cwd=data.ROOT,
        check=False,
    ).stdout.strip()
    quiet, phases = machine_lines(meter.so_far())
    from gateway.server import server_stack

    stack = server_stack()
    header = [
        "# Bridgehead benchmark: latest run",
        "",
        f"- {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, commit {commit}{' + uncommitted changes' if dirty else ''}, "
        f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f}",
        f"- database: `{url.split(':')[0]}` ({'pyodbc through the SQLite ODBC driver, StepAPI=1' if 'pyodbc' in url else 'Python sqlite3'}), "
        f"{samples.all_jobs:,} jobs ({samples.visible_jobs:,} visible)",
        f"- every server: {args.workers} worker processes, pool of 5 connections per worker; auth on for Bridgehead and the floor (HS256 bearer token), none in sandman2",
        f"- server stacks: Bridgehead as `bridgehead serve` runs it, uvicorn on {stack['loop']} + {stack['http']}; "
        "the floor and the ceiling on uvicorn `--loop uvloop --http httptools`; sandman2 as it ships, a Flask app under gunicorn's "
        "sync workers (one request at a time per worker)",
        f"- load: `wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s` on 127.0.0.1, {args.rounds} interleaved round{'s' if args.rounds != 1 else ''} after a {args.warmup:g} s warm-up; medians of the rounds",
        f"- exports on SQLite: {args.export_rounds} round{'s' if args.export_rounds != 1 else ''} of Bridgehead and the floor, sandman2 once",
        f"- this phase {(time.monotonic() - began) / 60:.1f} min (HTTP rounds and SQLite exports); the sync and backend phases before it are in the table of phases at the end",
        quiet,
    ]
    text = render(header, scenarios, specs, cells, exports, notes)
    targets = render_targets(cells, exports, log_cells, left_out=left_out, visible_rows=samples.visible_jobs)
    text = "\n".join([text.rstrip(), "", *targets, *ceiling_line(cells), *sections(), "", *phases]) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    _say(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
