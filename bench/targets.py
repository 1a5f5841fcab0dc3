"""Issue 13's targets, each with its status, from this run's cells and the sync/backend result files.

The sync figures and the PostgreSQL/MariaDB exports come from the JSON files that
``bench.sync_snapshot``, ``bench.sync_latency`` and ``bench.backends`` write beside their
tables (``make bench`` runs them first); a missing file is reported as not measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.export import ExportResult
    from bench.report import Cell

__all__ = ("RESULTS", "render_targets", "sections")

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = (
    ("sync-snapshot.md", "Sync: snapshot diff of 1M rows, and throughput at the shop's rate limit"),
    ("sync-latency.md", "Sync: stock latency during a full items run"),
    ("export-backends.md", None),
)


def _load(name: str) -> Any:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def render_targets(cells: dict[tuple[str, str], Cell], exports: dict[str, ExportResult]) -> list[str]:
    rows: list[tuple[str, str, bool | None]] = []

    def cell(scenario: str, server: str) -> Cell | None:
        found = cells.get((scenario, server))
        return found if found is not None and found.results else None

    for scenario, title in (("get", "get by key"), ("list_100", "list of 100")):
        ours, floor, sandman = cell(scenario, "bridgehead"), cell(scenario, "floor"), cell(scenario, "sandman2")
        if ours and floor:
            rows.append((f"{title}: req/s ≥ 1.0× the floor", f"{ours.rps / floor.rps:.2f}×", ours.rps >= floor.rps))
            rows.append(
                (f"{title}: p99 ≤ 1.25× the floor's", f"{ours.p99 / floor.p99:.2f}×", ours.p99 <= 1.25 * floor.p99)
            )
        else:
            rows.append((f"{title} vs the floor", "–", None))
        if ours and sandman:
            rows.append(
                (f"{title}: req/s ≥ 3× sandman2", f"{ours.rps / sandman.rps:.2f}×", ours.rps >= 3 * sandman.rps)
            )
        else:
            rows.append((f"{title} vs sandman2", "–", None))

    for scenario, title in (("get", "get by key"), ("list_100", "list of 100")):
        on, off = cell(scenario, "bridgehead"), cell(scenario, "bridgehead_quiet")
        if on and off:
            cost = 1 - on.rps / off.rps
            rows.append((f"request log on costs < 5 % ({title}, req/s on vs off)", f"{cost:+.1%}", cost < 0.05))

    backend_rows = _load("export-backends.json") or []
    measured: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    if "bridgehead" in exports:
        ours_e, floor_e = exports["bridgehead"], exports.get("floor")
        measured["SQLite (sqliteodbc)"] = (
            {"rows_per_s": ours_e.rows_per_s, "first_byte_s": ours_e.first_byte_s, "peak_rss_mb": ours_e.peak_rss_mb},
            {"rows_per_s": floor_e.rows_per_s} if floor_e else None,
        )
    for backend in ("postgresql", "mariadb"):
        found = [r for r in backend_rows if r.get("backend") == backend and "rows" in r]
        ours_b = next((r for r in found if r["server"] == "Bridgehead"), None)
        floor_b = next((r for r in found if r["server"] != "Bridgehead"), None)
        if ours_b is not None:
            ours_b = {**ours_b, "rows_per_s": ours_b["rows"] / ours_b["seconds"] if ours_b["seconds"] else 0.0}
        if floor_b is not None:
            floor_b = {**floor_b, "rows_per_s": floor_b["rows"] / floor_b["seconds"] if floor_b["seconds"] else 0.0}
        measured[f"{'PostgreSQL (psqlODBC)' if backend == 'postgresql' else 'MariaDB (Connector/ODBC)'}"] = (
            ours_b,
            floor_b,
        )
    for name, (ours_x, floor_x) in measured.items():
        if ours_x is None:
            rows.append((f"export on {name}", "–", None))
            continue
        if floor_x:
            ratio = ours_x["rows_per_s"] / floor_x["rows_per_s"] if floor_x["rows_per_s"] else 0.0
            rows.append(
                (
                    f"export on {name}: rows/s ≥ 1.0× the floor",
                    f"{ratio:.2f}× ({ours_x['rows_per_s']:,.0f} rows/s)",
                    ratio >= 1.0,
                )
            )
        rows.append(
            (f"export on {name}: first byte < 0.5 s", f"{ours_x['first_byte_s']:.2f} s", ours_x["first_byte_s"] < 0.5)
        )
        rows.append(
            (f"export on {name}: peak RSS < 100 MB", f"{ours_x['peak_rss_mb']:,.0f} MB", ours_x["peak_rss_mb"] < 100)
        )

    sync = _load("sync-snapshot.json") or {}
    diffs = [p for p in sync.get("snapshot") or [] if p.get("pass") != "stream"]
    if diffs:
        slowest = max(diffs, key=lambda p: p["seconds"])
        biggest = max(diffs, key=lambda p: p["rss_mb"])
        rows.append(
            (
                "snapshot diff of 1M rows < 30 s (slowest pass)",
                f"{slowest['seconds']:.1f} s ({slowest['pass']})",
                slowest["seconds"] < 30,
            )
        )
        rows.append(
            (
                "snapshot diff of 1M rows in < 150 MB",
                f"{biggest['rss_mb']:.0f} MiB ({biggest['pass']})",
                biggest["rss_mb"] < 150,
            )
        )
    else:
        rows.append(("snapshot diff of 1M rows", "–", None))
    throughput = sync.get("throughput")
    if throughput:
        rows.append(
            (
                "sync uses ≥ 90 % of the fake shop's cost bucket",
                f"{throughput['share']:.0%}",
                throughput["share"] >= 0.9,
            )
        )
        rows.append(("no THROTTLED storm", f"{throughput['throttled']} THROTTLED", throughput["throttled"] == 0))
    else:
        rows.append(("sync throughput at the rate limit", "–", None))
    latency = _load("sync-latency.json")
    if latency:
        rows.append(
            (
                "stock p99 < 60 s during a full items run",
                f"{latency['p99']:.1f} s (p50 {latency['p50']:.1f} s)",
                latency["p99"] < 60,
            )
        )
    else:
        rows.append(("stock latency during a full items run", "–", None))

    lines = ["## Targets (issue 13)", "", "| target | this run | status |", "|---|--:|---|"]
    lines += [f"| {name} | {value} | {_status(ok)} |" for name, value, ok in rows]
    return lines


def sections() -> Sequence[str]:
    """The sync and backend tables, as their own runs wrote them."""
    lines: list[str] = []
    for name, title in SECTIONS:
        path = RESULTS / name
        lines += [""]
        if title:
            lines += [f"## {title}", ""]
        lines += [path.read_text().rstrip() if path.exists() else f"(not measured: bench/results/{name} is missing)"]
    return lines
