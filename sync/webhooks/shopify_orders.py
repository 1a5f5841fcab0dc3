"""Shopify orders reserve legacy stock: what an order still promises is held in the allocated field.

For each order the queue remembers what it reserved (SKU -> quantity). Every order event
(``orders/create``, ``orders/updated``, ``orders/cancelled``) says what the order should hold
now: its line items, or nothing once it is cancelled. Applying an event writes only the
difference, so a redelivered, reordered or repeated event can never reserve twice, and an
event older than the last one applied to that order is ``superseded``.

The legacy rows change through the mapping, exactly like a REST PATCH: the row is read under
lock, the new value encoded by the field's codec (implied decimals, CHAR padding), written by
compare-and-set, and audited with the webhook as its trigger. The state store's record of the
order is written inside the legacy transaction, just before it commits: a failure before then
rolls both back, and the event is tried again.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from legacy_adapters.writer import encode_body, fetch_for_update, update_row
from sync.state.audit import AuditEntry
from sync.webhooks.queue import WEBHOOK_OBJECTS

if TYPE_CHECKING:
    import sqlalchemy as sa

    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import Resource
    from sync.state.audit import AuditLog
    from sync.webhooks.config import ReserveStock
    from sync.webhooks.queue import WebhookEvent, WebhookQueue

__all__ = ("ORDER_TOPICS", "StockReservations", "Unappliable")

log = structlog.get_logger("bridgehead.webhooks")

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/cancelled")


class Unappliable(Exception):
    """The event can never be applied as it is (unknown SKU, bad payload): it is dead-lettered."""


class StockReservations:
    source = "shopify"

    def __init__(
        self, spec: ReserveStock, resource: Resource, database: Database, queue: WebhookQueue, audit: AuditLog
    ) -> None:
        names = {f.name for f in resource.key}
        if spec.sku_field not in names or set(spec.key) | {spec.sku_field} != names:
            raise ValueError(
                f"webhooks.shopify.reserve_stock: {spec.sku_field!r} and key {sorted(spec.key)} must name exactly "
                f"the key of {resource.name} ({sorted(names)})"
            )
        if spec.quantity_field not in resource.fields:
            raise ValueError(f"webhooks.shopify.reserve_stock.quantity_field: {resource.name} has no field "
                             f"{spec.quantity_field!r}")  # fmt: skip
        self.spec, self.resource, self.database, self.queue, self.audit = spec, resource, database, queue, audit

    def apply(self, event: WebhookEvent) -> str:
        """Apply one event; returns its final status (``done`` or ``superseded``)."""
        if event.topic not in ORDER_TOPICS:
            return "done"  # a topic this integration does not act on: acknowledged, nothing to do
        try:
            order = msgspec.json.decode(event.payload)
        except msgspec.DecodeError:
            raise Unappliable("the payload is not JSON") from None
        if not isinstance(order, dict) or event.object_id is None:
            raise Unappliable("the payload is not an order with an id")
        wanted = _reservation(order, event.topic)
        changes: list[tuple[str, decimal.Decimal, decimal.Decimal]] = []
        recorded: list[tuple[str | None, dict[str, Any]]] = []  # the order's state before, once replaced

        def work(conn: sa.Connection) -> str:
            changes.clear()
            with self.queue.db.engine.begin() as state:
                last_at, held = self.queue.object_state(state, self.source, event.object_id or "")
                if last_at is not None and event.occurred_at <= last_at:
                    self.queue.finish(state, event, "superseded", f"an event of {last_at} was applied already")
                    return "superseded"
                current = {sku: decimal.Decimal(q) for sku, q in held.get("reserved", {}).items()}
                for sku in sorted(set(wanted) | set(current)):
                    delta = wanted.get(sku, decimal.Decimal(0)) - current.get(sku, decimal.Decimal(0))
                    if delta:
                        changes.append((sku, *self._reserve(conn, sku, delta)))
                reserved = {sku: str(q) for sku, q in wanted.items()}
                self.queue.set_object_state(
                    state, self.source, event.object_id or "", event.occurred_at, {"reserved": reserved},
                    new=last_at is None,
                )  # fmt: skip
                self.queue.finish(state, event, "done")
            # The state store has committed; only the legacy commit is left.
            recorded.append((last_at, held))
            return "done"

        try:
            outcome = self.database.run_transaction(work)
        except BaseException:
            if recorded:  # the legacy commit failed after the state store took the event: undo that
                self._restore(event, *recorded[-1])
            raise
        for sku, before, after in changes:
            self.audit.record(
                AuditEntry(
                    subject="webhook:shopify",
                    request_id=f"shopify:{event.event_id}",
                    version=self.resource.version,
                    resource=self.resource.name,
                    key=",".join(str(v) for v in self._key(sku)),
                    action=f"webhook {event.topic}",
                    status=200,
                    before={self.spec.quantity_field: str(before)},
                    after={self.spec.quantity_field: str(after)},
                )
            )
        log.info("webhook applied", topic=event.topic, order=event.object_id, outcome=outcome, rows=len(changes))
        return outcome

    def _restore(self, event: WebhookEvent, last_at: str | None, held: dict[str, Any]) -> None:
        o = WEBHOOK_OBJECTS
        with self.queue.db.engine.begin() as state:
            where = (o.c.source == self.source, o.c.object_id == (event.object_id or ""))
            if last_at is None:
                state.execute(o.delete().where(*where))
            else:
                state.execute(
                    o.update().where(*where).values(last_event_at=last_at, state=msgspec.json.encode(held).decode())
                )
            self.queue.finish(state, event, "pending", "the legacy commit failed; the event will be applied again")

    def _key(self, sku: str) -> tuple[Any, ...]:
        values = {**self.spec.key, self.spec.sku_field: sku}
        return tuple(values[f.name] for f in self.resource.key)

    def _reserve(
        self, conn: sa.Connection, sku: str, delta: decimal.Decimal
    ) -> tuple[decimal.Decimal, decimal.Decimal]:
        before = fetch_for_update(conn, self.resource, self._key(sku), ())
        if before is None:
            raise Unappliable(f"no {self.resource.name} row for SKU {sku!r} ({self._key(sku)})")
        old = before.api.get(self.spec.quantity_field) or decimal.Decimal(0)
        new = decimal.Decimal(old) + delta
        encoded = encode_body(self.resource, {self.spec.quantity_field: new}, self.resource.fields, partial=True)
        if encoded.problems:
            raise Unappliable("; ".join(f"{p.field}: {p.detail}" for p in encoded.problems))
        update_row(conn, self.resource, before, encoded.columns)
        return decimal.Decimal(old), new


def _reservation(order: dict[str, Any], topic: str) -> dict[str, decimal.Decimal]:
    """SKU -> quantity the order should hold now: its unfulfilled lines, nothing once cancelled."""
    if topic == "orders/cancelled" or order.get("cancelled_at"):
        return {}
    wanted: dict[str, decimal.Decimal] = defaultdict(decimal.Decimal)
    for line in order.get("line_items") or ():
        if not isinstance(line, dict):
            raise Unappliable("a line item is not an object")
        sku, quantity = line.get("sku"), line.get("quantity")
        if not sku:
            continue  # a custom line (gift card, shipping fee): nothing in stock to reserve
        if not isinstance(quantity, int) or quantity < 0:
            raise Unappliable(f"line item {sku!r}: quantity {quantity!r} is not a count")
        wanted[str(sku)] += quantity
    return {sku: q for sku, q in wanted.items() if q}
