"""HMAC-SHA256 over the raw request body, compared in constant time.

Both Shopify (``X-Shopify-Hmac-SHA256``) and Xero (``x-xero-signature``) send the base64 of
HMAC-SHA256(secret, body). The body is the bytes as received: re-serialising the JSON first
(other whitespace, other key order) changes the digest, which is how a gateway ends up
refusing every genuine webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ("shopify_signature_valid", "sign", "xero_signature_valid")


def sign(secret: str, body: bytes) -> str:
    """The base64 HMAC-SHA256 both providers put in their signature header."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _valid(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def shopify_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    return _valid(secret, body, header)


def xero_signature_valid(key: str, body: bytes, header: str | None) -> bool:
    return _valid(key, body, header)
