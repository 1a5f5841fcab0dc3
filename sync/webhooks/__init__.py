"""Inbound webhooks: verified, deduplicated, queued durably, then applied to the legacy database.

The gateway receives (``gateway/webhooks.py``); everything after the signature check lives
here, so the same queue is drained by the gateway's background worker or by the CLI.
"""

from sync.webhooks.config import WebhooksConfig, load_webhooks_config
from sync.webhooks.queue import WebhookEvent, WebhookQueue
from sync.webhooks.signatures import shopify_signature_valid, xero_signature_valid

__all__ = (
    "WebhookEvent",
    "WebhookQueue",
    "WebhooksConfig",
    "load_webhooks_config",
    "shopify_signature_valid",
    "xero_signature_valid",
)
