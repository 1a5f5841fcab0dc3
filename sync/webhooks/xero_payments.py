"""Xero invoice events mark the job's invoice paid in the legacy database.

A Xero webhook carries ids only (``resourceId``, ``eventCategory``, ``eventDateUtc``): the
applier reads the invoice from Xero to learn which job it is (``InvoiceNumber`` is the legacy job
number the invoice sync gave it) and whether it is paid now (``Status`` ``PAID``, with the day
from ``FullyPaidOnDate``). A payment removed again (the invoice back to ``AUTHORISED``) clears
the flag, so the legacy row always says what the newest event saw.

The write goes through the mapping like a REST PATCH: the row read under lock, the values encoded
by the fields' codecs (``Y``/``N``, ``YYYYMMDD`` with 0 for none), written by compare-and-set,
audited with the webhook as its trigger. Only the fields Xero owns are written, and the mapping
may not also push them to Xero as legacy-owned (checked at start). Per invoice the queue keeps
the newest event time applied: an older event arriving later is ``superseded``, a redelivery was
dropped on receipt already. Events for another organisation, invoices Xero does not know, and
invoices naming no job in the legacy database are dead-lettered with their reason.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from legacy_adapters.exceptions import BridgeheadError
from legacy_adapters.writer import encode_body, fetch_for_update, update_row
from sync.exceptions import Fatal, Retriable
from sync.state.audit import AuditEntry
from sync.webhooks.queue import WEBHOOK_OBJECTS
from sync.webhooks.shopify_orders import Unappliable

if TYPE_CHECKING:
    import httpx
    import sqlalchemy as sa

    from legacy_adapters.database import Database
    from legacy_adapters.query.resource import Resource
    from sync.connectors.xero.tokens import XeroTokenSource
    from sync.state.audit import AuditLog
    from sync.state.store import StateDatabase
    from sync.webhooks.config import MarkPaid
    from sync.webhooks.queue import WebhookEvent, WebhookQueue

__all__ = ("InvoicePayments", "XeroInvoices", "xero_token_source")

log = structlog.get_logger("bridgehead.webhooks")

_XERO_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


class _Unusable:
    """A token source that could not be built (no sealing key, say): every use says why, as ``Fatal``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def access_token(self) -> str:
        raise Fatal(self.reason)

    def tenant_id(self) -> str | None:
        raise Fatal(self.reason)

    def invalidate(self) -> None:
        pass


def xero_token_source(state: StateDatabase, name: str, destination: dict[str, Any], http: httpx.Client) -> Any:
    """The destination's token source, by its ``auth``, exactly as the Xero connector builds it.

    A source that cannot be built yet (no sealing key, no client id) still answers, with ``Fatal``
    naming the cause, so received events wait (and say why) instead of the gateway refusing to start.
    """
    import os

    from sync.connectors.registry import ConnectorContext
    from sync.connectors.xero.config import XeroDestination
    from sync.connectors.xero.plugin import token_source
    from sync.state.sync_store import SyncStore

    try:
        config = msgspec.convert(destination, XeroDestination)
        return token_source(ConnectorContext(http, SyncStore(state), dict(os.environ)), name, config)
    except (BridgeheadError, msgspec.ValidationError) as exc:
        log.warning("xero write-back waits for a usable token source", destination=name, reason=str(exc))
        return _Unusable(f"Xero destination {name!r}: {exc}")


class XeroInvoices:
    """Reads one invoice from the Accounting API with the connection's token source."""

    def __init__(self, http: httpx.Client, api_url: str, tokens: XeroTokenSource) -> None:
        self.http, self.api_url, self.tokens = http, api_url.rstrip("/"), tokens
        self._tenant: str | None = None

    def tenant(self) -> str | None:
        """The connected organisation: the token source's, else the one ``GET /connections`` names."""
        known = self.tokens.tenant_id()
        if known is not None or self._tenant is not None:
            return known or self._tenant
        import httpx

        from sync.connectors.xero.oauth import connections

        try:
            found = connections(self.http, self.tokens.access_token(), url=f"{self.api_url}/connections")
        except httpx.HTTPError as exc:
            raise Retriable(f"Xero /connections: {type(exc).__name__}") from None
        organisations = [c for c in found if c.tenant_type in ("ORGANISATION", "")]
        if len(organisations) != 1:
            raise Fatal(f"Xero /connections names {len(organisations)} organisations: set tenant_id on the destination")
        self._tenant = organisations[0].tenant_id
        return self._tenant

    def get(self, invoice_id: str) -> dict[str, Any] | None:
        """The invoice, or None when Xero has no such invoice. Raises ``Retriable`` / ``Fatal``."""
        import httpx

        url = f"{self.api_url}/api.xro/2.0/Invoices/{invoice_id}"
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.tokens.access_token()}", "Accept": "application/json"}
            tenant = self.tenant()
            if tenant:
                headers["xero-tenant-id"] = tenant
            try:
                answer = self.http.get(url, headers=headers)
            except httpx.TransportError as exc:
                raise Retriable(f"Xero unreachable: {type(exc).__name__}") from None
            if answer.status_code == 401 and attempt == 1:
                self.tokens.invalidate()  # refused early: one refresh, one more try
                continue
            break
        if answer.status_code == 404:
            return None
        if answer.status_code == 429 or answer.status_code >= 500:
            raise Retriable(f"Xero answered {answer.status_code} reading invoice {invoice_id}")
        if answer.status_code != 200:
            raise Fatal(f"Xero answered {answer.status_code} reading invoice {invoice_id}")
        invoices = answer.json().get("Invoices") or []
        return invoices[0] if invoices and isinstance(invoices[0], dict) else None


class InvoicePayments:
    source = "xero"

    def __init__(
        self, spec: MarkPaid, resource: Resource, database: Database, queue: WebhookQueue, audit: AuditLog,
        xero: XeroInvoices, *, sync: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        if len(resource.key) != 1:
            raise ValueError(f"{resource.name} must have a one-field key (the job number an invoice names)")
        owned = [spec.paid_field] + ([spec.paid_on_field] if spec.paid_on_field else [])
        for name in owned:
            if name not in resource.fields:
                raise ValueError(f"{resource.name} has no field {name!r}")
            if resource.fields[name] in resource.key:
                raise ValueError(f"{name!r} is the key of {resource.name}: Xero cannot own it")
        _check_ownership(spec, resource, owned, sync or {})
        self.spec, self.resource, self.database, self.queue, self.audit, self.xero = (
            spec, resource, database, queue, audit, xero,
        )  # fmt: skip
        self.owned = owned

    def apply(self, event: WebhookEvent) -> str:
        """Apply one Xero event; returns its final status (``done`` or ``superseded``)."""
        try:
            raw = msgspec.json.decode(event.payload)
        except msgspec.DecodeError:
            raise Unappliable("the event is not JSON") from None
        if not isinstance(raw, dict) or not raw.get("resourceId"):
            raise Unappliable("the event names no resourceId")
        if raw.get("eventCategory") != "INVOICE":
            return "done"  # contacts and the rest: acknowledged, nothing this integration writes back
        tenant = self.xero.tenant()
        if tenant is not None and raw.get("tenantId") != tenant:
            raise Unappliable(f"the event is for tenant {raw.get('tenantId')!r}, not the connected one")
        invoice_id = str(raw["resourceId"])
        try:
            uuid.UUID(invoice_id)  # Xero ids are GUIDs; anything else must not reach a URL path
        except ValueError:
            raise Unappliable(f"resourceId {invoice_id[:60]!r} is not a Xero id") from None
        invoice = self.xero.get(invoice_id)
        if invoice is None:
            raise Unappliable(f"Xero has no invoice {invoice_id}")
        if invoice.get("Type") != "ACCREC":
            return "done"  # a bill (ACCPAY) is not a job's invoice
        job = str(invoice.get("InvoiceNumber") or "").strip()
        if not job:
            raise Unappliable(f"invoice {invoice_id} has no InvoiceNumber naming a job")
        values = self._values(invoice)
        changed: list[tuple[dict[str, Any], dict[str, Any]]] = []
        recorded: list[tuple[str | None, dict[str, Any]]] = []  # the invoice's record before, once replaced

        def work(conn: sa.Connection) -> str:
            changed.clear()
            with self.queue.db.engine.begin() as state:
                last_at, held = self.queue.object_state(state, self.source, invoice_id)
                if last_at is not None and event.occurred_at <= last_at:
                    self.queue.finish(state, event, "superseded", f"an event of {last_at} was applied already")
                    return "superseded"
                before = fetch_for_update(conn, self.resource, (job,), ())
                if before is None:
                    raise Unappliable(f"invoice {invoice.get('InvoiceNumber')!r} names no {self.resource.name} row")
                old = {k: before.api.get(k) for k in values}
                if old != values:
                    encoded = encode_body(self.resource, values, self.resource.fields, partial=True)
                    if encoded.problems:
                        raise Unappliable("; ".join(f"{p.field}: {p.detail}" for p in encoded.problems))
                    update_row(conn, self.resource, before, encoded.columns)
                    changed.append((old, values))
                self.queue.set_object_state(
                    state, self.source, invoice_id, event.occurred_at, {"job": job, "status": invoice.get("Status")},
                    new=last_at is None,
                )  # fmt: skip
                self.queue.finish(state, event, "done")
            recorded.append((last_at, held))  # the state store has committed; only the legacy commit is left
            return "done"

        try:
            outcome = self.database.run_transaction(work)
        except BaseException:
            if recorded:
                self._restore(event, invoice_id, *recorded[-1])
            raise
        for before_values, after_values in changed:
            self.audit.record(
                AuditEntry(
                    subject="webhook:xero",
                    request_id=f"xero:{event.event_id}"[:255],
                    version=self.resource.version,
                    resource=self.resource.name,
                    key=job,
                    action=f"webhook {event.topic}",
                    status=200,
                    before=_jsonable(before_values),
                    after=_jsonable(after_values),
                )
            )
        log.info("webhook applied", source="xero", invoice=invoice_id, job=job, outcome=outcome,
                 changed=bool(changed))  # fmt: skip
        return outcome

    def _values(self, invoice: dict[str, Any]) -> dict[str, Any]:
        paid = invoice.get("Status") == "PAID"
        values: dict[str, Any] = {self.spec.paid_field: paid}
        if self.spec.paid_on_field:
            values[self.spec.paid_on_field] = _xero_day(invoice.get("FullyPaidOnDate")) if paid else None
            if paid and values[self.spec.paid_on_field] is None:
                values[self.spec.paid_on_field] = _xero_day(invoice.get("UpdatedDateUTC"))
        return values

    def _restore(self, event: WebhookEvent, invoice_id: str, last_at: str | None, held: dict[str, Any]) -> None:
        """The legacy commit failed after the state store recorded the event: put the record back."""
        o = WEBHOOK_OBJECTS
        with self.queue.db.engine.begin() as state:
            where = (o.c.source == self.source, o.c.object_id == invoice_id)
            if last_at is None:
                state.execute(o.delete().where(*where))
            else:
                state.execute(
                    o.update().where(*where).values(last_event_at=last_at, state=msgspec.json.encode(held).decode())
                )
            self.queue.finish(state, event, "pending", "the legacy commit failed; the event will be applied again")


def _check_ownership(spec: MarkPaid, resource: Resource, owned: list[str], sync: dict[str, Any]) -> None:
    """A field Xero writes back must not also be sent to Xero as owned by the legacy side."""
    for name, definition in (sync.get("syncs") or {}).items():
        if not isinstance(definition, dict) or definition.get("resource") != resource.name:
            continue
        if definition.get("destination") != spec.destination:
            continue
        for target, fmap in (definition.get("fields") or {}).items():
            if isinstance(fmap, dict) and fmap.get("field") in owned and fmap.get("owner", "legacy") == "legacy":
                raise ValueError(
                    f"sync.syncs.{name}.fields.{target} sends {fmap['field']!r} to Xero as legacy-owned, "
                    "but Xero payments write it back: give it owner: destination"
                )


def _xero_day(value: Any) -> str | None:
    """``/Date(1764583200000+0000)/`` or ISO text -> ``YYYY-MM-DD`` (UTC day), None when absent."""
    if not value:
        return None
    text = str(value)
    found = _XERO_DATE.fullmatch(text)
    if found:
        return dt.datetime.fromtimestamp(int(found.group(1)) / 1000, dt.UTC).date().isoformat()
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise Unappliable(f"unreadable Xero date {text[:40]!r}") from None


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()}
