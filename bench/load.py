"""Drive one server with wrk: a Lua script rotates the request paths and sends the auth header.

wrk's own ``done`` hook prints a JSON line with requests, duration, latency percentiles
and errors, so nothing is scraped from its human-readable report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.data import work_path

__all__ = ("Result", "run_wrk")

_LUA = """
local paths = {%(paths)s}
local headers = {%(headers)s}
local counter = 0
function setup(thread)
  thread:set("offset", math.random(#paths))
end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[((counter + offset) %% #paths) + 1], headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@@{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"mean_us":%%d,"errors":%%d,"status":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    """Socket errors and timeouts plus non-2xx/3xx answers: a run with errors is not a measurement."""


def run_wrk(
    base: str, paths: list[str], headers: dict[str, str], seconds: float, threads: int, connections: int
) -> Result:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    script = work_path("wrk-script.lua")
    script.write_text(
        _LUA
        % {
            "paths": ", ".join(_lua_string(p) for p in paths),
            "headers": ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()),
        }
    )
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "20s", "-s", str(script), base,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln[2:] for ln in out.stdout.splitlines() if ln.startswith("@@")), None)
    if line is None:
        raise SystemExit(f"bench: wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    data = json.loads(line)
    duration = data["duration_us"] / 1e6
    return Result(
        rps=data["requests"] / duration,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["errors"] + data["status"],
    )


def lua_path() -> Path:
    return work_path("wrk-script.lua")
