"""The admin API behind the console: every action, its audit entry, 401/403, and problem+json on bad input.

One demo gateway per module over a private copy of the demo database and a state store of
its own; its runs reach the fake shop (``FakeShopify``) over ``httpx.MockTransport``. A
customer whose e-mail the shop refuses dead-letters after three runs, as in production.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.state import StateDatabase
from tests.conftest import TokenFactory, demo_environ

PROBLEM = "application/problem+json"


@dataclass
class World:
    client: TestClient[Any]
    fake: FakeShopify
    db: Path
    admin: dict[str, str]

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, headers=self.admin, json=body if body is not None else {})

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.admin, params=params)

    def sql(self, statement: str, *args: Any) -> None:
        with sqlite3.connect(self.db) as conn:
            conn.execute(statement, args)

    def audit(self, **filters: str) -> list[dict[str, Any]]:
        answer = self.get("/admin/audit", **filters)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])


@pytest.fixture(scope="module")
def world(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory, token: TokenFactory) -> Iterator[World]:
    stamina.set_testing(True, attempts=3)
    folder = tmp_path_factory.mktemp("console")
    db = folder / "demo.db"
    shutil.copyfile(demo_db_path, db)
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(db))
    fake = FakeShopify(bucket=CostBucket(maximum=1_000_000, restore_rate=1_000_000))
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    app = create_app(mapping, state=StateDatabase(f"sqlite:///{folder / 'state.db'}"), sync_http=http)
    with TestClient(app) as client:
        yield World(client, fake, db, {"Authorization": f"Bearer {token('admin', sub='ops-alice')}"})
    http.close()
    stamina.set_testing(False)


def _dead_letter(world: World, customer: str) -> dict[str, Any]:
    """Break one customer's e-mail and run the sync until the shop's refusals dead-letter it."""
    world.sql("UPDATE CUSTMAST SET EMAIL = 'not-an-email' WHERE TRIM(CUSTNO) = ?", customer)
    for _ in range(3):
        assert world.post("/admin/syncs/customers/run").status_code == 200
    letters = [d for d in world.get("/admin/dlq", sync="customers").json()["data"] if d["key"] == [customer]]
    assert len(letters) == 1, letters
    return letters[0]


def test_syncs_list_their_state_runs_and_runbook(world: World) -> None:
    world.post("/admin/syncs/items/run")
    answer = world.get("/admin/syncs")
    assert answer.status_code == 200
    syncs = {s["name"]: s for s in answer.json()["data"]}
    assert list(syncs)[:3] == ["items", "stock", "customers"]  # definition order (Xero syncs follow)
    items = syncs["items"]
    assert items["state"] == "active" and items["runbook"] == "items.md"
    last = items["last_runs"][0]
    assert last["status"] == "succeeded" and last["created"] > 0 and last["failed"] == 0
    assert {"created", "updated", "deleted", "failed", "skipped"} <= set(last)
    assert items["lag_s"] is not None and items["lag_s"] >= 0 and items["next_run_at"] is not None
    assert items["remote_records"] == last["created"] == len(world.fake.shop.products)
    assert world.get("/admin/syncs/nope").status_code == 404


def test_pause_and_resume_are_audited_with_the_subject(world: World) -> None:
    paused = world.post("/admin/syncs/stock/pause", {"note": "stock count tonight"})
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    run = world.post("/admin/syncs/stock/run").json()
    assert run["status"] == "cancelled" and run["error"] == "paused"
    assert world.post("/admin/syncs/stock/resume").json()["state"] == "active"
    entries = world.audit(resource="sync", key="stock")
    assert [e["action"] for e in entries[:3]] == ["resume", "run", "pause"]
    assert {e["subject"] for e in entries} == {"ops-alice"} and entries[2]["after"]["note"] == "stock count tonight"
    assert world.post("/admin/syncs/nope/pause").headers["content-type"].startswith(PROBLEM)


def test_a_dead_letter_is_replayed_after_the_row_is_fixed(world: World) -> None:
    letter = _dead_letter(world, "C0002")
    assert letter["reason"] == "INVALID: input.email: Email is invalid" and letter["attempts"] == 3
    runs = world.get("/admin/runs", sync="customers", limit=1).json()["data"]
    detail = world.get(f"/admin/runs/{runs[0]['id']}", key="C0002").json()
    (outcome,) = detail["outcomes"]
    assert outcome["outcome"] == "dead_lettered" and outcome["request"]["input"]["email"] == "not-an-email"
    assert outcome["answer"]["userErrors"][0]["message"] == "Email is invalid"
    world.sql("UPDATE CUSTMAST SET EMAIL = 'buyer@example.com' WHERE TRIM(CUSTNO) = ?", "C0002")
    replayed = world.post("/admin/dlq/replay", {"ids": [letter["id"]]})
    assert replayed.status_code == 200 and replayed.json()["replayed"] == 1
    assert world.post("/admin/syncs/customers/run").json()["status"] == "succeeded"
    emails = {c["email"] for c in world.fake.shop.customers.values()}
    assert "buyer@example.com" in emails
    assert world.get("/admin/dlq").json()["data"] == []
    (entry,) = world.audit(resource="dlq", action="replay", key=str(letter["id"]))
    assert entry["subject"] == "ops-alice" and entry["after"]["key"] == ["C0002"]
    assert world.post("/admin/dlq/replay", {"ids": [letter["id"]]}).status_code == 404


def test_a_dead_letter_is_discarded_with_a_note(world: World) -> None:
    letter = _dead_letter(world, "C0004")
    assert world.post(f"/admin/dlq/{letter['id']}/discard", {}).status_code == 422  # the note is required
    gone = world.post(f"/admin/dlq/{letter['id']}/discard", {"note": "customer closed, not worth fixing"})
    assert gone.status_code == 200 and gone.json()["key"] == ["C0004"]
    assert world.get("/admin/dlq", sync="customers").json()["data"] == []
    # Accepted as it is: the next run does not send the same row again.
    assert world.post("/admin/syncs/customers/run").json()["failed"] == 0
    (entry,) = world.audit(resource="dlq", action="discard")
    assert entry["after"]["note"] == "customer closed, not worth fixing" and entry["subject"] == "ops-alice"
    assert world.post(f"/admin/dlq/{letter['id']}/discard", {"note": "again"}).status_code == 404


def test_a_held_run_is_approved_and_sent_recording_who_decided(world: World) -> None:
    world.post("/admin/syncs/items/run")
    # Most of the catalogue changes price at once: above max_change_share, the run waits for a person.
    world.sql("UPDATE ITEMMAST SET PRICE = PRICE + 10000")
    held = world.post("/admin/syncs/items/run").json()
    assert held["status"] == "awaiting_approval"
    assert world.get("/admin/syncs/items").json()["state"] == "awaiting_approval"
    (waiting,) = world.get("/admin/approvals").json()["data"]
    assert waiting["run_id"] == held["run_id"] and waiting["plan"]["planned"]["update"] > 0
    assert waiting["plan"]["samples"][0]["diff"]["variant.price"]
    sent = world.post(f"/admin/approvals/{held['run_id']}/approve", {"note": "price list 2027"})
    assert sent.status_code == 200 and sent.json()["status"] == "succeeded" and sent.json()["updated"] > 0
    (decided,) = [a for a in world.get("/admin/approvals", all="true").json()["data"] if a["run_id"] == held["run_id"]]
    assert decided["decision"] == "approved" and decided["decided_by"] == "ops-alice"
    (entry,) = world.audit(resource="run", action="approve")
    assert entry["key"] == str(held["run_id"]) and entry["after"]["note"] == "price list 2027"
    assert world.post(f"/admin/approvals/{held['run_id']}/approve").status_code == 409  # decided once


def test_a_held_run_is_rejected(world: World) -> None:
    world.sql("UPDATE ITEMMAST SET PRICE = PRICE + 10000")
    held = world.post("/admin/syncs/items/run").json()
    assert held["status"] == "awaiting_approval"
    rejected = world.post(f"/admin/approvals/{held['run_id']}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "cancelled"
    assert world.audit(resource="run", action="reject")[0]["subject"] == "ops-alice"
    world.sql("UPDATE ITEMMAST SET PRICE = PRICE - 10000")


def test_conflicts_show_both_values_and_the_winner(world: World) -> None:
    world.post("/admin/syncs/customers/run")
    customer = next(c for c in world.fake.shop.customers.values() if c["email"])
    world.fake.shop.customers[customer["id"]]["email"] = "typed-in-the-shop@example.com"
    key = next(v for (ns, k), v in customer["metafields"].items() if k == "legacy_key")
    number = key.strip('[]"')
    world.sql("UPDATE CUSTMAST SET EMAIL = ? WHERE TRIM(CUSTNO) = ?", f"legacy-{number}@example.com".lower(), number)
    world.post("/admin/syncs/customers/run")
    found = world.get("/admin/conflicts", sync="customers", key=number).json()["data"]
    assert found, "a field both sides changed is recorded"
    conflict = found[-1]
    assert conflict["field"] == "email" and conflict["destination"] == "typed-in-the-shop@example.com"
    assert conflict["legacy"] == f"legacy-{number}@example.com".lower()
    # The customers' detector keeps no change time: the shop's dated edit wins over an undated one.
    assert conflict["winner"] == "destination"


def test_series_counts_requests_and_sync_records(world: World) -> None:
    answer = world.get("/admin/series", hours=2).json()
    assert answer["hours"] == 2 and len(answer["requests"]) == 60 and len(answer["sync"]) == 60
    assert sum(b["2xx"] for b in answer["requests"]) > 5  # this module's own calls
    assert sum(b["4xx"] for b in answer["requests"]) > 0
    assert sum(b["done"] for b in answer["sync"]) > 0


def test_each_sync_links_its_runbook_page_served_rendered(world: World) -> None:
    from sync.runbook import SECTIONS

    stock = world.get("/admin/syncs/stock").json()
    assert stock["runbook"] == "stock.md" and stock["runbook_url"] == "/admin#/runbook/stock"
    page = world.get("/admin/runbook/stock").json()
    assert page["file"] == "stock.md"
    for section in SECTIONS:
        assert f"## {section}" in page["markdown"] and f"<h2>{section}</h2>" in page["html"]
    assert "<script" not in page["html"]
    assert world.get("/admin/runbook/nope").status_code == 404


def test_session_names_the_caller(world: World) -> None:
    assert world.get("/admin/session").json() == {"subject": "ops-alice", "scopes": ["admin"]}


ROUTES = [
    ("GET", "/admin/session"), ("GET", "/admin/syncs"), ("GET", "/admin/syncs/items"),
    ("POST", "/admin/syncs/items/pause"), ("POST", "/admin/syncs/items/resume"), ("POST", "/admin/syncs/items/run"),
    ("GET", "/admin/runs"), ("GET", "/admin/runs/1"), ("GET", "/admin/dlq"), ("POST", "/admin/dlq/replay"),
    ("POST", "/admin/dlq/1/discard"), ("GET", "/admin/conflicts"), ("GET", "/admin/approvals"),
    ("POST", "/admin/approvals/1/approve"), ("POST", "/admin/approvals/1/reject"), ("GET", "/admin/series"),
    ("GET", "/admin/alerts"), ("GET", "/admin/runbook/stock"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_only_admin_tokens_are_let_in(world: World, token: TokenFactory, method: str, path: str) -> None:
    none = world.client.request(method, path, json={})
    assert none.status_code == 401 and none.headers["content-type"].startswith(PROBLEM)
    reader = {"Authorization": f"Bearer {token('jobs:read', 'customers:read:all', sub='reader')}"}
    refused = world.client.request(method, path, headers=reader, json={})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith(PROBLEM)
    assert "admin" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [
        ("GET", "/admin/runs", {"limit": "0"}, None, 400),
        ("GET", "/admin/runs", {"limit": "ten"}, None, 400),
        ("GET", "/admin/runs", {"colour": "red"}, None, 400),
        ("GET", "/admin/runs/1", {"outcome": "exploded"}, None, 400),
        ("GET", "/admin/runs/99999", {}, None, 404),
        ("GET", "/admin/series", {"hours": "999"}, None, 400),
        ("GET", "/admin/approvals", {"all": "maybe"}, None, 400),
        ("GET", "/admin/conflicts", {"key": "\x00"}, None, 400),
        ("POST", "/admin/dlq/replay", {}, b"{not json", 400),
        ("POST", "/admin/dlq/replay", {}, b'{"ids": ["one"]}', 422),
        ("POST", "/admin/dlq/replay", {}, b'{"ids": [0]}', 422),
        ("POST", "/admin/dlq/replay", {}, b'{"everything": true}', 422),
        ("POST", "/admin/dlq/1/discard", {}, b'{"note": ""}', 422),
        ("POST", "/admin/syncs/items/pause", {}, b"[]", 422),
        ("POST", "/admin/approvals/1/approve", {}, None, 409),
    ],
)
def test_bad_input_is_a_problem(
    world: World, method: str, path: str, params: dict[str, str], body: bytes | None, status: int
) -> None:
    headers = {**world.admin, "Content-Type": "application/json"}
    answer = world.client.request(method, path, params=params, headers=headers, content=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)


def test_a_body_in_another_media_type_is_415(world: World) -> None:
    headers = {**world.admin, "Content-Type": "text/plain"}
    answer = world.client.post("/admin/dlq/replay", headers=headers, content=b"ids=1")
    assert answer.status_code == 415 and answer.headers["content-type"].startswith(PROBLEM)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_BODIES = st.one_of(st.binary(max_size=80), _JSON.map(lambda v: httpx.Request("POST", "/", json=v).content))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(max_size=60), body=_BODIES)
def test_hostile_input_never_breaks_the_api(world: World, key: str, body: bytes) -> None:
    for path in ("/admin/runs/1", "/admin/conflicts"):
        answer = world.client.get(path, headers=world.admin, params={"key": key})
        assert answer.status_code in (200, 400, 404), answer.text
    for path in ("/admin/dlq/replay", "/admin/dlq/1/discard", "/admin/syncs/nope/pause"):
        answer = world.client.post(path, headers={**world.admin, "Content-Type": "application/json"}, content=body)
        assert answer.status_code in (200, 400, 404, 422), answer.text
        if answer.status_code != 200:
            assert answer.headers["content-type"].startswith(PROBLEM)
