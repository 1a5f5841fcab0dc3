"""Medians, ratios and the markdown table written to bench/results/latest.md."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.export import ExportRounds
    from bench.load import Result
    from bench.scenarios import Scenario
    from bench.servers import ServerSpec

__all__ = ("Cell", "ceiling_line", "render")


class Cell:
    """All rounds of one (scenario, server) pair."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.cpu_us: list[float] = []
        """Per round, the server processes' CPU (user + system) per request answered, in µs."""

    @property
    def cpu_per_request(self) -> float | None:
        return statistics.median(self.cpu_us) if self.cpu_us else None

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.results)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50_ms for r in self.results)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99_ms for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.results)


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}×" if b else "–"


def render(
    header: Sequence[str],
    scenarios: Sequence[Scenario],
    servers: Sequence[ServerSpec],
    cells: dict[tuple[str, str], Cell],
    exports: dict[str, ExportRounds],
    notes: Sequence[str],
) -> str:
    lines = [*header, ""]
    lines += [
        "| scenario | server | req/s (median) | p50 ms | p99 ms | req/s vs floor | p99 vs floor | req/s vs sandman2 | server CPU µs/req | rounds (req/s) | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for scenario in scenarios:
        floor = cells.get((scenario.name, "floor"))
        sandman = cells.get((scenario.name, "sandman2"))
        for server in servers:
            cell = cells.get((scenario.name, server.name))
            if cell is None or not cell.results:
                continue
            rounds = " ".join(f"{r.rps:.0f}" for r in cell.results)
            cpu = cell.cpu_per_request
            lines.append(
                f"| {scenario.title} | {server.label} | {cell.rps:,.0f} | {cell.p50:.1f} | {cell.p99:.1f} | "
                f"{_ratio(cell.rps, floor.rps if floor else None)} | {_ratio(cell.p99, floor.p99 if floor else None)} | "
                f"{_ratio(cell.rps, sandman.rps if sandman else None)} | {f'{cpu:,.0f}' if cpu else '–'} | "
                f"{rounds} | {cell.errors} |"
            )
    deep, first = cells.get(("page_10000", "bridgehead")), cells.get(("page_1", "bridgehead"))
    if deep and first and deep.results and first.results:
        lines += [
            "",
            f"Keyset: Bridgehead's page 10,000 p50 is {_ratio(deep.p50, first.p50)} page 1's "
            f"({deep.p50:.1f} vs {first.p50:.1f} ms); p99 {_ratio(deep.p99, first.p99)}. Target: within 2×.",
        ]
    if exports:
        lines += [
            "",
            "### Full export (every visible job; sandman2: its whole-table JSON, deleted rows included)",
            "",
            "Each round from a freshly started server, Bridgehead and the floor in turn (who goes first alternating "
            "by round), sandman2 once after them; seconds and rows/s are the rounds' medians, first byte, MB and memory the worst round's.",
            "",
            "| server | rows | seconds | rows/s (median) | rounds (rows/s) | first byte s | MB sent | peak RSS MB (VmHWM) | RSS at rest MB | status |",
            "|---|--:|--:|--:|---|--:|--:|--:|--:|---|",
        ]
        labels = {s.name: s.label for s in servers}
        for name, e in exports.items():
            lines.append(
                f"| {labels.get(name, name)} | {e.rows:,} | {e.seconds:.1f} | {e.rows_per_s:,.0f} | {e.shown()} | "
                f"{e.first_byte_s:.2f} | {e.megabytes:,.0f} | {e.peak_rss_mb:,.0f} | {e.idle_rss_mb:,.0f} | {e.status} |"
            )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def ceiling_line(cells: dict[tuple[str, str], Cell]) -> list[str]:
    """The ceiling against sandman2 and Bridgehead, when it ran: what the 3-times-sandman2 targets are judged against."""
    parts = []
    for scenario, title in (("get", "get"), ("list_100", "list of 100")):
        ceiling, sandman, ours = (cells.get((scenario, s)) for s in ("ceiling", "sandman2", "bridgehead"))
        if not (ceiling and ceiling.results and sandman and sandman.results):
            continue
        text = f"{title} {_ratio(ceiling.rps, sandman.rps)} sandman2"
        if ours and ours.results:
            text += f" (Bridgehead {_ratio(ours.rps, sandman.rps)}; the ceiling is {_ratio(ceiling.rps, ours.rps)} Bridgehead)"
        cpu, theirs = ceiling.cpu_per_request, sandman.cpu_per_request
        if cpu and theirs:  # steadier than req/s when other work shares the machine
            text += f", in CPU per request {_ratio(theirs, cpu)} sandman2's ({cpu:,.0f} vs {theirs:,.0f} µs"
            mine = ours.cpu_per_request if ours else None
            text += f"; Bridgehead {mine:,.0f} µs)" if mine else ")"
        parts.append(text)
    if not parts:
        return []
    return [
        "",
        f"Ceiling (raw pyodbc on the event loop, no framework; not a target): {', '.join(parts)}.",
    ]
