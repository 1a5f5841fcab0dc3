"""``python -m bench.cpu``: the CPU one request costs, measured in-process, without sockets or wrk.

Builds Bridgehead's app as ``bridgehead serve`` does (the bench mapping, the request log at
the chosen level into a file), runs its ASGI lifespan on uvloop and sends it requests
straight through ASGI: ``--concurrency`` tasks, each looping over the scenario's paths,
for ``--requests`` requests. The figure is ``time.process_time()`` (every thread of this
process, user + system) divided by the requests answered: what a request costs the
gateway, HTTP parsing and the socket write excepted, and far steadier than req/s on a
busy machine because other processes' work is not counted. ``--rounds`` repeats it,
alternating the request log on and off (``--compare-log``), so their ratio is read within
one run. ``--server floor`` measures the hand-written floor (``bench/floor_app.py``, one executor
hop per request) the same way, and ``--server both`` alternates the two in each round: their
ratio of CPU per request, read within one run, is what req/s would show on a quiet machine.

    python -m bench.cpu --scenario get --requests 5000 --rounds 3 --compare-log
    python -m bench.cpu --scenario embed --requests 2000 --rounds 3 --server both
    python -m bench.cpu --scenario get,list_100 --requests 10000,2000 --compare-log --rounds 6 --out bench/results/log-cost.md

With ``--out`` (and ``--compare-log``), the request log's cost per scenario is written as a table and
as figures (``.json`` beside it): ``make bench`` runs it as its ``log-cost`` phase, and the target
"request log on costs < 5 %" is judged on it. The wrk pairs of ``python -m bench`` cannot resolve
5 %: two server processes of the same code differ by up to ±15 % in CPU per request from one 4 s
run to the next on this 2-core machine (bench/README.md, the ninth pass); one process alternating
the two levels, the same requests each time, differs by ~2 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import data
from bench.scenarios import SCENARIOS

__all__ = ("main",)


class _Client:
    """Drives an ASGI app directly: one GET, the response's status and body length."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(b"host", b"127.0.0.1:8000")] + [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]

    async def get(self, target: str) -> int:
        path, _, query = target.partition("?")
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query.encode(), "headers": list(self.headers),
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


async def _lifespan(app: Any) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"bench.cpu: the app did not start: {started}")
    return inbox, task


async def _measure(
    app: Any, paths: list[str], headers: dict[str, str], requests: int, concurrency: int
) -> tuple[float, float]:
    client = _Client(app, headers)
    for path in paths[:20]:  # warm the caches (plans, tokens, connections) outside the measurement
        status = await client.get(path)
        if status != 200:
            raise SystemExit(f"bench.cpu: {path} answered {status}")
    left = requests
    bad: list[int] = []

    async def worker(offset: int) -> None:
        nonlocal left
        i = offset
        while left > 0:
            left -= 1
            status = await client.get(paths[i % len(paths)])
            if status != 200:
                bad.append(status)
            i += concurrency

    began, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    spent, wall = time.process_time() - began, time.perf_counter() - wall
    if bad:
        raise SystemExit(f"bench.cpu: {len(bad)} answers were not 200 (first: {bad[0]})")
    return spent * 1000 / requests, requests / wall


def _app(server: str, level: str, log_path: str) -> Any:
    if server == "floor":
        from bench.floor_app import create_app as create_floor

        return create_floor()
    from gateway.app import create_app
    from gateway.logging import configure_logging
    from legacy_adapters.mapping.load import load_mapping

    configure_logging(level, log_format="json", stream=open(log_path, "ab"))
    return create_app(load_mapping(str(data.bench_mapping())))


async def _run(args: argparse.Namespace) -> int:
    figures = []
    names = [name.strip() for name in args.scenario.split(",")]
    counts = [int(n) for n in str(args.requests).split(",")]
    if len(counts) not in (1, len(names)):
        raise SystemExit("bench.cpu: --requests takes one count, or one per scenario")
    for n, name in enumerate(names):
        figures.append(await _run_scenario(args, name, counts[n if len(counts) > 1 else 0]))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(_log_table(figures, args)) + "\n")
        out.with_suffix(".json").write_text(json.dumps(figures))
    return 0


def _log_table(figures: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        f"In-process CPU per request with the request log on (info) and off (warning), alternated in one"
        f" process, {args.rounds} rounds each ({args.concurrency} requests at a time):",
        "",
        "| scenario | requests a round | log on ms | log off ms | cost | rounds on | rounds off |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f['scenario']} | {f['requests']:,} | {f['on_ms']:.3f} | {f['off_ms']:.3f} | {f['cost']:+.1%} |"
            f" {' '.join(f'{v:.3f}' for v in f['on'])} | {' '.join(f'{v:.3f}' for v in f['off'])} |"
        )
    return lines


async def _run_scenario(args: argparse.Namespace, scenario_name: str, requests: int) -> dict[str, Any]:
    db = data.ensure_database(1_000_000)
    samples = data.load_samples(db)
    from bench.__main__ import default_backend

    backend = default_backend() if args.backend == "auto" else args.backend
    url = f"{backend}:///{db}"
    os.environ.update(
        {"BRIDGEHEAD_DB_URL": url, "BRIDGEHEAD_JWT_SECRET": data.JWT_SECRET, "BENCH_CURSOR_SECRET": data.CURSOR_SECRET,
         "BENCH_DB_URL": url, "BENCH_JWT_SECRET": data.JWT_SECRET, "BENCH_FLOOR_MODE": "executor"}
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {data.mint()}"}
    scenario = next((s for s in SCENARIOS if s.name == scenario_name), None)
    if scenario is None:
        raise SystemExit(
            f"bench.cpu: no scenario {scenario_name!r} (scenarios: {', '.join(s.name for s in SCENARIOS)})"
        )
    servers = ["bridgehead", "floor"] if args.server == "both" else [args.server]
    paths = {server: scenario.paths(server, samples, {}) for server in servers}
    if any(p is None for p in paths.values()):
        raise SystemExit(f"bench.cpu: scenario {scenario_name} has no paths for {args.server} here")
    levels = ["info", "warning"] if args.compare_log else [args.log_level]
    runs = [(server, level) for server in servers for level in (levels if server == "bridgehead" else ["-"])]
    log_path = os.path.join(tempfile.mkdtemp(prefix="bench-cpu-"), "requests.log")
    results: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    for round_no in range(args.rounds):
        for server, level in runs if round_no % 2 == 0 else runs[::-1]:
            app = _app(server, level, log_path)
            inbox, task = await _lifespan(app)
            try:
                ms, rps = await _measure(app, paths[server] or [], headers, requests, args.concurrency)
            finally:
                await inbox.put({"type": "lifespan.shutdown"})
                await task
            results[(server, level)].append(ms)
            print(
                f"bench.cpu: round {round_no + 1} {scenario_name} {_label(server, level)}: {ms:.3f} ms CPU per"
                f" request ({rps:,.0f} req/s in-process)",
                flush=True,
            )
    for (server, level), values in results.items():
        print(f"{scenario_name}, {_label(server, level)}: median {statistics.median(values):.3f} ms CPU per request "
              f"({' '.join(f'{v:.3f}' for v in values)})")  # fmt: skip
    figures: dict[str, Any] = {"scenario": scenario_name, "requests": requests}
    if args.compare_log:
        on, off = (statistics.median(results[("bridgehead", level)]) for level in levels)
        print(f"the request log costs {100 * (on - off) / off:+.1f} % CPU per request ({scenario_name})")
        figures |= {"on": results[("bridgehead", "info")], "off": results[("bridgehead", "warning")],
                    "on_ms": on, "off_ms": off, "cost": (on - off) / off}  # fmt: skip
    if len(servers) == 2:
        mine = statistics.median(results[("bridgehead", levels[0])])
        floor = statistics.median(results[("floor", "-")])
        print(f"Bridgehead costs {mine / floor:.2f}x the floor's CPU per request ({scenario_name}, log {levels[0]})")
    return figures


def _label(server: str, level: str) -> str:
    return "floor" if server == "floor" else f"log {level}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--scenario", default="get", help="a scenario, or several separated by commas")
    parser.add_argument("--requests", default="4000", help="requests a round: one count, or one per scenario")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--compare-log", action="store_true", help="alternate the request log on (info) and off")
    parser.add_argument("--server", choices=("bridgehead", "floor", "both"), default="bridgehead")
    parser.add_argument("--out", help="write the request log's cost (with --compare-log) to this table and .json")
    args = parser.parse_args(argv)
    import uvloop

    if args.out and not args.compare_log:
        parser.error("--out writes the request log's cost: give --compare-log too")
    return uvloop.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
