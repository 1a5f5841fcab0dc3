"""A faithful local fake of Xero's identity service and Accounting API, for tests and the sandbox.

What it honours, from ../shared/notes/saas-apis.md:

- OAuth2: ``GET /identity/connect/authorize`` consents at once and redirects with a code and the
  ``state`` (refusing the broad scopes apps created since 2026-03 may not ask for); the code
  exchange checks a PKCE S256 challenge. ``POST /connect/token``: 30-minute access tokens; refresh
  tokens are single-use and rotated on every refresh, the previous one still accepted for a
  30-minute grace period, an unused one expiring after 60 days; anything else is
  ``invalid_grant``. ``GET /connections`` names the tenant every call must send as ``xero-tenant-id``.
- Limits per tenant: 5 calls in flight, 60 a minute, 5,000 a day (and 10,000 a minute app-wide),
  with ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``, ``X-AppMinLimit-Remaining`` on every
  answer and, past one, 429 with ``Retry-After`` (seconds) and ``X-Rate-Limit-Problem``.
- Writes (``POST`` creates or updates, ``PUT`` creates) of Contacts, Items and Invoices in
  batches: with ``summarizeErrors=false`` a 200 whose elements each carry
  ``StatusAttributeString`` and ``ValidationErrors``; without it one bad element fails the whole
  batch with 400 ``ValidationException`` and nothing is saved.
- ``Idempotency-Key`` (at most 128 characters): the same key and body replay the first answer.
- ``grant_type=client_credentials`` (a Custom Connection: an access token, no refresh token), as the
  sandbox's demo uses; ``unitdp=4`` keeps 4 decimals of unit prices (else 2); ``?IDs=`` on reads;
  429 answers carry a problem body naming the limit.
- Injected faults: 429, 500, 503, a timeout before anything happens, and a timeout *after* the
  write was applied (the case idempotency keys exist for).
- Egress: bytes sent back per tenant per day, which Xero now meters on paid tiers.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import decimal
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from sync.connectors.asgi import read_request
from sync.connectors.xero.fake_org import FakeOrganisation

__all__ = ("XERO_FAULTS", "FakeXero", "XeroFaults")

XERO_FAULTS = ("429", "500", "503", "timeout", "timeout_after_write")
ACCESS_TTL_S = 30 * 60
GRACE_S = 30 * 60
REFRESH_TTL_S = 60 * 24 * 3600
_COLLECTIONS = {"Contacts": "contact", "Items": "item", "Invoices": "invoice"}
_ID_KEYS = {"Contacts": "ContactID", "Items": "ItemID", "Invoices": "InvoiceID"}


@dataclass
class XeroFaults:
    """Faults queued for exact tests, plus a random share for soak runs."""

    rate: float = 0.0
    seed: int = 11
    queued: list[str] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import random

        self._rng = random.Random(self.seed)

    def pick(self) -> str | None:
        kind = self.queued.pop(0) if self.queued else None
        if kind is None and self.rate and self._rng.random() < self.rate:
            kind = self._rng.choice(XERO_FAULTS)
        if kind:
            self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


@dataclass
class _Refresh:
    issued_at: float
    used_at: float | None = None
    successor: str | None = None


class FakeXero:
    """Thread-safe; ``clock`` is injectable so tests can cross token expiry and limit windows."""

    def __init__(
        self,
        *,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-client-secret",
        per_minute: int = 60,
        per_day: int = 5000,
        app_per_minute: int = 10_000,
        concurrent: int = 5,
        faults: XeroFaults | None = None,
        clock: Callable[[], float] = time.time,
        latency_s: float = 0.0,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.per_minute, self.per_day, self.app_per_minute, self.concurrent = (
            per_minute,
            per_day,
            app_per_minute,
            concurrent,
        )
        self.faults = faults or XeroFaults()
        self.clock = clock
        self.latency_s = latency_s
        """Time each API call stays in flight after it is answered, so parallel callers overlap."""
        self.tenant_id = str(uuid.uuid4())
        self.org = FakeOrganisation()
        self.codes: set[str] = set()
        self.challenges: dict[str, tuple[str, str]] = {}  # code -> (PKCE S256 challenge, redirect_uri)
        self.refreshes = 0
        """Refresh grants answered with a new pair: a test counts how often the workers refreshed."""
        self.access: dict[str, float] = {}  # access token -> expiry
        self.refresh: dict[str, _Refresh] = {}
        self.calls: deque[float] = deque()
        self.app_calls: deque[float] = deque()
        self.day: tuple[str, int] = ("", 0)
        self.egress: dict[str, int] = {}  # UTC day -> bytes sent to the client
        self.in_flight = 0
        self.idempotent: dict[str, tuple[str, tuple[int, dict[str, str], bytes]]] = {}
        self.requests = 0
        self.rate_limited = 0
        self._lock = threading.RLock()

    # -- set-up helpers for tests and the sandbox ----------------------------------------------------

    def consent(self) -> str:
        """An authorization code, as the consent screen would hand back to the redirect URI."""
        code = secrets.token_urlsafe(16)
        self.codes.add(code)
        return code

    def revoke(self) -> None:
        """The user disconnects the app in Xero: every token stops working (``invalid_grant`` from then on)."""
        with self._lock:
            self.access.clear()
            self.refresh.clear()

    def authorize(self, query: str) -> tuple[int, dict[str, str], bytes]:
        """The consent screen, consenting at once: 302 to ``redirect_uri`` with a code and the ``state``."""
        args = {k: v[0] for k, v in parse_qs(query).items()}
        if args.get("client_id") != self.client_id or args.get("response_type") != "code":
            return 400, {"Content-Type": "text/plain"}, b"unauthorized_client"
        redirect, state = args.get("redirect_uri", ""), args.get("state", "")
        if not redirect.startswith(("http://localhost", "http://127.0.0.1", "https://")):
            return 400, {"Content-Type": "text/plain"}, b"invalid redirect_uri"
        scopes = set(args.get("scope", "").split())
        if "accounting.transactions" in scopes or "accounting.reports.read" in scopes:
            # Apps created since 2026-03-02 may only ask for granular scopes.
            return 302, {"Location": f"{redirect}?{urlencode({'error': 'invalid_scope', 'state': state})}"}, b""
        code = self.consent()
        if args.get("code_challenge_method") == "S256" and args.get("code_challenge"):
            self.challenges[code] = (args["code_challenge"], redirect)
        return 302, {"Location": f"{redirect}?{urlencode({'code': code, 'state': state})}"}, b""

    # -- the exchange --------------------------------------------------------------------------------

    def exchange(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, str | None]:
        """(status, headers, body, fault to act out once the answer is made)."""
        with self._lock:
            self.requests += 1
            if path == "/connect/token" and method == "POST":
                return (*self._token(headers, body), None)
            if path == "/identity/connect/authorize" and method == "GET":
                return (*self.authorize(query), None)
            if path == "/connect/revocation" and method == "POST":
                # Revoking the refresh token disconnects the app: its access tokens stop working too.
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("token") not in self.refresh:
                    return 400, {}, _json({"error": "invalid_grant"}), None
                self.revoke()
                return 200, {}, b"", None
            bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
            expiry = self.access.get(bearer)
            if expiry is None or expiry <= self.clock():
                body401 = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired"
                           if expiry is not None else "AuthenticationUnsuccessful"}  # fmt: skip
                return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, _json(body401), None
            if path == "/connections" and method == "GET":
                connection = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.tenant_id)), "tenantId": self.tenant_id,
                              "tenantType": "ORGANISATION", "tenantName": self.org.name}  # fmt: skip
                return 200, {"Content-Type": "application/json"}, _json([connection]), None
            if not path.startswith("/api.xro/2.0/"):
                return 404, {}, _json({"Message": "The resource you're looking for cannot be found"}), None
            if headers.get("xero-tenant-id") != self.tenant_id:
                return 403, {}, _json({"Type": None, "Title": "Forbidden", "Status": 403,
                                       "Detail": "AuthenticationUnsuccessful"}), None  # fmt: skip
            limited = self._limit()
            if limited is not None:
                return (*limited, None)
            fault = self.faults.pick()
            if fault == "429":
                headers = {"Retry-After": "1", "X-Rate-Limit-Problem": "minute", **self._remaining()}
                return 429, headers, _rate_limited("minute"), None
            if fault in ("500", "503"):
                return int(fault), self._remaining(), _json({"Message": "An error occurred"}), None
            if fault == "timeout":
                return 504, {}, b"", "timeout"
            key = headers.get("idempotency-key")
            if key is not None and len(key) > 128:
                return (
                    400,
                    self._remaining(),
                    _json({"Message": "Idempotency-Key must be at most 128 characters"}),
                    None,
                )
            fingerprint = f"{method} {path}?{query}\n{body.decode(errors='replace')}"
            if key is not None and key in self.idempotent:
                seen, answer = self.idempotent[key]
                if seen != fingerprint:
                    message = "The Idempotency-Key was already used for a different request"
                    return 400, self._remaining(), _json({"Message": message}), None
                return (*answer, fault if fault == "timeout_after_write" else None)
            status, out, content = self._api(method, path, query, body)
            out = {**out, **self._remaining()}
            self._egress(len(content))
            if key is not None and method in ("POST", "PUT") and status < 500:
                self.idempotent[key] = (fingerprint, (status, out, content))
            return status, out, content, fault

    def _remaining(self) -> dict[str, str]:
        now = self.clock()
        minute = sum(1 for t in self.calls if t > now - 60)
        app = sum(1 for t in self.app_calls if t > now - 60)
        return {
            "X-MinLimit-Remaining": str(max(0, self.per_minute - minute)),
            "X-DayLimit-Remaining": str(max(0, self.per_day - self.day[1])),
            "X-AppMinLimit-Remaining": str(max(0, self.app_per_minute - app)),
        }

    def _limit(self) -> tuple[int, dict[str, str], bytes] | None:
        now = self.clock()
        today = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
        if self.day[0] != today:
            self.day = (today, 0)
        for window in (self.calls, self.app_calls):
            while window and window[0] <= now - 60:
                window.popleft()
        problem, wait = None, 0
        if self.in_flight > self.concurrent:  # in_flight counts this call too
            problem, wait = "concurrent", 1
        elif self.day[1] >= self.per_day:
            midnight = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            problem, wait = "day", int((midnight + dt.timedelta(days=1)).timestamp() - now) + 1
        elif len(self.app_calls) >= self.app_per_minute:
            problem, wait = "appminute", int(self.app_calls[0] + 60 - now) + 1
        elif len(self.calls) >= self.per_minute:
            problem, wait = "minute", int(self.calls[0] + 60 - now) + 1
        if problem is not None:
            self.rate_limited += 1
            headers = {"Retry-After": str(max(1, wait)), "X-Rate-Limit-Problem": problem, **self._remaining()}
            return 429, headers, _rate_limited(problem)
        self.calls.append(now)
        self.app_calls.append(now)
        self.day = (today, self.day[1] + 1)
        return None

    def _egress(self, size: int) -> None:
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).strftime("%Y-%m-%d")
        self.egress[today] = self.egress.get(today, 0) + size

    # -- OAuth ---------------------------------------------------------------------------------------

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {}, _json({"error": "invalid_client"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        now = self.clock()
        if form.get("grant_type") == "authorization_code":
            if form.get("code") not in self.codes:
                return 400, {}, _json({"error": "invalid_grant"})
            self.codes.discard(form["code"])
            challenge, redirect = self.challenges.pop(form["code"], (None, None))
            if challenge is not None:
                verifier = form.get("code_verifier", "").encode()
                made = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                if made != challenge or form.get("redirect_uri") != redirect:
                    return 400, {}, _json({"error": "invalid_grant"})
            return 200, {"Content-Type": "application/json"}, _json(self._issue(now))
        if form.get("grant_type") == "client_credentials":
            # A Custom Connection: one organisation, a 30-minute access token and no refresh token.
            access = secrets.token_urlsafe(24)
            self.access[access] = now + ACCESS_TTL_S
            scope = form.get("scope", "accounting.contacts accounting.settings accounting.invoices")
            granted = {"access_token": access, "expires_in": ACCESS_TTL_S, "token_type": "Bearer", "scope": scope}
            return 200, {"Content-Type": "application/json"}, _json(granted)
        if form.get("grant_type") != "refresh_token":
            return 400, {}, _json({"error": "unsupported_grant_type"})
        token = form.get("refresh_token", "")
        entry = self.refresh.get(token)
        if entry is None or now - entry.issued_at > REFRESH_TTL_S:
            return 400, {}, _json({"error": "invalid_grant"})
        if entry.used_at is not None and now - entry.used_at > GRACE_S:
            return 400, {}, _json({"error": "invalid_grant"})
        if entry.used_at is None:
            entry.used_at = now
        issued = self._issue(now)
        entry.successor = issued["refresh_token"]
        self.refreshes += 1
        return 200, {"Content-Type": "application/json"}, _json(issued)

    def _issue(self, now: float) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access[access] = now + ACCESS_TTL_S
        self.refresh[refresh] = _Refresh(issued_at=now)
        return {"access_token": access, "refresh_token": refresh, "expires_in": ACCESS_TTL_S, "token_type": "Bearer",
                "scope": "offline_access accounting.contacts accounting.settings accounting.invoices"}  # fmt: skip

    # -- the Accounting API ---------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = path.removeprefix("/api.xro/2.0/").strip("/").split("/")
        collection = parts[0]
        if collection == "Payments":
            return self._payments(method, parts, body)
        if collection not in _COLLECTIONS:
            return 404, {}, _json({"Message": "The resource you're looking for cannot be found"})
        kind = _COLLECTIONS[collection]
        table: dict[str, dict[str, Any]] = getattr(self.org, f"{kind}s")
        args = {k: v[0] for k, v in parse_qs(query).items()}
        if method == "GET":
            if len(parts) > 1:
                found = table.get(parts[1])
                if found is None:
                    return 404, {}, _json({"Message": "The resource you're looking for cannot be found"})
                return 200, {"Content-Type": "application/json"}, _json({collection: [found]})
            rows = list(table.values())
            if "IDs" in args:  # ?IDs=a,b,c: only those records
                wanted = set(args["IDs"].split(","))
                rows = [r for r in rows if r.get(_ID_KEYS[collection]) in wanted]
            page = int(args.get("page", "1"))
            return 200, {"Content-Type": "application/json"}, _json({collection: rows[(page - 1) * 100 : page * 100]})
        if method not in ("POST", "PUT"):
            return 405, {}, b""
        try:
            elements = json.loads(body).get(collection)
        except (ValueError, AttributeError):
            return 400, {}, _json({"Message": "The request body is not valid JSON"})
        if not isinstance(elements, list):
            elements = [json.loads(body)] if body.strip().startswith(b"{") else []
        summarize = args.get("summarizeErrors", "true").lower() != "false"
        if args.get("unitdp") != "4":  # without unitdp=4 Xero keeps unit prices to 2 decimals
            elements = [_two_decimals(e) if isinstance(e, dict) else e for e in elements]
        # Elements are taken in order, each seeing the ones before it. Summarized, they are tried on a
        # copy of the books that is kept only when every element passed: one error saves nothing.
        books = copy.deepcopy(self.org) if summarize else self.org
        check: Callable[..., tuple[str | None, list[str]]] = getattr(books, f"{kind}_errors")
        save: Callable[..., dict[str, Any]] = getattr(books, f"save_{kind}")
        out, failed = [], []
        for element in elements:
            target, errors = check(element, create_only=method == "PUT")
            if errors:
                rejected = {**element, "StatusAttributeString": "ERROR",
                            "ValidationErrors": [{"Message": m} for m in errors]}  # fmt: skip
                out.append(rejected)
                failed.append(rejected)
            else:
                out.append({**save(element, target), "StatusAttributeString": "OK"})
        if summarize and failed:
            answer = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                      "Elements": failed}  # fmt: skip
            return 400, {"Content-Type": "application/json"}, _json(answer)
        if summarize:
            self.org = books
        return 200, {"Content-Type": "application/json"}, _json({collection: out})

    def _payments(self, method: str, parts: list[str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """``PUT Payments`` applies a payment to an ACCREC invoice (what a bookkeeper does); ``GET`` reads them."""
        ok = {"Content-Type": "application/json"}
        if method == "GET":
            rows = [self.org.payments[parts[1]]] if len(parts) > 1 and parts[1] in self.org.payments else []
            if len(parts) > 1 and not rows:
                return 404, {}, _json({"Message": "The resource you're looking for cannot be found"})
            return 200, ok, _json({"Payments": rows or list(self.org.payments.values())})
        if method != "PUT":
            return 405, {}, b""
        try:
            given = json.loads(body)
            payment = (given.get("Payments") or [given])[0]
            invoice = payment["Invoice"]
            amount = decimal.Decimal(str(payment["Amount"]))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, decimal.InvalidOperation):
            return 400, ok, _json({"ErrorNumber": 10, "Type": "ValidationException",
                                   "Message": "A payment needs an Invoice and an Amount"})  # fmt: skip
        invoice_id = invoice.get("InvoiceID") or next(
            (k for k, v in self.org.invoices.items() if v.get("InvoiceNumber") == invoice.get("InvoiceNumber")), None
        )
        if invoice_id not in self.org.invoices or amount <= 0:
            return 400, ok, _json({"ErrorNumber": 10, "Type": "ValidationException",
                                   "Message": "The invoice does not exist or the amount is not positive"})  # fmt: skip
        return 200, ok, _json({"Payments": [self.org.record_payment(invoice_id, amount)]})

    # -- faces ---------------------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        """``httpx.MockTransport`` handler; callers on several threads overlap for ``latency_s``."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.in_flight += 1
        try:
            status, out, body, fault = self.exchange(
                request.method, request.url.path, request.url.query.decode(), headers, request.read()
            )
            if self.latency_s:
                time.sleep(self.latency_s)
        finally:
            with self._lock:
                self.in_flight -= 1
        if fault in ("timeout", "timeout_after_write"):
            raise httpx.ReadTimeout("timed out (injected)", request=request)
        return httpx.Response(status, headers=out, content=body)

    async def asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """A plain ASGI app for ``bridgehead sandbox``; calls in flight count toward the limit of 5."""
        request = await read_request(scope, receive, send)
        if request is None:
            return
        body, headers = request
        with self._lock:
            self.in_flight += 1
        try:
            status, out, content, fault = self.exchange(
                scope["method"], scope["path"], scope.get("query_string", b"").decode(), headers, body
            )
        finally:
            with self._lock:
                self.in_flight -= 1
        if fault in ("timeout", "timeout_after_write"):
            import asyncio

            await asyncio.sleep(30)  # the client's read deadline passes first
        raw = [(k.lower().encode(), v.encode()) for k, v in out.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


def _two_decimals(element: dict[str, Any]) -> dict[str, Any]:
    def cut(value: Any) -> Any:
        try:
            return str(decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP))
        except decimal.InvalidOperation:
            return value  # refused by validation, with its own message

    out = dict(element)
    for key in ("SalesDetails", "PurchaseDetails"):
        if isinstance(out.get(key), dict) and "UnitPrice" in out[key]:
            out[key] = {**out[key], "UnitPrice": cut(out[key]["UnitPrice"])}
    if isinstance(out.get("LineItems"), list):
        out["LineItems"] = [{**li, "UnitAmount": cut(li["UnitAmount"])} if isinstance(li, dict) and "UnitAmount" in li
                            else li for li in out["LineItems"]]  # fmt: skip
    return out


_LIMITS = {"minute": "per minute", "day": "daily", "appminute": "app per minute", "concurrent": "concurrent"}


def _rate_limited(problem: str) -> bytes:
    return _json({"Type": None, "Title": "Too Many Requests", "Status": 429,
                  "Detail": f"You've exceeded the {_LIMITS.get(problem, problem)} rate limit"})  # fmt: skip


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
