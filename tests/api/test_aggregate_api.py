"""``GET /v1/{resource}/aggregate`` against the SQLite demo: access as for lists, plain errors, no 500 for any input.

The values themselves are checked against the raw tables on every backend in
``tests/db/test_aggregates_backends.py``; here: who may aggregate what, and hostile input.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from tests.conftest import TokenFactory

Client = TestClient[Any]


def test_a_hidden_field_cannot_be_grouped_summed_or_filtered(client: Client, token: TokenFactory) -> None:
    reader = {"Authorization": f"Bearer {token('jobs:read:all')}"}
    for query in ("group_by=standard_cost", "sum=standard_cost", "max=standard_cost", "standard_cost[gt]=1"):
        response = client.get(f"/v1/items/aggregate?{query}", headers=reader)
        assert response.status_code == 400, (query, response.text)
        assert "unknown field 'standard_cost'" in response.text
    costs = {"Authorization": f"Bearer {token('costs:read')}"}
    allowed = client.get("/v1/items/aggregate?sum=standard_cost&standard_cost[gt]=1", headers=costs)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"][0]["sum"]["standard_cost"] > 0


def test_access_is_the_lists_access(client: Client, token: TokenFactory) -> None:
    assert client.get("/v1/jobs/aggregate").status_code == 401
    assert client.get("/v1/items/aggregate?group_by=unit_of_measure").status_code == 200  # an anonymous catalogue
    no_claim = client.get("/v1/jobs/aggregate", headers={"Authorization": f"Bearer {token('jobs:read')}"})
    assert no_claim.status_code == 403 and "customer_id" in no_claim.json()["detail"]
    wrong = client.get("/v1/jobs/aggregate", headers={"Authorization": f"Bearer {token('stock:read')}"})
    assert wrong.status_code == 403
    # The key route still serves a row; 'aggregate' is the one name no key can take.
    assert client.get("/v1/items/100-0001").status_code in (200, 404)


def test_errors_name_every_bad_parameter(client: Client, admin: dict[str, str]) -> None:
    response = client.get(
        "/v1/jobs/aggregate?group_by=status:month,nope&sum=status&avg=due_date&min=customer_id"
        "&having.sum.quantity[gt]=1&having.count[zz]=1&sort=quantity&limit=0&status=shipped",
        headers=admin,
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "/problems/invalid-parameter"
    details = {(e["parameter"], e["detail"]) for e in problem["errors"]}
    assert ("group_by", "status is not a date: it cannot be grouped by month") in details
    assert any(p == "group_by" and d.startswith("unknown field 'nope'") for p, d in details)
    assert ("sum", "sum applies to numbers; status is not one") in details
    assert ("avg", "avg applies to numbers; due_date is not one") in details
    assert any(p == "having.sum.quantity[gt]" and "add sum=quantity" in d for p, d in details)
    assert any(p == "having.count[zz]" and "unknown operator" in d for p, d in details)
    assert any(p == "sort" and "not 'quantity'" in d for p, d in details)
    assert any(p == "limit" for p, _ in details)
    assert any(p == "status" and "is not one of" in d for p, d in details)


def test_text_dates_cannot_be_bucketed(client: Client, admin: dict[str, str]) -> None:
    response = client.get("/v1/stock/aggregate?group_by=counted_on:year", headers=admin)
    assert response.status_code == 400
    assert "stored as MM/DD/YYYY text" in response.json()["detail"]
    julian = client.get("/v1/items/aggregate?group_by=last_received_on:month", headers=admin)
    assert julian.status_code == 400 and "day of the year" in julian.json()["detail"]
    assert client.get("/v1/items/aggregate?group_by=last_received_on:week", headers=admin).status_code == 200


def test_cursors_belong_to_their_query(client: Client, admin: dict[str, str]) -> None:
    first = client.get("/v1/jobs/aggregate?group_by=customer_id&limit=3", headers=admin)
    cursor = first.json()["next_cursor"]
    assert cursor and 'rel="next"' in first.headers["link"]
    other = client.get(f"/v1/jobs/aggregate?group_by=customer_id&limit=3&rush=true&cursor={cursor}", headers=admin)
    assert other.status_code == 400 and "different query" in other.json()["detail"]
    forged = client.get(f"/v1/jobs/aggregate?group_by=customer_id&limit=3&cursor={cursor[:-2]}xx", headers=admin)
    assert forged.status_code == 400
    second = client.get(f"/v1/jobs/aggregate?group_by=customer_id&limit=3&cursor={cursor}", headers=admin).json()
    assert second["data"][0]["group"]["customer_id"] > first.json()["data"][-1]["group"]["customer_id"]


_NAMES = st.sampled_from(
    ["group_by", "sum", "avg", "min", "max", "count_distinct", "sort", "limit", "cursor", "having.count[gt]",
     "having.sum.quantity[lte]", "having.avg.quantity[ne]", "having.min.due_date[gte]", "having.", "having.x[",
     "status", "due_date[lt]", "quantity[in]", "notes[like]", "ordered_at[gte]", "x[y]", "fields"]
)  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(
        ["status", "due_date:month", "due_date:week", "ordered_at:day", "quantity", "-count", "sum.quantity",
         "1e400000", "-1", "99999999999999999999999", "2026-02-30", "released", "true", "", ",", "avg.quantity",
         "customer_id,status,rush,due_date:year", "notes", "1.23456789", "\x00", "ordered_at"]
    ),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
def test_no_input_makes_a_server_error(client: Client, admin: dict[str, str], params: list[tuple[str, str]]) -> None:
    response = client.get("/v1/jobs/aggregate", params=params, headers=admin)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["detail"]
