"""The ``sync.alert`` section (thresholds and channels) and the per-sync ``alert`` overrides.

Decoded by ``sync/config.py`` with the rest of the sync section; ``check_alert_config``
adds what msgspec cannot see (a webhook without a signing secret, an e-mail without a
recipient) as ``MappingError``s whose path starts with ``sync.alert``.
A channel whose setting is an empty string is off, so a mapping can say
``webhook_url: ${BRIDGEHEAD_ALERT_WEBHOOK_URL:-}`` and alert only where the variable is set.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from legacy_adapters.exceptions import MappingError

__all__ = ("ALERT_KINDS", "AlertConfig", "AlertKind", "EmailConfig", "SyncAlertConfig", "check_alert_config")

AlertKind = Literal["failing_runs", "dlq_growth", "lag", "count_deviation", "reconnect_needed", "awaiting_approval"]
ALERT_KINDS: tuple[AlertKind, ...] = (
    "failing_runs", "dlq_growth", "lag", "count_deviation", "reconnect_needed", "awaiting_approval",
)  # fmt: skip


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Immutable, strict about unknown keys (as every sync Struct)."""


class EmailConfig(_Spec, frozen=True):
    """SMTP delivery (stdlib ``smtplib``); ``host: ""`` turns it off."""

    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """``starttls`` upgrades a plain connection (port 587), ``ssl`` is TLS from the start (465)."""
    username: str | None = None
    password: str | None = None
    sender: str = "bridgehead@localhost"
    to: list[str] = []
    timeout_s: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


class AlertConfig(_Spec, frozen=True):
    """When syncs alert, and where alerts go. Each alert is sent when raised and again when cleared."""

    after_failures: int = 3
    """A sync that fails (or partially fails) this many runs in a row."""
    dlq_threshold: int = 0
    """A sync whose dead-letter queue holds more than this many records."""
    count_deviation: float | None = 0.5
    """A full pass that read this share more or fewer rows than the median of recent runs; None: off."""
    count_history: int = 5
    """Recent completed runs the count is compared with (at least 3 are needed)."""
    webhook_url: str | None = None
    """POSTed a JSON body signed with ``webhook_secret`` (``X-Bridgehead-Signature``)."""
    webhook_secret: str | None = None
    command: str | None = None
    """A shell command run with ``BRIDGEHEAD_ALERT_*`` (and ``BRIDGEHEAD_SYNC``) in its environment."""
    email: EmailConfig | None = None
    attempts: int = 5
    """Delivery attempts per channel (exponential backoff with jitter between them)."""
    tick_s: float = 15.0
    """How often ``sync run --loop`` evaluates every alert besides after each run (lag grows between runs)."""

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)


class SyncAlertConfig(_Spec, frozen=True):
    """A sync's own thresholds (``syncs.<name>.alert``); unset values come from ``sync.alert``."""

    after_failures: int | None = None
    dlq_threshold: int | None = None
    count_deviation: float | None = None
    mute: list[AlertKind] = []
    """Kinds this sync never raises (``[count_deviation]`` for a table whose size swings)."""


def check_alert_config(alert: AlertConfig | None, syncs: dict[str, SyncAlertConfig | None]) -> None:
    """Cross-checks msgspec cannot make. Raises ``MappingError`` with a ``sync.alert…`` path."""
    if alert is not None:
        _positive(alert.after_failures, "sync.alert.after_failures")
        _positive(alert.attempts, "sync.alert.attempts")
        if alert.dlq_threshold < 0:
            raise MappingError("must be 0 or more", path="sync.alert.dlq_threshold")
        _share(alert.count_deviation, "sync.alert.count_deviation")
        if alert.count_history < 3:
            raise MappingError("at least 3 runs are needed to compare with", path="sync.alert.count_history")
        if alert.tick_s <= 0:
            raise MappingError("must be above 0", path="sync.alert.tick_s")
        if alert.webhook_url:
            if not alert.webhook_url.startswith(("http://", "https://")):
                raise MappingError("an http:// or https:// URL", path="sync.alert.webhook_url")
            if not alert.webhook_secret:
                raise MappingError("a webhook needs a signing secret (${VAR})", path="sync.alert.webhook_secret")
        if alert.email is not None and alert.email.enabled:
            _check_email(alert.email)
    for name, own in syncs.items():
        if own is None:
            continue
        path = f"sync.syncs.{name}.alert"
        if own.after_failures is not None:
            _positive(own.after_failures, f"{path}.after_failures")
        if own.dlq_threshold is not None and own.dlq_threshold < 0:
            raise MappingError("must be 0 or more", path=f"{path}.dlq_threshold")
        _share(own.count_deviation, f"{path}.count_deviation")


def _check_email(email: EmailConfig) -> None:
    if not 0 < email.port < 65536:
        raise MappingError("a TCP port (1-65535)", path="sync.alert.email.port")
    if "@" not in email.sender:
        raise MappingError(f"not an e-mail address: {email.sender!r}", path="sync.alert.email.sender")
    if not email.to:
        raise MappingError("at least one recipient", path="sync.alert.email.to")
    for i, address in enumerate(email.to):
        if "@" not in address or any(c in address for c in "\r\n,;"):
            raise MappingError(f"not an e-mail address: {address!r}", path=f"sync.alert.email.to[{i}]")
    if bool(email.username) != bool(email.password):
        raise MappingError("give both username and password, or neither", path="sync.alert.email.username")


def _positive(value: int, path: str) -> None:
    if value < 1:
        raise MappingError("must be 1 or more", path=path)


def _share(value: float | None, path: str) -> None:
    if value is not None and value <= 0:
        raise MappingError("a share above 0 (0.5 is 50 %)", path=path)
