"""``bridgehead xero connect``: consent in a browser, the callback on localhost, the first grant stored.

The consent URL is printed (and opened when a browser is at hand); Xero sends the browser back
to the app's registered redirect URI on this machine with ``code`` and ``state``. A small HTTP
server bound to that host and port takes exactly one callback whose ``state`` is the one we
made (a callback with any other state is refused and waited past: it was not started here),
trades the code and the PKCE verifier for tokens, reads ``/connections`` for the tenant, and
stores the sealed grant. Nothing of the code or the tokens is printed or logged.
"""

from __future__ import annotations

import html
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sync.connectors.xero.grant_source import report_grant
from sync.connectors.xero.oauth import connections, consent_request, exchange_code
from sync.exceptions import Fatal

if TYPE_CHECKING:
    import httpx

    from sync.connectors.xero.oauth import Connection, ConsentRequest, XeroApp
    from sync.state.oauth_grants import GrantStore

__all__ = ("CallbackServer", "ConnectFailed", "connect")


class ConnectFailed(Fatal):
    """Consent was refused, timed out, or named no usable organisation."""


@dataclass(frozen=True, slots=True)
class _Callback:
    code: str | None
    error: str | None


class CallbackServer:
    """Listens on the redirect URI's host and port for the one callback that carries our ``state``."""

    def __init__(self, consent: ConsentRequest) -> None:
        target = urlsplit(consent.redirect_uri)
        if target.scheme != "http" or target.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ConnectFailed(
                f"redirect_uri {consent.redirect_uri!r} is not on this machine (http://localhost:PORT/…)"
            )
        self.path = target.path or "/"
        self.results: queue.Queue[_Callback] = queue.Queue()
        expected, path, results = consent.state, self.path, self.results

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                args = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != path:
                    return self._answer(404, "Not the Bridgehead callback.")
                if args.get("state") != expected:
                    # Not a consent this process started (a forged or stale link): refuse, keep waiting.
                    return self._answer(400, "This link was not started by `bridgehead xero connect`.")
                if "error" in args:
                    results.put(_Callback(None, args["error"]))
                    return self._answer(400, f"Xero said: {args['error']}. You can close this window.")
                results.put(_Callback(args.get("code"), None if args.get("code") else "no code"))
                return self._answer(200, "Bridgehead is connected to Xero. You can close this window.")

            def _answer(self, status: int, text: str) -> None:
                body = f"<!doctype html><title>Bridgehead</title><p>{html.escape(text)}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # the query string holds the code
                pass

        host = "127.0.0.1" if target.hostname == "localhost" else target.hostname
        try:
            self.server = ThreadingHTTPServer((host, target.port or 80), Handler)
        except OSError as exc:
            where = f"{host}:{target.port or 80}"
            raise ConnectFailed(f"cannot listen on {where} for the callback: {exc.strerror}") from None
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="xero-callback", daemon=True)

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, timeout_s: float) -> str:
        """The authorization code; ``ConnectFailed`` when consent was refused or never came."""
        try:
            result = self.results.get(timeout=timeout_s)
        except queue.Empty:
            raise ConnectFailed(f"no callback within {timeout_s:.0f} s: run `bridgehead xero connect` again") from None
        if result.error is not None or not result.code:
            raise ConnectFailed(f"consent was not given ({result.error})")
        return result.code


def connect(
    app: XeroApp, store: GrantStore, name: str, http: httpx.Client, *, echo: Callable[[str], None],
    tenant: str | None = None, timeout_s: float = 300.0, on_url: Callable[[str], None] | None = None,
) -> Connection:  # fmt: skip
    """Run one consent and store its grant under ``name``; returns the organisation connected.

    Args:
        echo: prints a line for the person at the keyboard (the consent URL, what was connected).
        tenant: the tenant id (or organisation name) to use when the grant reaches several.
        on_url: called with the consent URL once the callback listens (opens a browser; tests follow it).
    """
    consent = consent_request(app.client_id, app.redirect_uri, scopes=app.scopes, authorize_url=app.authorize_url)
    with CallbackServer(consent) as server:
        echo("Open this URL in a browser, sign in to Xero and allow access:")
        echo(f"  {consent.url}")
        echo(f"Waiting for Xero to call back on {app.redirect_uri} …")
        if on_url is not None:
            on_url(consent.url)
        code = server.wait(timeout_s)
    tokens = exchange_code(http, consent, code, client_id=app.client_id, client_secret=app.client_secret,
                           token_url=app.token_url, clock=store.clock)  # fmt: skip
    found = [c for c in connections(http, tokens.access_token, url=app.connections_url)
             if c.tenant_type in ("ORGANISATION", "")]  # fmt: skip
    chosen = [c for c in found if tenant in (None, c.tenant_id, c.tenant_name)]
    if not chosen:
        raise ConnectFailed(f"the grant reaches no organisation{f' named {tenant!r}' if tenant else ''}")
    if len(chosen) > 1:
        names = ", ".join(f"{c.tenant_name} ({c.tenant_id})" for c in chosen)
        raise ConnectFailed(f"the grant reaches several organisations: pick one with --tenant ({names})")
    store.save(name, tokens, tenant_id=chosen[0].tenant_id, tenant_name=chosen[0].tenant_name)
    report_grant(store.db, name, "ok")  # a reconnect clears the "reconnect needed" alert
    echo(f"Connected {name!r} to {chosen[0].tenant_name} (tenant {chosen[0].tenant_id}).")
    return chosen[0]
