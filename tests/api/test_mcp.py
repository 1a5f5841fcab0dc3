"""The MCP server driven by the SDK's own client: Streamable HTTP on a real socket, and stdio.

Every tool of the admin and of a portal token is called; what comes back is checked against
the raw demo tables (a portal sees its customer's rows only, through every tool), a field or
resource the REST API hides is in no tool, and a missing or forged token is a 401 that points
to the protected-resource metadata.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, load_mapping
from tests.conftest import JWT_SECRET, TokenFactory
from tests.live_server import LiveServer, live_server

T = TypeVar("T")
CUSTOMER = "C0042"
V2_READS = {"customers", "items", "stock", "jobs", "job_invoices", "operations", "item_costs"}
PORTAL_READS = {"customers", "items", "jobs", "job_invoices", "operations"}


def _environ(db: Path, tmp: Path) -> dict[str, str]:
    return {
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }


@pytest.fixture(scope="module")
def db(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo database: the write tools change a job."""
    copy = tmp_path_factory.mktemp("mcp") / "demo.db"
    shutil.copyfile(demo_db_path, copy)
    return copy


@pytest.fixture(scope="module")
def mapping(db: Path) -> Mapping:
    return load_mapping(DEMO_MAPPING_PATH, _environ(db, db.parent))


@pytest.fixture(scope="module")
def server(mapping: Mapping) -> Iterator[LiveServer]:
    with live_server(create_app(mapping)) as live:
        yield live


def run(base: str, token: str | None, steps: Callable[[Client], Awaitable[T]]) -> T:
    """Connect the SDK client to ``base``/mcp over Streamable HTTP with ``token`` and run ``steps``."""

    async def main() -> T:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
        ):
            return await steps(client)

    return asyncio.run(main())


async def _tools(client: Client) -> dict[str, Any]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def _own_jobs(db: Path) -> set[str]:
    return {
        r[0].rstrip()
        for r in _rows(db, "SELECT JOBNO FROM JOBMAST WHERE CUSTNO = ? AND DELFLG <> 'Y'", CUSTOMER.ljust(8))
    }


@pytest.fixture(scope="module")
def portal(token: TokenFactory) -> str:
    return token("jobs:read", "customers:read", sub="portal-agent", customer_id=CUSTOMER)


@pytest.fixture(scope="module")
def admin_token(token: TokenFactory) -> str:
    return token("admin", sub="admin-agent")


def test_the_tool_lists_follow_the_token(server: LiveServer, admin_token: str, portal: str) -> None:
    admin_tools = run(server.base, admin_token, _tools)
    portal_tools = run(server.base, portal, _tools)
    reads = {f"{r}_{verb}" for r in V2_READS for verb in ("list", "get", "aggregate")}
    assert set(admin_tools) == {"describe_resources", *reads, "jobs_update", "jobs_release"}
    # No write scope, no stock:read, no costs:read: reads of what it may see, nothing else.
    assert set(portal_tools) == {
        "describe_resources",
        *(f"{r}_{v}" for r in PORTAL_READS for v in ("list", "get", "aggregate")),
    }
    assert admin_tools["jobs_list"].annotations.read_only_hint is True
    assert admin_tools["jobs_release"].annotations.read_only_hint is False
    status = admin_tools["jobs_list"].input_schema["properties"]["filters"]["properties"]["status"]
    assert status["anyOf"][0]["enum"] == ["COMPLETE", "ON_HOLD", "PLANNED", "RELEASED", "UNKNOWN"]
    # Items relate to stock (stock:read) and item_costs (costs:read): the portal may embed neither.
    assert "embed" not in portal_tools["items_list"].input_schema["properties"]
    assert admin_tools["items_list"].input_schema["properties"]["embed"]["items"]["enum"] == ["stock", "costs"]


def test_every_tool_of_the_admin(server: LiveServer, admin_token: str, db: Path) -> None:
    async def steps(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        tools = await _tools(client)
        for name in tools:
            if name.endswith("_list"):
                out[name] = await client.call_tool(name, {"limit": 3})
            elif name.endswith("_aggregate"):
                out[name] = await client.call_tool(name, {})
        out["describe"] = await client.call_tool("describe_resources", {})
        out["get"] = await client.call_tool("operations_get", {"key": {"job_number": "J000002", "sequence": 20}})
        out["agg"] = await client.call_tool(
            "jobs_aggregate",
            {"group_by": ["status"], "sum": ["quantity"], "min": ["due_date"], "having": {"count": {"gt": 3}},
             "sort": ["-count"], "filters": {"expedite": True}},
        )  # fmt: skip
        held = _rows(db, "SELECT JOBNO FROM JOBMAST WHERE JSTAT = 'H' AND DELFLG <> 'Y' ORDER BY JOBNO LIMIT 2")
        first, second = (r[0].rstrip() for r in held)
        before = await client.call_tool("jobs_get", {"key": {"job_number": first}})
        out["update"] = await client.call_tool(
            "jobs_update",
            {
                "key": {"job_number": first},
                "changes": {"notes": "agent note"},
                "etag": before.structured_content["etag"],
            },
        )
        out["stale"] = await client.call_tool(
            "jobs_update",
            {"key": {"job_number": first}, "changes": {"notes": "x"}, "etag": before.structured_content["etag"]},
        )
        out["release"] = await client.call_tool("jobs_release", {"key": {"job_number": second}})
        out["jobs"] = (first, second)
        return out

    results = run(server.base, admin_token, steps)
    for name, result in results.items():
        if name.endswith(("_list", "_aggregate")):
            assert not result.is_error, (name, result.content)
            assert isinstance(result.structured_content["data"], list) and result.structured_content["data"]
            assert result.content[0].text.split("\n", 1)[0].endswith("."), "a plain summary line comes first"
    described = results["describe"].structured_content
    assert set(described["resources"]) == V2_READS
    jobs = described["resources"]["jobs"]
    assert jobs["fields"]["due_date"]["group_by"] == [
        "due_date",
        "due_date:year",
        "due_date:month",
        "due_date:week",
        "due_date:day",
    ]
    assert "sum" in jobs["fields"]["quantity"]["aggregates"] and "lt" in jobs["fields"]["due_date"]["filters"]
    assert jobs["relations"]["operations"] == {"resource": "operations", "many": True}
    assert results["get"].structured_content["data"]["sequence"] == 20

    # The aggregate equals the raw table: expedited (RUSHFL = 'Y') visible jobs per served status.
    raw = _rows(db, "SELECT JSTAT, QTY FROM JOBMAST WHERE RUSHFL = 'Y' AND DELFLG <> 'Y'")
    names = {"R": "RELEASED", "H": "ON_HOLD", "C": "COMPLETE", "P": "PLANNED"}
    counts: dict[str, list[int]] = {}
    for code, qty in raw:
        counts.setdefault(names.get(code.rstrip(), "UNKNOWN"), []).append(qty)
    want = sorted(((k, len(v), sum(v) / 100) for k, v in counts.items() if len(v) > 3), key=lambda t: (-t[1], t[0]))
    got = [(g["group"]["status"], g["count"], g["sum"]["quantity"]) for g in results["agg"].structured_content["data"]]
    assert got == want

    first, second = results["jobs"]
    assert not results["update"].is_error and results["update"].structured_content["data"]["notes"] == "agent note"
    assert results["stale"].is_error
    assert results["stale"].content[0].text == "the row changed since your copy was read (its ETag no longer matches)"
    assert not results["release"].is_error
    assert _rows(db, "SELECT JSTAT, NOTES FROM JOBMAST WHERE JOBNO = ?", first.ljust(10))[0][1] == "agent note"
    assert _rows(db, "SELECT JSTAT FROM JOBMAST WHERE JOBNO = ?", second.ljust(10))[0][0] == "R"
    # The agent's writes are audited with its subject and the tool that made them.
    audit = httpx.get(
        f"{server.base}/admin/audit?subject=admin-agent", headers={"Authorization": f"Bearer {admin_token}"}
    ).json()["data"]
    made = {(e["key"], e["action"], e["via"]) for e in audit}
    assert (first, "update", "mcp:jobs_update") in made
    assert (second, "action:release", "mcp:jobs_release") in made


def test_a_portal_token_sees_its_own_rows_through_every_tool(server: LiveServer, portal: str, db: Path) -> None:
    own = _own_jobs(db)
    assert own
    foreign = _rows(db, "SELECT JOBNO FROM JOBMAST WHERE CUSTNO <> ? AND DELFLG <> 'Y' LIMIT 1", CUSTOMER.ljust(8))[0][
        0
    ]

    async def steps(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in await _tools(client):
            if name.endswith("_list"):
                out[name] = await client.call_tool(name, {"limit": 500})
            elif name.endswith("_aggregate"):
                out[name] = await client.call_tool(
                    name, {"count_distinct": ["customer_id"]} if "job" in name or "customer" in name else {}
                )
        out["jobs_get_foreign"] = await client.call_tool("jobs_get", {"key": {"job_number": foreign.rstrip()}})
        out["jobs_get_own"] = await client.call_tool("jobs_get", {"key": {"job_number": sorted(own)[0]}})
        out["customers_get_foreign"] = await client.call_tool("customers_get", {"key": {"customer_id": "C0001"}})
        out["filter_foreign"] = await client.call_tool("jobs_list", {"filters": {"customer_id": "C0001"}})
        out["describe"] = await client.call_tool("describe_resources", {})
        out["write"] = await client.call_tool("jobs_release", {"key": {"job_number": sorted(own)[0]}})
        return out

    results = run(server.base, portal, steps)
    assert {r["job_number"] for r in results["jobs_list"].structured_content["data"]} == own
    assert {r["job_number"] for r in results["job_invoices_list"].structured_content["data"]} == own
    assert {r["job_number"] for r in results["operations_list"].structured_content["data"]} <= own
    assert [r["customer_id"] for r in results["customers_list"].structured_content["data"]] == [CUSTOMER]
    assert results["jobs_aggregate"].structured_content["data"] == [
        {"count": len(own), "count_distinct": {"customer_id": 1}}
    ]
    assert results["customers_aggregate"].structured_content["data"] == [
        {"count": 1, "count_distinct": {"customer_id": 1}}
    ]
    ops = _rows(
        db,
        "SELECT COUNT(*) FROM JOBOPS WHERE JOBNO IN (SELECT JOBNO FROM JOBMAST WHERE CUSTNO = ? AND DELFLG <> 'Y')",
        CUSTOMER.ljust(8),
    )
    assert results["operations_aggregate"].structured_content["data"][0]["count"] == ops[0][0]
    for name in ("jobs_get_foreign", "customers_get_foreign"):
        assert results[name].is_error and results[name].content[0].text.startswith("no "), results[name].content
    assert not results["jobs_get_own"].is_error
    assert results["filter_foreign"].structured_content["data"] == []
    assert results["describe"].structured_content["resources"]["jobs"]["row_filtered"] is True
    assert set(results["describe"].structured_content["resources"]) == PORTAL_READS
    assert results["write"].is_error and "unknown tool 'jobs_release'" in results["write"].content[0].text


def test_no_tool_reaches_a_field_rest_hides(db: Path, token: TokenFactory) -> None:
    """v1 keeps standard_cost as a field behind costs:read: without the scope no tool names or takes it."""
    text = DEMO_MAPPING_PATH.read_text(encoding="utf-8") + "\nmcp:\n  version: v1\n"
    path = db.parent / "v1-mcp.yaml"
    path.write_text(text, encoding="utf-8")
    mapping = load_mapping(path, _environ(db, db.parent))
    reader = token("stock:read", sub="catalogue-agent")
    with live_server(create_app(mapping)) as live:

        async def steps(client: Client) -> dict[str, Any]:
            tools = await _tools(client)
            return {
                "schemas": json.dumps([t.input_schema for t in tools.values()]),
                "describe": await client.call_tool("describe_resources", {}),
                "fields": await client.call_tool("items_list", {"fields": ["item_number", "standard_cost"]}),
                "filter": await client.call_tool("items_list", {"filters": {"standard_cost": {"gt": 1}}}),
                "sum": await client.call_tool("items_aggregate", {"sum": ["standard_cost"]}),
                "group": await client.call_tool("items_aggregate", {"group_by": ["standard_cost"]}),
                "rows": await client.call_tool("items_list", {"limit": 5}),
            }

        results = run(live.base, reader, steps)
    assert "standard_cost" not in results["schemas"]
    assert "standard_cost" not in json.dumps(results["describe"].structured_content)
    for name in ("fields", "filter", "sum", "group"):
        assert results[name].is_error, name
        assert "unknown field 'standard_cost'" in results[name].content[0].text
    assert all("standard_cost" not in row for row in results["rows"].structured_content["data"])


def test_bad_arguments_are_tool_errors_in_plain_sentences(server: LiveServer, admin_token: str) -> None:
    async def steps(client: Client) -> list[Any]:
        return [
            await client.call_tool("jobs_list", {"filters": "status=RELEASED"}),
            await client.call_tool("jobs_list", {"filters": {"status": {"eq": {"nested": 1}}}}),
            await client.call_tool("jobs_list", {"filters": {"due_date": {"lt": "soon"}}, "limit": 100000}),
            await client.call_tool("jobs_aggregate", {"group_by": ["status:month"]}),
            await client.call_tool("jobs_get", {"key": {}}),
            await client.call_tool("no_such_tool", {}),
        ]

    results = run(server.base, admin_token, steps)
    assert all(r.is_error for r in results)
    texts = [r.content[0].text for r in results]
    assert texts[0] == "filters must be an object of field: value"
    assert texts[1].startswith("status[eq]: expected a single value")
    assert texts[2].startswith("2 parameters are invalid") and "- limit: must be between 1 and 500" in texts[2]
    assert texts[3] == "status is not a date: it cannot be grouped by month"
    assert texts[4] == "key needs job_number"
    assert texts[5].startswith("unknown tool 'no_such_tool' (tools: describe_resources, ")
    assert results[2].structured_content["type"] == "/problems/invalid-parameter"


def test_a_missing_or_forged_token_gets_401_pointing_to_the_metadata(server: LiveServer, mapping: Mapping) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    pointer = f'resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"'
    for extra in (
        {},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Bearer " + "eyJhbGciOiJIUzI1NiJ9.e30.x"},
    ):
        response = httpx.post(f"{server.base}/mcp", json=initialize, headers={**headers, **extra})
        assert response.status_code == 401, response.text
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="bridgehead", ' + pointer + ', error="invalid_token"'), challenge
        assert response.headers["content-type"].startswith("application/problem+json")
    metadata = httpx.get(f"{server.base}/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == f"{server.base}/mcp"
    assert mapping.auth is not None and metadata["authorization_servers"] == [mapping.auth.issuer]
    assert {"jobs:read", "customers:read", "admin"} <= set(metadata["scopes_supported"])
    assert metadata["bearer_methods_supported"] == ["header"]
    root = httpx.get(f"{server.base}/.well-known/oauth-protected-resource").json()
    assert root["resource"] == server.base and root["authorization_servers"] == [mapping.auth.issuer]
    # The SDK's own client fails to connect without a token rather than getting an empty tool list.
    with pytest.raises(BaseException):  # noqa: B017 (the SDK raises its transport's error inside a task group)
        run(server.base, None, _tools)


def test_stdio_server_serves_the_same_tools_for_its_token(mapping: Mapping, db: Path, portal: str) -> None:
    bridgehead = Path(sys.executable).with_name("bridgehead")
    environ = {**_environ(db, db.parent), "BRIDGEHEAD_TOKEN": portal, "PATH": str(bridgehead.parent)}

    async def main() -> tuple[set[str], Any, Any]:
        params = StdioServerParameters(command=str(bridgehead), args=["mcp", "-c", str(DEMO_MAPPING_PATH)], env=environ)
        async with Client(params) as client:
            tools = await _tools(client)
            listed = await client.call_tool("jobs_list", {"limit": 500, "fields": ["job_number", "customer_id"]})
            totals = await client.call_tool("jobs_aggregate", {"group_by": ["customer_id"]})
            return set(tools), listed, totals

    tools, listed, totals = asyncio.run(main())
    assert tools == {"describe_resources", *(f"{r}_{v}" for r in PORTAL_READS for v in ("list", "get", "aggregate"))}
    assert {r["customer_id"] for r in listed.structured_content["data"]} == {CUSTOMER}
    assert {r["job_number"] for r in listed.structured_content["data"]} == _own_jobs(db)
    assert totals.structured_content["data"] == [{"group": {"customer_id": CUSTOMER}, "count": len(_own_jobs(db))}]


def test_stdio_refuses_a_forged_token(db: Path, tmp_path: Path) -> None:
    import subprocess

    bridgehead = Path(sys.executable).with_name("bridgehead")
    environ = {**_environ(db, tmp_path), "BRIDGEHEAD_TOKEN": "not.a.token"}
    done = subprocess.run(
        [str(bridgehead), "mcp", "-c", str(DEMO_MAPPING_PATH)], env=environ, input=b"", capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"the token is refused: the token is malformed" in done.stderr
    assert done.stdout == b""
