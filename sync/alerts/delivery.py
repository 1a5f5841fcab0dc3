"""Where alerts go: a signed webhook (httpx), e-mail (stdlib smtplib), a shell command.

Each channel sends one ``AlertNotice`` and raises when it could not. The webhook and
e-mail retry transient failures (5xx, 429 with ``Retry-After``, dropped connections,
SMTP 4xx) with the shared backoff helpers (``sync/retry.py``); a refusal (4xx, SMTP
5xx, bad credentials) is not retried.

The webhook body is the notice as JSON. ``X-Bridgehead-Signature: t=<unix time>,v1=<base64
HMAC-SHA256(secret, "<t>." + body)>`` lets the receiver check it came from us and is fresh
(``verify_signature``); ``X-Bridgehead-Alert-Id`` is the same on every retry of one event,
so a receiver can drop a duplicate.
"""

from __future__ import annotations

import hmac
import os
import smtplib
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

import msgspec

from sync.exceptions import RateLimited, Retriable, SyncError
from sync.retry import BackoffHook, retrying
from sync.webhooks.signatures import sign

if TYPE_CHECKING:
    import httpx

    from sync.alerts.config import AlertConfig, EmailConfig
    from sync.alerts.model import AlertNotice

__all__ = (
    "SIGNATURE_HEADER",
    "AlertChannel",
    "CommandChannel",
    "DeliveryRefused",
    "EmailChannel",
    "WebhookChannel",
    "channels_for",
    "deliver",
    "signature",
    "verify_signature",
)

SIGNATURE_HEADER = "X-Bridgehead-Signature"
_ID_HEADER = "X-Bridgehead-Alert-Id"


class DeliveryRefused(SyncError):
    """The receiver said no (a 4xx, an SMTP 5xx): sending again would not help."""


class AlertChannel(Protocol):
    name: str

    def send(self, notice: AlertNotice) -> None:
        """Deliver ``notice``; raise when it could not be delivered."""
        ...


def signature(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={sign(secret, str(timestamp).encode() + b'.' + body)}"


def verify_signature(secret: str, body: bytes, header: str | None, *, now: float, tolerance_s: float = 300) -> bool:
    """A receiver's check of ``X-Bridgehead-Signature``: ours, over these bytes, made within ``tolerance_s``."""
    if not header or not secret:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, body, timestamp).encode(), header.strip().encode())


class WebhookChannel:
    name = "webhook"

    def __init__(self, http: httpx.Client, url: str, secret: str | None, *, attempts: int = 5) -> None:
        self.http, self.url, self.secret, self.attempts = http, url, secret, attempts

    def send(self, notice: AlertNotice) -> None:
        import httpx

        body = msgspec.json.encode(notice)
        for attempt in retrying(self.attempts, BackoffHook(base=0.5, cap=30.0)):
            with attempt:
                headers = {"Content-Type": "application/json", _ID_HEADER: str(notice.id)}
                if self.secret:
                    headers[SIGNATURE_HEADER] = signature(self.secret, body, int(time.time()))
                try:
                    response = self.http.post(self.url, content=body, headers=headers, timeout=10)
                except httpx.TransportError as exc:
                    raise Retriable(f"{type(exc).__name__} from the alert webhook") from None
                _check(response)

    def __repr__(self) -> str:  # never the secret
        return f"WebhookChannel({self.url!r})"


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        after = response.headers.get("Retry-After", "")
        if status == 429 and after.replace(".", "", 1).isdigit():
            raise RateLimited(f"alert webhook answered {status}", float(after))
        raise Retriable(f"alert webhook answered {status}")
    if status >= 400:
        raise DeliveryRefused(f"alert webhook answered {status}")


SmtpFactory = Callable[["EmailConfig"], smtplib.SMTP]


def _connect(config: EmailConfig) -> smtplib.SMTP:
    if config.security == "ssl":
        return smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout_s, context=ssl.create_default_context()
        )
    smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    if config.security == "starttls":
        smtp.starttls(context=ssl.create_default_context())
    return smtp


class EmailChannel:
    name = "email"

    def __init__(self, config: EmailConfig, *, attempts: int = 5, connect: SmtpFactory = _connect) -> None:
        self.config, self.attempts, self.connect = config, attempts, connect

    def message(self, notice: AlertNotice) -> EmailMessage:
        mail = EmailMessage()
        state = "RAISED" if notice.event == "raised" else "cleared"
        mail["Subject"] = f"[bridgehead] {state}: {notice.kind} {notice.subject}"
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.to)
        mail["Message-ID"] = f"<bridgehead-alert-{notice.id}@{self.config.sender.rpartition('@')[2]}>"
        lines = [notice.message, "", f"alert:    {notice.kind} on {notice.subject} ({notice.event})",
                 f"at:       {notice.at.isoformat()}"]  # fmt: skip
        if notice.value is not None:
            lines.append(f"value:    {notice.value:g} (threshold {notice.threshold:g})" if notice.threshold is not None
                         else f"value:    {notice.value:g}")  # fmt: skip
        if notice.runbook:
            lines.append(f"runbook:  {notice.runbook} (bridgehead runbook -o DIR)")
        mail.set_content("\n".join(lines) + "\n")
        return mail

    def send(self, notice: AlertNotice) -> None:
        mail = self.message(notice)
        for attempt in retrying(self.attempts, BackoffHook(base=0.5, cap=30.0)):
            with attempt:
                try:
                    with self.connect(self.config) as smtp:
                        if self.config.username and self.config.password:
                            smtp.login(self.config.username, self.config.password)
                        smtp.send_message(mail)
                except smtplib.SMTPAuthenticationError as exc:
                    raise DeliveryRefused(f"SMTP login refused ({exc.smtp_code})") from None
                except smtplib.SMTPResponseException as exc:
                    if 400 <= exc.smtp_code < 500:
                        raise Retriable(f"SMTP answered {exc.smtp_code}") from None
                    raise DeliveryRefused(f"SMTP answered {exc.smtp_code}") from None
                except smtplib.SMTPRecipientsRefused:
                    raise DeliveryRefused("SMTP refused every recipient") from None
                except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
                    raise Retriable(f"SMTP: {type(exc).__name__}") from None


class CommandChannel:
    """A shell command with the alert in its environment (``BRIDGEHEAD_ALERT_*``); not retried."""

    name = "command"

    def __init__(self, command: str, environ: Mapping[str, str] | None = None) -> None:
        self.command = command
        self.environ = environ if environ is not None else os.environ

    def send(self, notice: AlertNotice) -> None:
        env = {**self.environ, "BRIDGEHEAD_ALERT_ID": str(notice.id), "BRIDGEHEAD_ALERT_EVENT": notice.event,
               "BRIDGEHEAD_ALERT_KIND": notice.kind, "BRIDGEHEAD_ALERT_SUBJECT": notice.subject,
               "BRIDGEHEAD_ALERT_MESSAGE": notice.message, "BRIDGEHEAD_SYNC": notice.sync or ""}  # fmt: skip
        if notice.kind == "failing_runs":
            env["BRIDGEHEAD_FAILURES"] = f"{notice.value or 0:g}"
        done = subprocess.run(self.command, shell=True, env=env, timeout=30, check=False, capture_output=True)
        if done.returncode != 0:
            raise DeliveryRefused(f"the alert command exited {done.returncode}")


def channels_for(
    alert: AlertConfig | None, http: httpx.Client, environ: Mapping[str, str] | None = None
) -> list[AlertChannel]:
    """The channels a mapping's ``sync.alert`` turns on (none without one)."""
    if alert is None:
        return []
    found: list[AlertChannel] = []
    if alert.webhook_url:
        found.append(WebhookChannel(http, alert.webhook_url, alert.webhook_secret, attempts=alert.attempts))
    if alert.email is not None and alert.email.enabled:
        found.append(EmailChannel(alert.email, attempts=alert.attempts))
    if alert.command:
        found.append(CommandChannel(alert.command, environ))
    return found


def deliver(notice: AlertNotice, channels: Sequence[AlertChannel]) -> str:
    """Send through every channel (one failing does not stop the others); what each did, as one line."""
    if not channels:
        return "no channel configured"
    outcomes = []
    for channel in channels:
        try:
            channel.send(notice)
            outcomes.append(f"{channel.name} ok")
        except Exception as exc:  # a channel that fails must not stop the others, nor the run
            outcomes.append(f"{channel.name} failed: {exc}")
    return "; ".join(outcomes)
