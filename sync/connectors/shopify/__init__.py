"""Shopify GraphQL Admin API: client, auth, cost throttling, the connector and the fake."""

from __future__ import annotations

from sync.connectors.shopify.client import ShopifyClient
from sync.connectors.shopify.connector import ShopifyConnector
from sync.connectors.shopify.fake import FakeShopify

__all__ = ("FakeShopify", "ShopifyClient", "ShopifyConnector")
