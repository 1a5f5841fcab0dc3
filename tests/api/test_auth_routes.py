"""Authentication is declared once, for every route: a new route cannot forget it.

The first tests walk every route of the built app; the others drive the raw ASGI
app to show that a request is refused before its body is read.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from gateway import create_app
from gateway.auth.middleware import is_public
from legacy_adapters.mapping import Mapping
from tests.conftest import TokenFactory

SAMPLE_PARAMS = {
    "key": "J000001",
    "name": "release",
    "slug": "invalid-token",
    "sync": "items",
    "run_id": "1",
    "letter_id": "1",
}
BAD_TOKEN = {"Authorization": "Bearer not.a.token"}


def routes(app: Litestar) -> list[tuple[str, str, Any]]:
    """(method, path with sample parameters, handler) for every route the app serves."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{(\w+):\w+\}", lambda m: SAMPLE_PARAMS[m.group(1)], route.path)
        for method, (handler, _) in route.route_handler_map.items():
            if method not in ("OPTIONS", "HEAD"):
                found.append((method, path, handler))
    return found


def anonymous_reads(mapping: Mapping) -> set[str]:
    return {
        f"{version}.{name}.{verb}"
        for version, spec in mapping.versions.items()
        for name, resource in spec.resources.items()
        if resource.anonymous
        for verb in ("list", "get", "aggregate")
    }


def test_every_route_is_public_or_guarded(client: TestClient[Any]) -> None:
    found = routes(client.app)
    assert len(found) >= 20  # the walk sees the generated resource routes, not an empty app
    for method, path, handler in found:
        if not is_public(path):
            assert handler.resolve_guards(), f"{method} {path} has no guard: it would serve without a check"


def test_every_guard_runs_on_the_event_loop(client: TestClient[Any]) -> None:
    # Litestar runs a plain-function guard in a thread pool: a thread hop per guard per request.
    for method, path, handler in routes(client.app):
        for guard in handler.resolve_guards():
            assert asyncio.iscoroutinefunction(guard), f"{method} {path}: guard {guard!r} would run in a thread"


def test_every_guarded_route_refuses_a_caller_without_a_token(client: TestClient[Any], demo_mapping: Mapping) -> None:
    anonymous = anonymous_reads(demo_mapping)
    assert anonymous, "the demo declares an anonymous resource (items)"
    for method, path, handler in routes(client.app):
        if is_public(path):
            continue
        bad = client.request(method, path, headers=BAD_TOKEN, json={})
        assert bad.status_code == 401, f"{method} {path} accepted a bad token: {bad.status_code}"
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert 'error="invalid_token"' in bad.headers["www-authenticate"]
        none = client.request(method, path, json={})
        if handler.name in anonymous:
            assert none.status_code in (200, 404), f"{method} {path} is anonymous: {none.status_code}"
        else:
            assert none.status_code == 401, f"{method} {path} answered {none.status_code} without a token"


def test_public_routes_ignore_tokens(client: TestClient[Any]) -> None:
    public = [(m, p) for m, p, _ in routes(client.app) if is_public(p)]
    assert {p for _, p in public} >= {"/health/live", "/health/ready", "/docs"}
    for method, path in public:
        assert client.request(method, path, headers=BAD_TOKEN).status_code != 401, path


def test_the_audit_trail_uses_the_shared_admin_guard(client: TestClient[Any], token: TokenFactory) -> None:
    assert client.get("/admin/audit").status_code == 401
    reader = client.get("/admin/audit", headers={"Authorization": f"Bearer {token('jobs:read')}"})
    assert reader.status_code == 403 and reader.json()["detail"] == "the audit trail needs the scope 'admin'"
    assert reader.headers["www-authenticate"] == 'Bearer realm="bridgehead", error="insufficient_scope", scope="admin"'


# -- refused before the body is read ---------------------------------------------------------


async def _call(app: Litestar, method: str, path: str, headers: dict[str, str], chunks: int) -> tuple[int, int]:
    """Send ``chunks`` MB of body through raw ASGI; return the status and how many chunks the app read."""
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        if read > chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": read < chunks}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(chunks * 1_000_000).encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, read


@pytest.mark.parametrize(
    ("path", "authorization", "status"),
    [
        ("/v1/jobs", None, 401),
        ("/v1/jobs", "Bearer not.a.token", 401),
        ("/v1/jobs", "Basic dXNlcjpwYXNz", 401),
        ("/v1/jobs/J000001/actions/release", None, 401),
        ("/v1/jobs", "reader", 403),
    ],
    ids=["no-token", "bad-token", "basic", "action-no-token", "no-write-scope"],
)
def test_a_refused_write_is_refused_before_its_body_is_read(
    demo_mapping: Mapping, token: TokenFactory, path: str, authorization: str | None, status: int
) -> None:
    app = create_app(demo_mapping)
    headers = {} if authorization is None else {"Authorization": authorization}
    if authorization == "reader":
        headers = {"Authorization": f"Bearer {token('jobs:read')}"}
    answered, chunks_read = asyncio.run(_call(app, "POST", path, headers, chunks=10))
    assert (answered, chunks_read) == (status, 0)


def test_an_accepted_write_does_read_its_body(demo_mapping: Mapping, admin: dict[str, str]) -> None:
    # The harness itself works: a caller allowed to write gets its body read (and refused as JSON)
    # when the body is within the limit (10 MB here)...
    roomy = msgspec.structs.replace(demo_mapping, api=msgspec.structs.replace(demo_mapping.api, max_body_bytes=10**7))
    answered, chunks_read = asyncio.run(_call(create_app(roomy), "POST", "/v1/jobs", admin, chunks=2))
    assert chunks_read >= 2 and answered in (400, 413)
    # ... and past the default 1 MiB, its declared length alone gets it a 413: nothing is read.
    answered, chunks_read = asyncio.run(_call(create_app(demo_mapping), "POST", "/v1/jobs", admin, chunks=2))
    assert (answered, chunks_read) == (413, 0)
