"""A thin client of Xero's Accounting API over an injected ``httpx.Client``.

One ``request`` is one logical call: paced by ``TenantLimits`` (5 in flight, the minute window
from Xero's own headers), retried by stamina on ``Retriable`` (5xx, timeouts, a minute or
concurrency 429 after its ``Retry-After``) with the *same* ``Idempotency-Key``, so a write whose
answer was lost is replayed by Xero, not applied twice. A 401 asks the token source for a fresh
token once; a day-limit 429 raises ``QuotaExhausted`` at once (no retry can succeed before the
reset). Every answer's size is added to the tenant's usage of the day in the state store.
The tenant comes from the token source, the mapping, or ``GET /connections``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from sync.connectors.xero.errors import request_error
from sync.connectors.xero.limits import TenantLimits
from sync.exceptions import Fatal, QuotaExhausted, Retriable
from sync.outcomes import retry_after_seconds
from sync.retry import BackoffHook, retrying

if TYPE_CHECKING:
    from sync.connectors.xero.config import XeroDestination
    from sync.connectors.xero.tokens import XeroTokenSource
    from sync.state.base import StateStore

__all__ = ("API_PREFIX", "MAX_KEY", "XeroClient")

API_PREFIX = "/api.xro/2.0"
MAX_KEY = 128
"""Xero refuses an Idempotency-Key longer than this."""


class XeroClient:
    def __init__(
        self,
        http: httpx.Client,
        destination: XeroDestination,
        tokens: XeroTokenSource,
        *,
        store: StateStore | None = None,
        name: str = "xero",
        attempts: int = 6,
        limits: TenantLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http, self.config, self.tokens, self.store, self.name = http, destination, tokens, store, name
        self.base = destination.url.rstrip("/")
        self.attempts = attempts
        self.limits = limits or TenantLimits(
            concurrency=destination.concurrency, reserve=destination.reserve_per_minute
        )
        self.clock = clock
        self.hook = BackoffHook()
        self.requests = 0
        self._tenant: str | None = destination.tenant_id
        self._lock = threading.Lock()

    # -- the tenant ----------------------------------------------------------------------------

    def tenant(self) -> str:
        chosen = self.tokens.tenant_id() or self._tenant
        if chosen:
            return chosen
        with self._lock:
            if self._tenant is None:
                connections = self._send("GET", "/connections", tenant=None)
                orgs = [c for c in connections if c.get("tenantType") == "ORGANISATION"] if isinstance(
                    connections, list) else []  # fmt: skip
                if len(orgs) != 1:
                    names = ", ".join(f"{c.get('tenantName')} ({c.get('tenantId')})" for c in orgs) or "none"
                    raise Fatal(f"Xero: set tenant_id on destination {self.name!r}: this connection reaches "
                                f"{len(orgs)} organisations ({names})")  # fmt: skip
                self._tenant = str(orgs[0]["tenantId"])
            return self._tenant

    # -- calls ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call ``{url}/api.xro/2.0{path}`` and return the decoded JSON.

        Raises:
            Retriable: still failing after every attempt.
            QuotaExhausted: the tenant's day limit is spent (``until`` is the reset).
            Fatal: credentials, tenant or a request Xero calls malformed.
        """
        if idempotency_key is not None and len(idempotency_key) > MAX_KEY:
            raise Fatal(f"an Idempotency-Key of {len(idempotency_key)} characters (Xero allows {MAX_KEY})")
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)  # the client's clock decides, as for the limits
        if self.store is not None and (hold := self.store.destination_hold(self.name, now)) is not None:
            # Another worker (or sync) met the day limit: not one more call before the reset.
            raise QuotaExhausted(hold[1], hold[0])
        tenant = self.tenant()
        hook = BackoffHook()
        hook.waits = self.hook.waits
        for attempt in retrying(self.attempts, hook):
            with attempt:
                return self._send(method, API_PREFIX + path, tenant=tenant, params=params, body=body,
                                  key=idempotency_key)  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        method: str,
        path: str,
        *,
        tenant: str | None,
        params: dict[str, str] | None = None,
        body: Any = None,
        key: str | None = None,
    ) -> Any:
        content = msgspec.json.encode(body) if body is not None else None
        for refreshed in (False, True):
            headers = {"Authorization": f"Bearer {self.tokens.access_token()}", "Accept": "application/json"}
            if tenant:
                headers["xero-tenant-id"] = tenant
            if content is not None:
                headers["Content-Type"] = "application/json"
            if key is not None:
                headers["Idempotency-Key"] = key
            with self.limits.call():
                self.requests += 1
                try:
                    response = self.http.request(method, self.base + path, params=params, content=content,
                                                 headers=headers, timeout=self.config.timeout_s)  # fmt: skip
                except httpx.HTTPError as exc:
                    self._count(tenant, 0, len(content or b""))
                    # A timeout may hide an applied write: the retry carries the same key and is replayed.
                    raise Retriable(f"Xero timeout: {type(exc).__name__}") from None
            self.limits.after(response)
            self._count(tenant, len(response.content), len(content or b""))
            if response.status_code == 401 and not refreshed:
                self.tokens.invalidate()  # expired early or revoked: one fresh token, then it is final
                continue
            break
        if response.is_success:
            try:
                return msgspec.json.decode(response.content) if response.content else None
            except msgspec.DecodeError:
                raise Retriable("Xero answered with something that is not JSON") from None
        raise self._error(response, tenant)

    def _error(self, response: httpx.Response, tenant: str | None) -> Exception:
        status = response.status_code
        if status == 429:
            problem = response.headers.get("X-Rate-Limit-Problem", "minute").strip().lower()
            wait = retry_after_seconds(response, default=60.0 if problem == "minute" else 1.0)
            if problem == "day":
                until = dt.datetime.fromtimestamp(self.clock() + wait, dt.UTC).replace(microsecond=0)
                return QuotaExhausted(f"Xero day limit of tenant {tenant} spent (X-Rate-Limit-Problem: day)", until)
            return request_error(f"429:{problem}", f"rate limited ({problem})", retry_after=wait)
        code, message = str(status), response.text[:300]
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            if payload.get("Type"):
                code = f"{status}:{payload['Type']}"
            message = str(payload.get("Message") or payload.get("Detail") or payload.get("Title") or message)
        if status == 401:
            message += ": the grant is expired or revoked; reconnect (`bridgehead xero connect`)"
        return request_error(code, message)

    def _count(self, tenant: str | None, bytes_in: int, bytes_out: int) -> None:
        if self.store is None:
            return
        day = dt.datetime.fromtimestamp(self.clock(), dt.UTC).strftime("%Y-%m-%d")
        self.store.add_usage(f"xero:{tenant or 'connections'}", day, calls=1, bytes_in=bytes_in, bytes_out=bytes_out)
