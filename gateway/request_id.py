"""``X-Request-ID`` on every response, taken from the request when it carries a sane one.

The id is made once per request (``request_id``) and stored in the ASGI scope.
The header and the access-log line are added in a ``before_send`` hook because
Litestar runs middleware only for matched routes, and a 404 needs its id too.
"""

from __future__ import annotations

import contextvars
import os
import random
import re
import time
from typing import TYPE_CHECKING, Any

import structlog
from litestar.enums import ScopeType

from gateway.logging import access_line
from legacy_adapters.redaction import may_hold_secret

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "RequestIdMiddleware",
    "access_log",
    "add_request_id_header",
    "bind_request_id",
    "request_id",
    "unbind_request_id",
)

_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# New ids come from a generator seeded from the OS once per process (and again in a forked child),
# not from os.urandom per request: that system call released the GIL on the event loop thread,
# which then waited for a worker thread's switch interval to get it back (6 % of a keyed read's
# samples). An id names a request in the logs; it is not a secret, so it need not be unpredictable.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def request_id(scope: Scope | dict[str, Any]) -> str:
    """The request's id: the client's ``X-Request-ID`` when well-formed, else a new one.

    A client's id that may hold a secret (a token pasted into the wrong header, a known secret)
    is not taken: the id goes on every log line of the request, which the request line's cheap
    secret look (``gateway.logging``) does not check it for.
    """
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), "")
        if _VALID.match(given) and not may_hold_secret(given):
            state["request_id"] = given
        else:
            state["request_id"] = f"{_ids.getrandbits(128):032x}"
        state["started"] = time.perf_counter()
    return str(state["request_id"])


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: stamp the id on the response; write the access-log line at its end.

    The line waits for the last body message so that ``rows`` and ``ms`` cover a streamed export
    whole; a response cut short (the client left) is logged by ``RequestIdMiddleware`` instead.
    """
    if scope["type"] != ScopeType.HTTP:
        return
    if message["type"] == "http.response.start":
        rid = request_id(scope)
        message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode("latin-1"))]
        scope["state"]["status"] = message["status"]
    elif message["type"] == "http.response.body" and not message.get("more_body", False):
        access_log(scope)


def access_log(scope: Scope | dict[str, Any], *, interrupted: bool = False) -> None:
    """The request's one access-log line (once): id, route template, status, duration, subject, rows."""
    state = scope.setdefault("state", {})
    if state.get("logged") or "status" not in state:
        return
    state["logged"] = True
    write = access_line()
    if write is None:  # the line is off (a level above info): nothing to gather
        return
    rid = request_id(scope)  # first: it stamps ``started`` on a request that had no id yet
    now = time.perf_counter()
    write(
        rid,
        scope.get("method"),
        scope.get("path"),
        scope.get("path_template"),
        state["status"],
        _tenths(now - state.get("started", now)),
        # Who asked: the verified token's subject, never the token.
        getattr(scope.get("user"), "subject", None),
        state.get("rows", 0),
        interrupted,
    )


def _tenths(seconds: float) -> float:
    """``round(seconds * 1000, 1)``, the line's milliseconds, without float ``round``'s conversion to
    decimal digits and back (once per request); the same figure except, at most, at an exact half."""
    return int(seconds * 10_000 + 0.5) / 10


def _structlog_var(key: str) -> contextvars.ContextVar[Any]:
    """The context variable structlog binds ``key`` in (made now if it was not yet), left unbound."""
    token = structlog.contextvars.bind_contextvars(**{key: ...})[key]
    token.var.reset(token)
    return token.var


_REQUEST_ID = _structlog_var("request_id")


def bind_request_id(scope: Scope | dict[str, Any]) -> contextvars.Token[Any]:
    """Bind the request's id into structlog's context; reset the token (``unbind_request_id``) at its end."""
    return _REQUEST_ID.set(request_id(scope))


def unbind_request_id(token: contextvars.Token[Any]) -> None:
    _REQUEST_ID.reset(token)


class RequestIdMiddleware:
    """Binds the request id into structlog's context so every log line of the request carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        # The variable itself rather than bound_contextvars(), which reads every context variable first
        # (5 % of a get), or bind_contextvars() + reset_contextvars(), which look it up by name each time.
        token = _REQUEST_ID.set(request_id(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            access_log(scope, interrupted=True)  # a no-op when the response ended normally
            _REQUEST_ID.reset(token)
