"""Shopify as a connector plugin (entry point ``shopify`` of ``bridgehead.connectors``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sync.config import DestinationConfig
from sync.connectors.shopify.client import ShopifyClient
from sync.connectors.shopify.connector import ShopifyConnector
from sync.connectors.shopify.errors import OUTCOMES
from sync.rate_budget import SharedCostThrottle

if TYPE_CHECKING:
    from sync.config import SyncSpec
    from sync.connectors.registry import ConnectorContext

__all__ = ("PLUGIN", "ShopifyPlugin")


class ShopifyPlugin:
    kind = "shopify"
    config_type = DestinationConfig
    objects = frozenset({"product", "customer", "inventory"})
    outcomes = OUTCOMES

    def client(self, context: ConnectorContext, destination: str, config: Any, attempts: int) -> ShopifyClient:
        # One cost bucket per shop, shared through the state store by every worker and sync.
        throttle = SharedCostThrottle(context.store, f"shopify:{config.url.rstrip('/')}")
        return ShopifyClient(context.http, config, throttle=throttle, attempts=attempts)

    def connector(self, client: Any, spec: SyncSpec) -> ShopifyConnector:
        return ShopifyConnector(client, spec.object, on_delete=spec.on_delete)  # type: ignore[arg-type]


PLUGIN = ShopifyPlugin()
