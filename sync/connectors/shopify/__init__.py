"""Shopify GraphQL Admin API: client, auth, cost throttling, the connector and the fake.

Names load on first use (PEP 562): the fake brings graphql-core (~5 MB), which a gateway
or sync worker that only talks to a real shop should not carry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync.connectors.shopify.client import ShopifyClient
    from sync.connectors.shopify.connector import ShopifyConnector
    from sync.connectors.shopify.fake import FakeShopify

__all__ = ("FakeShopify", "ShopifyClient", "ShopifyConnector")

_HOMES = {
    "FakeShopify": "sync.connectors.shopify.fake",
    "ShopifyClient": "sync.connectors.shopify.client",
    "ShopifyConnector": "sync.connectors.shopify.connector",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
