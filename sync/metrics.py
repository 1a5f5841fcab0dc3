"""Prometheus metrics of the sync engine, served by ``sync run --loop --metrics-port N``.

Process-wide (prometheus_client's registry), like the gateway's: the loop process
exposes its own runs. Counters move when a run finishes; the gauges are set each time
alerts are evaluated (after every run and on the loop's tick), so lag keeps growing on
a scrape while no run succeeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from sync.alerts.model import Condition
    from sync.engine import RunReport

__all__ = ("SYNC_METRICS", "observe_condition", "observe_run")

RUNS = Counter("bridgehead_sync_runs", "Sync runs finished, by outcome.", ("sync", "status"))
RECORDS = Counter("bridgehead_sync_records", "Records by what happened to them in a run.", ("sync", "outcome"))
LAG = Gauge("bridgehead_sync_lag_seconds", "Seconds since the last successful run started.", ("sync",),
            multiprocess_mode="max")  # fmt: skip
DEAD_LETTERS = Gauge("bridgehead_sync_dead_letters", "Records in the dead-letter queue.", ("sync",),
                     multiprocess_mode="max")  # fmt: skip
ALERTS = Gauge("bridgehead_sync_alert_active", "1 while the alert is raised.", ("kind", "subject"),
               multiprocess_mode="max")  # fmt: skip

SYNC_METRICS = (
    ("bridgehead_sync_runs_total", "counter; sync, status (succeeded, partially_failed, failed, cancelled, "
     "awaiting_approval)"),
    ("bridgehead_sync_records_total", "counter; sync, outcome (created, updated, deleted, failed, dead_lettered, "
     "skipped, conflicts)"),
    ("bridgehead_sync_lag_seconds", "gauge; sync (syncs with a latency target)"),
    ("bridgehead_sync_dead_letters", "gauge; sync"),
    ("bridgehead_sync_alert_active", "gauge, 1 while raised; kind, subject"),
)  # fmt: skip
"""Names as scraped, and their labels (the runbook lists them)."""


def observe_run(report: RunReport) -> None:
    RUNS.labels(report.sync, report.status).inc()
    outcomes = {"created": report.done["create"], "updated": report.done["update"], "deleted": report.done["delete"],
                "failed": report.failed, "dead_lettered": report.dead_lettered, "skipped": report.skipped,
                "conflicts": report.conflicts}  # fmt: skip
    for outcome, count in outcomes.items():
        if count:
            RECORDS.labels(report.sync, outcome).inc(count)


def observe_condition(condition: Condition) -> None:
    ALERTS.labels(condition.kind, condition.subject).set(1 if condition.active else 0)
    if condition.value is None or condition.sync is None:
        return
    if condition.kind == "lag":
        LAG.labels(condition.sync).set(condition.value)
    elif condition.kind == "dlq_growth":
        DEAD_LETTERS.labels(condition.sync).set(condition.value)
