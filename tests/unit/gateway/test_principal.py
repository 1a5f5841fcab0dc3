"""Scopes and subject read from verified claims: ``scope`` (OAuth 2 string) and ``scp`` (list)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth.principal import ADMIN_SCOPE, ANONYMOUS, Principal


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "jobs:read jobs:write"}, {"jobs:read", "jobs:write"}),
        ({"scope": "  jobs:read\tcosts:read \n"}, {"jobs:read", "costs:read"}),
        ({"scope": ""}, set()),
        ({"scp": ["jobs:read", "stock:read"]}, {"jobs:read", "stock:read"}),
        ({"scp": "jobs:read stock:read"}, {"jobs:read", "stock:read"}),
        ({"scope": "jobs:read", "scp": ["stock:read"]}, {"jobs:read", "stock:read"}),
        ({"scp": ["jobs:read", 7, None, {"x": 1}]}, {"jobs:read"}),
        ({"scope": ["jobs:read"]}, set()),  # a list in `scope` is not the OAuth 2 form
        ({"scope": 42, "scp": 42}, set()),
        ({}, set()),
    ],
)
def test_scopes_come_from_scope_and_scp(claims: dict[str, Any], scopes: set[str]) -> None:
    assert Principal.from_claims(claims).scopes == scopes


def test_a_scope_is_matched_exactly_not_by_prefix() -> None:
    principal = Principal.from_claims({"scope": "jobs:read:all jobs"})
    assert not principal.has("jobs:read")
    assert principal.has("jobs:read:all")


def test_admin_implies_every_scope() -> None:
    admin = Principal.from_claims({"scp": [ADMIN_SCOPE]})
    assert admin.has("jobs:read") and admin.has("costs:read") and admin.has("anything:at:all")


def test_no_scope_needed_is_always_met() -> None:
    assert Principal.from_claims({}).has(None)
    assert ANONYMOUS.has(None) and not ANONYMOUS.has("jobs:read")


@pytest.mark.parametrize(("sub", "subject"), [("portal", "portal"), (42, "42"), (None, None)])
def test_subject_is_text_or_none(sub: Any, subject: str | None) -> None:
    claims = {"sub": sub} if sub is not None else {}
    principal = Principal.from_claims(claims)
    assert principal.subject == subject
    assert not principal.anonymous


def test_claims_are_kept_for_row_filters() -> None:
    principal = Principal.from_claims({"sub": "p", "customer_id": "C0042"})
    assert principal.claims["customer_id"] == "C0042"
    assert ANONYMOUS.anonymous and ANONYMOUS.subject is None
