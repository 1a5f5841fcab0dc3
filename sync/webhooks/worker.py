"""Drains the webhook queue: a background thread in the gateway, or one pass from the CLI."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

import structlog

from legacy_adapters.exceptions import LegacyError
from sync.exceptions import Fatal, Retriable
from sync.webhooks.shopify_orders import Unappliable

if TYPE_CHECKING:
    from sync.webhooks.queue import WebhookEvent, WebhookQueue

__all__ = ("Applier", "WebhookWorker")

log = structlog.get_logger("bridgehead.webhooks")

_BACKOFF_S = (1, 5, 30, 120, 600)


class Applier(Protocol):
    """Applies one source's events to the legacy database; returns the event's final status."""

    source: str

    def apply(self, event: WebhookEvent) -> str: ...


class WebhookWorker:
    def __init__(self, queue: WebhookQueue, appliers: dict[str, Applier], *, idle_s: float = 1.0) -> None:
        self.queue, self.appliers, self.idle_s = queue, appliers, idle_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, limit: int = 50) -> dict[str, int]:
        """Apply what is claimable now; counts by outcome."""
        outcomes: dict[str, int] = {}
        if not self.appliers:
            return outcomes
        for event in self.queue.claim(tuple(self.appliers), limit=limit):
            outcome = self._apply(event)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    def _apply(self, event: WebhookEvent) -> str:
        try:
            outcome = self.appliers[event.source].apply(event)
            # An event the applier acts on is finished in its own transaction; one it ignores (a topic
            # it does not handle) is finished here, or its lease would run out and it would come back.
            self.queue.settle(event, outcome)
            return outcome
        except Unappliable as exc:
            # The destination's data can never take it as it is: a person must look (webhooks dlq).
            self.queue.finish(None, event, "dead", str(exc))
            log.warning("webhook dead-lettered", source=event.source, topic=event.topic, reason=str(exc))
            return "dead"
        except LegacyError as exc:
            # The legacy database is busy or away: try again later, never dead-letter for it.
            wait = _BACKOFF_S[min(event.attempts, len(_BACKOFF_S)) - 1]
            self._later(event, wait, f"{type(exc).__name__}: {exc}")
            return "retry"
        except Retriable as exc:
            # The provider's API (read to learn what an event means) is busy or away.
            wait = _BACKOFF_S[min(event.attempts, len(_BACKOFF_S)) - 1]
            self._later(event, wait, f"{type(exc).__name__}: {exc}")
            return "retry"
        except Fatal as exc:
            # No grant, or one that needs reconnecting: the event keeps until a person fixes it, and is
            # looked at again rarely (the grant's status says why), never dead-lettered for it.
            self._later(event, _BACKOFF_S[-1], str(exc))
            log.warning("webhook waits for the connection", source=event.source, reason=str(exc))
            return "retry"
        except Exception as exc:
            wait = _BACKOFF_S[min(event.attempts, len(_BACKOFF_S)) - 1]
            log.exception("webhook failed", source=event.source, topic=event.topic, exc_info=exc)
            self._later(event, wait, f"unexpected {type(exc).__name__}")
            return "retry"

    def _later(self, event: WebhookEvent, wait_s: float, error: str) -> None:
        from sync.webhooks.queue import WEBHOOK_EVENTS

        with self.queue.db.engine.begin() as conn:
            conn.execute(
                WEBHOOK_EVENTS.update()
                .where(WEBHOOK_EVENTS.c.id == event.id)
                .values(status="working", lease_until=time.time() + wait_s, error=error)
            )

    # -- in the gateway ---------------------------------------------------------------------------

    def notify(self) -> None:
        """A delivery was stored: apply it now instead of at the next idle tick."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None and self.appliers:
            self._thread = threading.Thread(target=self._loop, name="bridgehead-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception as exc:  # the state store away: keep the thread, try again shortly
                log.warning("webhook queue unavailable", error=type(exc).__name__)
                done = {}
            if not done:
                self._wake.wait(self.idle_s)
                self._wake.clear()
