"""``AlertMonitor``: evaluate the conditions, change state once, deliver the change.

Called by the engine after every run (and when a run is held for approval) and by
``sync run --loop`` on its tick (lag grows between runs, and a loop whose runs hang
must still say so). A change is delivered by the process whose compare-and-set made
it, after the state is stored, so a crash in between loses a delivery rather than
sending one twice; what each channel did is kept with the event (``sync status``,
the console's alert history).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import structlog

from sync.alerts.conditions import evaluate_conditions
from sync.alerts.delivery import AlertChannel, channels_for, deliver
from sync.alerts.model import AlertNotice, Condition, runbook_page
from sync.metrics import observe_condition
from sync.state.utc import utcnow

if TYPE_CHECKING:
    import httpx

    from sync.config import SyncConfig
    from sync.state.base import StateStore

__all__ = ("AlertMonitor", "Change")

log = structlog.get_logger("bridgehead.sync.alerts")


class Change(AlertNotice, frozen=True, kw_only=True):
    """A raise or clear this process made, with what its delivery did."""

    delivery: str


class AlertMonitor:
    """Evaluates a mapping's alerts against a state store; thread-safe (it keeps nothing itself)."""

    def __init__(
        self,
        config: SyncConfig,
        store: StateStore,
        http: httpx.Client,
        *,
        environ: Mapping[str, str] | None = None,
        channels: Sequence[AlertChannel] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.channels = list(channels) if channels is not None else channels_for(config.alert, http, environ)

    @property
    def tick_s(self) -> float:
        return self.config.alert.tick_s if self.config.alert else 15.0

    def evaluate(self, syncs: Sequence[str] | None = None) -> list[Change]:
        """Evaluate ``syncs`` (every sync and destination when None); the changes this call made and delivered."""
        changes = []
        for condition in evaluate_conditions(self.config, self.store, self.clock(), syncs):
            observe_condition(condition)
            change = self._apply(condition)
            if change is not None:
                changes.append(change)
        return changes

    def safely(self, syncs: Sequence[str] | None = None) -> list[Change]:
        """``evaluate``, but a failure (the store down) is logged, never raised: it must not fail a run."""
        try:
            return self.evaluate(syncs)
        except Exception as exc:
            log.error("sync alert evaluation failed", error=f"{type(exc).__name__}: {exc}")
            return []

    def _apply(self, c: Condition) -> Change | None:
        event_id = self.store.transition_alert(
            c.kind, c.subject, c.active, message=c.message, sync=c.sync, destination=c.destination,
            value=c.value, threshold=c.threshold, details=c.details,
        )  # fmt: skip
        if event_id is None:
            return None
        notice = AlertNotice(id=event_id, event="raised" if c.active else "cleared", kind=c.kind, subject=c.subject,
                             message=c.message, at=self.clock(), sync=c.sync, destination=c.destination, value=c.value,
                             threshold=c.threshold, runbook=runbook_page(c.sync), details=c.details)  # fmt: skip
        outcome = deliver(notice, self.channels)
        self.store.record_delivery(event_id, outcome)
        level = log.warning if c.active else log.info
        level(f"sync alert {notice.event}", alert=c.kind, subject=c.subject, sync=c.sync, alert_id=event_id,
              message=c.message, delivery=outcome)  # fmt: skip
        return Change(**{f: getattr(notice, f) for f in notice.__struct_fields__}, delivery=outcome)
