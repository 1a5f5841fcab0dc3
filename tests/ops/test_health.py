"""``/health``: the plain status for anyone, details (no secrets) for an admin token only."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.conftest import JWT_SECRET, TokenFactory


def test_anonymous_and_non_admin_callers_get_the_plain_status(client: TestClient[Any], token: TokenFactory) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": f"Bearer {token('jobs:read', 'stock:read')}"},
    ):
        response = client.get("/health", headers=headers)
        assert response.status_code == 200 and response.json() == {"status": "ok"}, headers


def test_an_admin_sees_pool_state_store_and_sync_lag(client: TestClient[Any], admin: dict[str, str]) -> None:
    body = client.get("/health", headers=admin).json()
    assert body["status"] == "ok"
    details = body["details"]
    assert details["database"]["ready"] is True and details["database"]["pool_size"] >= 1
    assert details["database"]["in_use"] >= 0 and details["database"]["waiting"] >= 0
    assert details["exports"]["slots"] >= 1
    assert details["state_store"]["reachable"] is True
    assert set(details["sync"]) >= {"items", "stock", "customers"}
    assert all({"outbox", "dead_letters", "lag_s"} <= set(v) for v in details["sync"].values())
    text = client.get("/health", headers=admin).text
    for secret in (JWT_SECRET, "sqlite:", "sandbox-token", "127.0.0.1", "Bearer"):
        assert secret not in text
