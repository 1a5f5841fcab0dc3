"""A read grant is built once per (resource, principal) and kept; a refusal is raised and logged every time."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.auth.guards import authorize_read
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.exceptions import Forbidden, Unauthorized
from legacy_adapters.mapping import Mapping
from legacy_adapters.query.filters import Comparison
from legacy_adapters.query.resource import bind_version


def test_a_grant_is_kept_per_principal_and_equals_a_fresh_one(demo_mapping: Mapping) -> None:
    jobs = bind_version(demo_mapping, "v1")["jobs"]
    portal = Principal("p", frozenset({"jobs:read"}), {"customer_id": "C0001"})
    first = authorize_read(jobs, portal)
    assert authorize_read(jobs, portal) is first
    twin = authorize_read(jobs, Principal("p", frozenset({"jobs:read"}), {"customer_id": "C0001"}))
    assert twin is not first and twin.fields.keys() == first.fields.keys()
    assert _claims(twin.conditions) == _claims(first.conditions) == [("C0001",)]
    other = authorize_read(jobs, Principal("q", frozenset({"jobs:read"}), {"customer_id": "C0002"}))
    assert _claims(other.conditions) == [("C0002",)]


def _claims(conditions: tuple[Any, ...]) -> list[Any]:
    assert all(isinstance(c, Comparison) for c in conditions)
    return [c.value for c in conditions]


def test_a_refusal_is_not_kept(demo_mapping: Mapping) -> None:
    jobs = bind_version(demo_mapping, "v1")["jobs"]
    stranger = Principal("s", frozenset({"stock:read"}))
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(Forbidden):
                authorize_read(jobs, stranger)
            with pytest.raises(Unauthorized):
                authorize_read(jobs, ANONYMOUS)
    assert [entry["event"] for entry in logs] == ["access refused"] * 4
