"""The mapping's ``webhooks:`` section, decoded into frozen Structs; mistakes name their path.

```yaml
webhooks:
  shopify:
    secret: ${BRIDGEHEAD_SHOPIFY_WEBHOOK_SECRET}
    reserve_stock:                 # orders/create reserves, orders/cancelled releases
      resource: stock
      version: v1
      sku_field: item_number       # the key field a line item's SKU names
      quantity_field: allocated    # the field that holds what is promised
      key: {warehouse: W01}        # the rest of the key, when the SKU alone is not one
  xero:
    key: ${BRIDGEHEAD_XERO_WEBHOOK_KEY}
    mark_paid:                     # an invoice paid in Xero marks its job paid
      destination: books           # the sync.destinations entry (kind: xero) whose grant reads invoices
      resource: job_invoices       # the resource whose key is the invoice's InvoiceNumber
      paid_field: paid             # a boolean field Xero owns
      paid_on_field: paid_on       # a date field Xero owns (optional)
```
"""

from __future__ import annotations

from typing import Any

import msgspec

from legacy_adapters.exceptions import MappingError

__all__ = ("MarkPaid", "ReserveStock", "ShopifyHooks", "WebhooksConfig", "XeroHooks", "load_webhooks_config")


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ReserveStock(_Spec, frozen=True):
    resource: str
    sku_field: str
    quantity_field: str
    version: str = "v1"
    key: dict[str, Any] = msgspec.field(default_factory=dict)


class ShopifyHooks(_Spec, frozen=True):
    secret: str
    """The app's webhook signing secret (from the environment, never the file)."""
    reserve_stock: ReserveStock | None = None


class MarkPaid(_Spec, frozen=True):
    destination: str
    """The Xero destination in ``sync.destinations``: its grant reads the invoice an event names."""
    resource: str
    paid_field: str
    paid_on_field: str | None = None
    version: str = "v1"


class XeroHooks(_Spec, frozen=True):
    key: str
    """The webhook signing key Xero shows for the app's webhook subscription."""
    mark_paid: MarkPaid | None = None


class WebhooksConfig(_Spec, frozen=True):
    shopify: ShopifyHooks | None = None
    xero: XeroHooks | None = None


def load_webhooks_config(raw: dict[str, Any] | None) -> WebhooksConfig:
    """``Mapping.webhooks`` as Structs; a ``MappingError`` whose path starts with ``webhooks``."""
    if not raw:
        return WebhooksConfig()
    try:
        return msgspec.convert(raw, WebhooksConfig, strict=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        path = "webhooks" + where.rstrip("`")
        raise MappingError(message, path=path) from None
