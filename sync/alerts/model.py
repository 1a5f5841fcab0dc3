"""What an alert is, as the console, ``sync status`` and the channels see it, and how to list them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec

from sync.alerts.config import AlertKind

if TYPE_CHECKING:
    from sync.state.base import StateStore

__all__ = ("Alert", "AlertEvent", "AlertNotice", "Condition", "alert_history", "list_active", "runbook_page")


class Condition(msgspec.Struct, frozen=True, kw_only=True):
    """One evaluated condition: whether (kind, subject) should be raised now, and how to say it."""

    kind: AlertKind
    subject: str
    """The sync, or the destination for ``reconnect_needed``."""
    active: bool
    message: str
    sync: str | None = None
    destination: str | None = None
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = {}


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """An active alert."""

    kind: AlertKind
    subject: str
    message: str
    since: dt.datetime
    """When it was raised (aware UTC)."""
    sync: str | None = None
    """The sync it is about; for ``reconnect_needed``, the first sync using the destination."""
    destination: str | None = None
    value: float | None = None
    """What was measured (failing runs, dead letters, lag seconds, deviation share)."""
    threshold: float | None = None
    details: dict[str, Any] = {}
    runbook: str | None = None
    """The runbook page of ``sync`` (``<sync>.md``, written by ``bridgehead runbook``)."""


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One raise or clear, with what each channel did with it."""

    id: int
    kind: str
    subject: str
    event: str
    """``raised`` or ``cleared``."""
    message: str
    at: dt.datetime
    delivery: str | None
    """``webhook ok; email failed: …``, ``no channel configured``, or None while being delivered."""


class AlertNotice(msgspec.Struct, frozen=True, kw_only=True):
    """What the channels send (the webhook's JSON body, the e-mail's content)."""

    id: int
    """The event id: the same alert delivered twice (a retry) carries the same id."""
    event: str
    kind: AlertKind
    subject: str
    message: str
    at: dt.datetime
    sync: str | None = None
    destination: str | None = None
    value: float | None = None
    threshold: float | None = None
    runbook: str | None = None
    details: dict[str, Any] = {}


def runbook_page(sync: str | None) -> str | None:
    return None if sync is None else f"{sync}.md"


def list_active(store: StateStore) -> list[Alert]:
    """The active alerts, oldest first: one per kind and subject."""
    return [
        Alert(
            kind=row["kind"],
            subject=row["subject"],
            message=row["message"],
            since=row["since"],
            sync=row["sync"],
            destination=row["destination"],
            value=row["value"],
            threshold=row["threshold"],
            details=row["details"],
            runbook=runbook_page(row["sync"]),
        )
        for row in store.alert_states()
        if row["active"]
    ]


def alert_history(store: StateStore, limit: int = 100, *, subject: str | None = None) -> list[AlertEvent]:
    """Raised and cleared events, newest first."""
    return [AlertEvent(**e) for e in store.alert_events(limit, subject=subject)]
