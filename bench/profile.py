"""``python -m bench.profile``: sample Bridgehead's hot path with py-spy under wrk load.

Starts Bridgehead with one worker (so one process holds all the work), drives one
scenario with wrk, records with ``py-spy record --format raw`` (collapsed stacks) and
prints where the samples fall: by function (self and inclusive) and by our own
categories (auth, params, SQL compile, driver, row decoding, encoding, framework).
The collapsed stacks stay in ``bench/.work/profile-<scenario>.txt`` (speedscope and
flamegraph.pl read them) for a closer look.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import threading
from typing import Any

from bench import data
from bench.__main__ import SERVERS, default_backend
from bench.load import run_wrk
from bench.scenarios import SCENARIOS, bridgehead_deep_cursors
from bench.servers import VENV_BIN, start

# First match wins, checked from the leaf upwards: the innermost frame we recognise names the cost.
CATEGORIES = (
    (
        "driver (pyodbc fetch/execute)",
        # Database._fetch_raw's own lines are the raw cursor's execute and fetch (and their bookkeeping).
        ("pyodbc", "do_execute", "fetchall (sqlalchemy/engine/cursor", "_fetchall_impl", "fetchmany", "_fetch_raw"),
    ),
    ("watchdog timer thread start", ("Watchdog.arm", "Thread.start", "Timer")),
    ("row decoding (transforms)", ("legacy_adapters/transforms", "rows.py")),
    ("ETag / msgpack / hashing", ("row_etag",)),
    ("JSON encoding", ("Encoder.encode", "encode (msgspec")),
    (
        "SQL building + compile",
        ("compile", "build_select", "builder.py", "filters.py", "_compiler", "selected_columns", "order_for"),
    ),
    (
        "connection pool checkout/checkin + pre-ping",
        ("pool/base.py", "pool/impl.py", "_do_ping", "do_ping", "_checkout", "_checkin"),
    ),
    ("SQLAlchemy execute machinery", ("sqlalchemy/engine",)),
    ("auth (JWT verify)", ("jwt/", "authenticate", "TokenVerifier")),
    ("query parameters / cursors", ("gateway/params.py", "gateway/pagination.py")),
    ("structlog / logging", ("structlog", "logging/", "gateway/logging.py", "access_log")),
    (
        "metrics, console counter, version headers",
        ("prometheus_client", "gateway/metrics.py", "gateway/console/requests.py", "gateway/versions.py"),
    ),
    ("read handlers (gateway/fast_reads.py, resources.py)", ("gateway/fast_reads.py", "gateway/resources.py")),
    ("reader (legacy_adapters/reader.py, routing)", ("legacy_adapters/reader.py", "migration/routing.py")),
    (
        "thread hop (executor, anyio to_thread)",
        (
            "anyio",
            "to_thread",
            "run_sync_in_worker_thread",
            "_thread.lock",
            "concurrent/futures",
            "gateway/executor.py",
        ),
    ),
    ("Litestar + uvicorn (HTTP, routing, middleware)", ("litestar", "uvicorn", "httptools", "asyncio", "uvloop")),
)


def _category(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(raw_path: str, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    cats: collections.Counter[str] = collections.Counter()
    total = 0
    for line in open(raw_path):
        stack_text, _, count_text = line.rstrip().rpartition(" ")
        if not stack_text or not count_text.isdigit():  # a frame name with a line break in it
            continue
        count = int(count_text)
        stack = [f for f in stack_text.split(";") if not f.startswith(("process ", "thread "))]
        if not stack:
            continue
        total += count
        own[stack[-1]] += count
        for frame in set(stack):
            inclusive[frame] += count
        cats[_category(stack)] += count
    out = [f"{total} samples (threads holding the GIL only)", "", "| where | share |", "|---|--:|"]
    out += [f"| {name} | {100 * n / total:.1f} % |" for name, n in cats.most_common()]
    out += ["", "Top functions by own time:", ""]
    out += [f"- {100 * n / total:5.1f} %  {frame}" for frame, n in own.most_common(top)]
    out += ["", "Top functions by inclusive time:", ""]
    out += [f"- {100 * n / total:5.1f} %  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(out)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far (``/proc/<pid>/stat``)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--scenario", default="get")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--server", default="bridgehead", choices=[s.name for s in SERVERS if s.kind != "sandman2"],
        help="bridgehead_quiet: the same server with the request log off; floor: the hand-written endpoint",
    )  # fmt: skip
    args = parser.parse_args()
    db = data.ensure_database(1_000_000)
    samples = data.load_samples(db)
    backend = default_backend() if args.backend == "auto" else args.backend
    url = f"{backend}:///{db}"
    env = {
        "BRIDGEHEAD_DB_URL": url, "BRIDGEHEAD_JWT_SECRET": data.JWT_SECRET,
        "BENCH_DB_URL": url, "BENCH_JWT_SECRET": data.JWT_SECRET,
        "BENCH_CURSOR_SECRET": data.CURSOR_SECRET, "BENCH_MAPPING": str(data.bench_mapping()),
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {data.mint()}"}
    spec = next(s for s in SERVERS if s.name == args.server)
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    running = start(spec, 18300, 1, env, "/")
    try:
        # Cursors only Bridgehead issues (the floor pages by key): asked of Bridgehead only.
        extras = (
            {"deep_cursors": bridgehead_deep_cursors(running.base, headers, samples)}
            if spec.kind == "bridgehead"
            else {}
        )
        paths = scenario.paths(spec.kind, samples, extras)
        run_wrk(running.base, paths, headers, 2, 1, args.connections)  # warm-up
        stem = data.work_path(f"profile-{args.scenario}")
        spy = [
            str(VENV_BIN / "py-spy"),
            "record",
            "--nonblocking",
            # Only threads holding the GIL: a worker parked on its queue or a loop in epoll is not cost.
            "--gil",
            "-r",
            "250",
            "-d",
            str(args.seconds),
            "-p",
            str(running.process.pid),
        ]
        recorders = [
            subprocess.Popen([*spy, "-f", "raw", "-o", f"{stem}.txt"], stdout=subprocess.DEVNULL),
        ]
        measured: list[Any] = []
        load = threading.Thread(
            target=lambda: measured.append(run_wrk(running.base, paths, headers, args.seconds + 1, 1, args.connections))
        )
        cpu_before = _cpu_s(running.process.pid)
        load.start()
        for r in recorders:
            r.wait()
        load.join()
        cpu_s = _cpu_s(running.process.pid) - cpu_before
    finally:
        running.stop()
    print(
        f"# py-spy, {spec.name}, {backend}, scenario {args.scenario}, {args.seconds} s, wrk -t1 -c{args.connections}\n"
    )
    text = summarise(f"{stem}.txt")
    samples = int(text.split(" ", 1)[0])
    if measured and measured[0].requests:
        # GIL-held samples at 250 Hz over the requests served: CPU per request, whatever else the machine did.
        result = measured[0]
        per_request = samples / 250 / (result.rps * args.seconds) * 1000
        print(f"{result.rps:,.0f} req/s while sampled; {per_request:.2f} ms of GIL-held time per request")
        # The process's whole CPU (every thread, user + system: syscalls too, which py-spy --gil misses).
        print(f"{cpu_s * 1000 / result.requests:.2f} ms of process CPU (user + system) per request\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
