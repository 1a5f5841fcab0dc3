"""Alerts: conditions on syncs evaluated from the state store, raised once per change, delivered once.

``list_active(store)`` and ``alert_history(store)`` are what a console shows;
``AlertMonitor(config, store, http).evaluate()`` is what the engine and the loop call.
"""

from __future__ import annotations

from sync.alerts.config import ALERT_KINDS, AlertConfig, AlertKind, EmailConfig, SyncAlertConfig
from sync.alerts.model import Alert, AlertEvent, AlertNotice, alert_history, list_active
from sync.alerts.monitor import AlertMonitor, Change

__all__ = (
    "ALERT_KINDS",
    "Alert",
    "AlertConfig",
    "AlertEvent",
    "AlertKind",
    "AlertMonitor",
    "AlertNotice",
    "Change",
    "EmailConfig",
    "SyncAlertConfig",
    "alert_history",
    "list_active",
)
