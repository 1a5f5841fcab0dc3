"""The in-memory half of alerting for ``MemoryStore``: the same promises as ``sync/state/alerts.py``."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Sequence
from typing import Any

import msgspec

from legacy_adapters.redaction import redact_text
from sync.state.alerts import GrantStatus
from sync.state.utc import utcnow

__all__ = ("MemoryAlertLog",)


class MemoryAlertLog:
    """Mixed into ``MemoryStore``, whose lock, controls, runs and DLQ it reads."""

    _lock: threading.RLock
    _controls: dict[str, dict[str, Any]]
    _runs: dict[int, dict[str, Any]]
    _dlq: dict[tuple[str, str], dict[str, Any]]

    def __init__(self) -> None:
        self._alerts: dict[tuple[str, str], dict[str, Any]] = {}
        self._alert_events: list[dict[str, Any]] = []
        self._grants: dict[str, dict[str, Any]] = {}
        self._event_ids = itertools.count(1)

    def alert_states(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = [
                {**a, "details": msgspec.json.decode(msgspec.json.encode(a["details"]))} for a in self._alerts.values()
            ]
        return sorted(rows, key=lambda a: (a["since"], a["kind"], a["subject"]))

    def transition_alert(
        self,
        kind: str,
        subject: str,
        active: bool,
        *,
        message: str,
        sync: str | None = None,
        destination: str | None = None,
        value: float | None = None,
        threshold: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> int | None:
        now = utcnow()
        message = redact_text(message)  # what the SQL store's RedactedText columns do
        values = {"message": message, "sync": sync, "destination": destination, "value": value,
                  "threshold": threshold, "details": msgspec.json.decode(msgspec.json.encode(details or {})),
                  "evaluated_at": now}  # fmt: skip
        with self._lock:
            alerts, events = self._alerts, self._alert_events
            row = alerts.get((kind, subject))
            if row is None and not active:
                return None
            if row is not None and row["active"] == active:
                row.update(values)
                return None
            alerts[(kind, subject)] = {"kind": kind, "subject": subject, "active": active, "since": now, **values}
            event_id = next(self._event_ids)
            events.append({"id": event_id, "kind": kind, "subject": subject, "event": "raised" if active else "cleared",
                           "message": message, "at": now, "delivery": None})  # fmt: skip
            return event_id

    def record_delivery(self, event_id: int, outcome: str) -> None:
        with self._lock:
            for event in self._alert_events:
                if event["id"] == event_id:
                    event["delivery"] = outcome

    def alert_events(self, limit: int = 100, *, subject: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(e) for e in reversed(self._alert_events) if subject in (None, e["subject"])]
        return found[:limit]

    def failure_streak(self, sync: str) -> int:
        with self._lock:
            return int(self._controls.get(sync, {}).get("consecutive_failures", 0))

    def dlq_count(self, sync: str) -> int:
        with self._lock:
            return sum(1 for s, _ in self._dlq if s == sync)

    def run_started(
        self, sync: str, statuses: Sequence[str] | None = None, *, newest: bool = True
    ) -> dt.datetime | None:
        with self._lock:
            times = [r["started_at"] for r in self._runs.values() if r["sync"] == sync and not r["dry_run"]
                     and (statuses is None or r["status"] in statuses)]  # fmt: skip
        if not times:
            return None
        return max(times) if newest else min(times)

    def set_grant(self, destination: str, status: GrantStatus, reason: str = "") -> None:
        with self._lock:
            self._grants[destination] = {"status": status, "reason": redact_text(reason), "updated_at": utcnow()}

    def grants(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {d: dict(g) for d, g in self._grants.items()}
