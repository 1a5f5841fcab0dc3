"""Shopify's access-token header as an ``httpx.Auth`` (STYLE C7).

Admin API offline tokens do not expire and have no refresh flow, so a 401 is
final: the client turns it into ``Fatal`` rather than retrying.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from legacy_adapters.redaction import register_secret

__all__ = ("ShopifyTokenAuth",)


class ShopifyTokenAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        register_secret(token)  # replaced by value wherever a shop's answer or an error quotes it
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Shopify-Access-Token"] = self._token
        yield request

    def __repr__(self) -> str:  # never print the token
        return "ShopifyTokenAuth(<redacted>)"
