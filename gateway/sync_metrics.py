"""Sync metrics at ``/metrics``, read from the state store at each scrape.

The sync engine may run in ``bridgehead sync run --loop``, in another process or host; the
state store is what every worker shares, so the gateway reports from it rather than from
counters in its own memory. Names and labels (README "Operations"):

==========================================  ==================================================
``bridgehead_sync_store_runs_total``              counter; sync, outcome (the run's status:
                                            succeeded, partial, failed, ...), dry runs aside
``bridgehead_sync_store_records_total``           counter; sync, destination, result (sent, failed,
                                            dead_lettered), summed over recorded runs
``bridgehead_sync_store_dlq_records``             gauge; sync
``bridgehead_sync_store_outbox_records``          gauge; sync: records planned, not yet delivered
``bridgehead_sync_store_lag_seconds``             gauge; sync: age of the oldest undelivered change
                                            (0 when the outbox is empty)
``bridgehead_sync_store_rate_limit_remaining``    gauge; destination: the shared rate budget's
                                            points left now (Shopify's cost bucket)
``bridgehead_sync_store_up``                gauge: 1 when the state store answered the scrape
==========================================  ==================================================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sync.state.utc import utcnow

if TYPE_CHECKING:
    from legacy_adapters.mapping import Mapping
    from sync.config import SyncConfig
    from sync.state.base import StateStore
    from sync.state.store import StateDatabase

__all__ = ("SyncCollector", "sync_collector")

log = structlog.get_logger("bridgehead.metrics")


class SyncCollector(Collector):
    def __init__(self, config: SyncConfig, store: StateStore) -> None:
        self.config, self.store = config, store
        # Budgets are keyed by "<kind>:<url>"; the label is the destination's name, never its URL.
        self.buckets: dict[str, str] = {}
        for name, destination in config.destinations.items():
            url = getattr(destination, "url", None)
            if isinstance(url, str):
                self.buckets[f"{getattr(destination, 'kind', 'shopify')}:{url.rstrip('/')}"] = name

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("bridgehead_sync_store_up", "1 when the state store answered this scrape.")
        try:
            families = list(self._families())
        except Exception as exc:  # a scrape must answer even when the state store does not
            log.warning("sync metrics unavailable: state store error", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "bridgehead_sync_store_runs", "Sync runs recorded, by outcome.", labels=["sync", "outcome"]
        )
        records = CounterMetricFamily(
            "bridgehead_sync_store_records",
            "Records written to, refused by or dead-lettered for a destination, over recorded runs.",
            labels=["sync", "destination", "result"],
        )
        dlq = GaugeMetricFamily("bridgehead_sync_store_dlq_records", "Dead-lettered records.", labels=["sync"])
        outbox = GaugeMetricFamily(
            "bridgehead_sync_store_outbox_records", "Records awaiting delivery.", labels=["sync"]
        )
        lag = GaugeMetricFamily(
            "bridgehead_sync_store_lag_seconds", "Age of the oldest change not yet delivered.", labels=["sync"]
        )
        now = utcnow()
        for name, spec in self.config.syncs.items():
            totals = self.store.run_totals(name)
            for outcome, count in sorted(totals["runs"].items()):
                runs.add_metric([name, outcome], count)
            for result in ("sent", "failed", "dead_lettered"):
                records.add_metric([name, spec.destination, result], totals[result])
            dlq.add_metric([name], self.store.dlq_count(name))
            outbox.add_metric([name], self.store.pending(name))
            oldest = self.store.oldest_pending_at(name)
            lag.add_metric([name], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        remaining = GaugeMetricFamily(
            "bridgehead_sync_store_rate_limit_remaining",
            "Points left in the destination's shared rate budget now.",
            labels=["destination"],
        )
        clock = time.time()
        for budget in self.store.budgets():
            destination = self.buckets.get(str(budget["bucket"]))
            if destination is None:
                continue
            refilled = budget["available"] + max(0.0, clock - budget["at"]) * budget["restore_rate"]
            remaining.add_metric([destination], round(min(budget["maximum"], refilled), 1))
        yield from (runs, records, dlq, outbox, lag, remaining)


def sync_collector(mapping: Mapping, state: StateDatabase) -> SyncCollector | None:
    """The collector for the mapping's syncs over their state store; None without syncs.

    A sync section the gateway cannot read gives no sync metrics and a warning, never a failed
    start: ``bridgehead sync`` names the error when it runs.
    """
    if not mapping.sync:
        return None
    from legacy_adapters.exceptions import MappingError
    from sync.config import load_sync_config
    from sync.state.store import StateDatabase
    from sync.state.sync_store import SyncStore

    try:
        config = load_sync_config(mapping.sync)
    except MappingError as exc:
        log.warning("no sync metrics: the sync section does not load", error=str(exc))
        return None
    own_url = mapping.sync.get("state_url")
    store = SyncStore(StateDatabase(own_url) if isinstance(own_url, str) else state)
    return SyncCollector(config, store)
