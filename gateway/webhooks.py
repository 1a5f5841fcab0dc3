"""``POST /webhooks/shopify`` and ``POST /webhooks/xero``: verify, store once, answer at once.

These routes carry no bearer token: the provider signs the raw body with a shared secret
instead, checked here in constant time before the body is parsed. A verified delivery is
written to the durable queue (``sync/webhooks/queue.py``) and acknowledged; the background
worker applies it to the legacy database afterwards, so the provider's 5-second deadline never
waits on the 1998 database. A redelivery of a stored event is acknowledged and ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec
import structlog
from litestar import MediaType, Request, Response, post

from gateway.exceptions import BadRequest, GatewayError, ServiceUnavailable
from gateway.readiness import UNGATED
from legacy_adapters.exceptions import MappingError
from sync.webhooks.config import load_webhooks_config
from sync.webhooks.queue import WebhookQueue, utc_text
from sync.webhooks.shopify_orders import StockReservations
from sync.webhooks.signatures import shopify_signature_valid, xero_signature_valid
from sync.webhooks.worker import Applier, WebhookWorker
from sync.webhooks.xero_payments import InvoicePayments, XeroInvoices

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping
    from legacy_adapters.query.resource import Resource
    from sync.state.audit import AuditLog
    from sync.state.store import StateDatabase
    from sync.webhooks.config import MarkPaid, WebhooksConfig

__all__ = ("build_webhooks", "webhook_handlers")

log = structlog.get_logger("bridgehead.webhooks")


class InvalidSignature(GatewayError):
    status_code = 401
    slug = "invalid-signature"
    title = "Webhook signature does not match"


# Xero events carry no id of their own: these fields together name one event.
_XERO_IDENTITY = ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")
_MAX_BODY = 2 * 1024 * 1024  # Shopify caps webhook bodies well below this; anything larger is not one


def build_webhooks(
    mapping: Mapping, versions: dict[str, dict[str, Resource]], database: Database, state: StateDatabase,
    audit: AuditLog,
) -> tuple[list[HTTPRouteHandler], WebhookWorker | None]:  # fmt: skip
    """The webhook routes the mapping asks for, and the worker that applies what they receive."""
    config = load_webhooks_config(mapping.webhooks)
    for source in ("shopify", "xero"):
        hooks = getattr(config, source)
        if hooks is not None and not (hooks.secret if source == "shopify" else hooks.key):
            # An unset ${VAR:-} leaves the secret empty: serve no route rather than one nobody can sign for.
            log.warning("webhook secret is empty: its route is not served", source=source)
            config = msgspec.structs.replace(config, **{source: None})
    if config.shopify is None and config.xero is None:
        return [], None
    queue = WebhookQueue(state)
    appliers: dict[str, Applier] = {}
    reserve = config.shopify.reserve_stock if config.shopify is not None else None
    if reserve is not None:
        resource = versions.get(reserve.version, {}).get(reserve.resource)
        if resource is None:
            raise MappingError(f"no resource {reserve.resource!r} in version {reserve.version!r}",
                               path="webhooks.shopify.reserve_stock.resource")  # fmt: skip
        try:
            appliers["shopify"] = StockReservations(reserve, resource, database, queue, audit)
        except ValueError as exc:
            raise MappingError(str(exc), path="webhooks.shopify.reserve_stock") from None
    mark_paid = config.xero.mark_paid if config.xero is not None else None
    if mark_paid is not None:
        appliers["xero"] = _invoice_payments(mapping, versions, database, state, queue, audit, mark_paid)
    worker = WebhookWorker(queue, appliers)
    return webhook_handlers(config, queue, worker), worker


def _invoice_payments(
    mapping: Mapping, versions: dict[str, dict[str, Resource]], database: Database, state: StateDatabase,
    queue: WebhookQueue, audit: AuditLog, spec: MarkPaid,
) -> InvoicePayments:  # fmt: skip
    """Xero invoice events -> the paid fields, reading invoices with the destination's OAuth grant."""
    import httpx

    from sync.webhooks.xero_payments import xero_token_source

    path = "webhooks.xero.mark_paid"
    resource = versions.get(spec.version, {}).get(spec.resource)
    if resource is None:
        raise MappingError(f"no resource {spec.resource!r} in version {spec.version!r}", path=f"{path}.resource")
    destination = ((mapping.sync or {}).get("destinations") or {}).get(spec.destination)
    if not isinstance(destination, dict) or destination.get("kind") != "xero":
        raise MappingError(f"{spec.destination!r} is not a Xero destination in sync.destinations",
                           path=f"{path}.destination")  # fmt: skip
    api_url = str(destination.get("url") or "https://api.xero.com")
    http = httpx.Client(timeout=float(destination.get("timeout_s") or 20.0))
    tokens = xero_token_source(state, spec.destination, destination, http)
    try:
        return InvoicePayments(spec, resource, database, queue, audit, XeroInvoices(http, api_url, tokens),
                               sync=mapping.sync)  # fmt: skip
    except ValueError as exc:
        raise MappingError(str(exc), path=path) from None


def _when(text: Any, *, naive_is_utc: bool = False) -> str:
    """A provider's timestamp as queue time (UTC text); the time of receipt when it has none.

    Xero's ``eventDateUtc`` carries no offset (``2026-12-01T10:00:00.123``) but is UTC by name:
    ``naive_is_utc`` reads it so, or events would be ordered by when they arrived instead.
    """
    if text and isinstance(text, str):  # a signed body may still hold a number or a list here
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None and naive_is_utc:
                parsed = parsed.replace(tzinfo=dt.UTC)
            if parsed.tzinfo is not None:
                return utc_text(parsed)
        except ValueError:
            pass
    return utc_text()


def webhook_handlers(config: WebhooksConfig, queue: WebhookQueue, worker: WebhookWorker) -> list[HTTPRouteHandler]:
    handlers: list[HTTPRouteHandler] = []

    async def store(*deliveries: tuple[str, str, str, str | None, str, bytes]) -> list[bool]:
        try:
            fresh = await anyio.to_thread.run_sync(lambda: [queue.receive(*d) for d in deliveries])
        except Exception as exc:  # the state store is away: the provider retries later
            log.error("webhook not stored", error=type(exc).__name__)
            raise ServiceUnavailable("webhooks cannot be stored right now", headers={"Retry-After": "30"}) from None
        if any(fresh):
            worker.notify()
        return fresh

    if config.shopify is not None:
        secret = config.shopify.secret

        # Ungated: a delivery is stored in the state store, so it is taken while the legacy database is down.
        @post("/webhooks/shopify", include_in_schema=False, request_max_body_size=_MAX_BODY, status_code=200,
              opt=UNGATED)  # fmt: skip
        async def shopify(request: Request[Any, Any, Any]) -> Response[bytes]:
            body = await request.body()
            if not shopify_signature_valid(secret, body, request.headers.get("x-shopify-hmac-sha256")):
                log.warning("webhook signature refused", source="shopify", topic=request.headers.get("x-shopify-topic"))
                raise InvalidSignature("the X-Shopify-Hmac-SHA256 signature does not match this body")
            event_id = request.headers.get("x-shopify-webhook-id")
            topic = request.headers.get("x-shopify-topic")
            if not event_id or not topic:
                raise BadRequest("a Shopify webhook carries X-Shopify-Webhook-Id and X-Shopify-Topic")
            try:
                payload = msgspec.json.decode(body)
            except msgspec.DecodeError:
                raise BadRequest("the body is not JSON") from None
            object_id = str(payload["id"]) if isinstance(payload, dict) and "id" in payload else None
            occurred = _when(request.headers.get("x-shopify-triggered-at"))
            (fresh,) = await store(("shopify", event_id, topic, object_id, occurred, body))
            answer = {"received": True, "duplicate": not fresh}
            return Response(msgspec.json.encode(answer), media_type=MediaType.JSON)

        handlers.append(shopify)

    if config.xero is not None:
        key = config.xero.key

        @post("/webhooks/xero", include_in_schema=False, request_max_body_size=_MAX_BODY, status_code=200,
              opt=UNGATED)  # fmt: skip
        async def xero(request: Request[Any, Any, Any]) -> Response[bytes]:
            body = await request.body()
            # Xero's intent-to-receive check: 401 with an empty body for a bad signature, 200 for a good one.
            if not xero_signature_valid(key, body, request.headers.get("x-xero-signature")):
                log.warning("webhook signature refused", source="xero")
                return Response(b"", status_code=401)
            try:
                events = msgspec.json.decode(body).get("events", [])
            except (msgspec.DecodeError, AttributeError):
                raise BadRequest("the body is not a Xero event batch") from None
            deliveries = []
            for event in events if isinstance(events, list) else ():
                if not isinstance(event, dict):
                    continue
                identity = ":".join(
                    str(event.get(k, ""))
                    for k in ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")
                )
                topic = f"{event.get('eventCategory', '')}.{event.get('eventType', '')}"
                occurred = _when(event.get("eventDateUtc"), naive_is_utc=True)
                resource_id = event.get("resourceId")
                object_id = str(resource_id)[:255] if isinstance(resource_id, str | int) else None
                deliveries.append(("xero", identity, topic, object_id, occurred, msgspec.json.encode(event)))
            if deliveries:
                await store(*deliveries)
            return Response(b"", status_code=200)

        handlers.append(xero)
    return handlers
