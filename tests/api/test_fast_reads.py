"""The fast path (gateway/fast_reads.py) answers exactly what Litestar answers, and does answer the hot reads.

Every generated request goes through one app twice, the fast path installed and then taken out,
and both answers must agree: status, body, every header but ``date`` and ``x-request-id``, the
access-log line (but its id and duration), the request and row metrics, the statements run and the
console's request counts. Requests span the resources' shapes (plain key, composite key, row filters,
a related row filter, an anonymous resource with a scoped field, a deprecated version), keys that exist,
are missing or are odd, the list parameters, cursors, ``If-None-Match``, ``Accept`` and tokens of every
kind, so both the answers the fast path gives and those it hands to Litestar are covered.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import quote, urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from gateway import create_app
from gateway.console import RequestCounter
from gateway.fast_reads import FastReads
from legacy_adapters.mapping import Mapping
from legacy_adapters.mapping.model import CorsConfig, RateLimitConfig
from tests.conftest import TokenFactory

_WATCHED = {
    "bridgehead_http_requests_total",
    "bridgehead_http_request_duration_seconds_count",
    "bridgehead_http_requests_in_progress",
    "bridgehead_rows_served_total",
    "bridgehead_db_statement_duration_seconds_count",
}
_UNCOMPARED_HEADERS = {"date", "x-request-id"}


class _Tally:
    """Stands in for the console's request series: what the counter flushes, kept in memory."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, counts: Counter[tuple[Any, str]]) -> None:
        for (_, status_class), n in counts.items():
            self.counts[status_class] += n


class _Gateway:
    """One app with its fast path in or out, and what a request did to the metrics, the log and the console."""

    def __init__(self, app: Litestar, client: TestClient[Any]) -> None:
        self.app, self.client = app, client
        assert isinstance(app.asgi_handler, FastReads)
        self.fast = app.asgi_handler
        counter = next(h.__self__ for h in app.before_send if isinstance(getattr(h, "__self__", None), RequestCounter))
        self.counter: RequestCounter = counter
        self.tally = _Tally()
        counter.series = self.tally  # type: ignore[assignment]
        self.lines: list[dict[str, Any]] = []

    def line(self, *fields: Any) -> None:
        """Stands for the request line's writer (gateway.logging's, owned there): the fields it is given."""
        names = ("request_id", "method", "path", "route", "status", "ms", "subject", "rows", "interrupted")
        self.lines.append(dict(zip(names, fields, strict=True)))

    def send(self, fast: bool, path: str, headers: dict[str, str]) -> dict[str, Any]:
        self.app.asgi_handler = self.fast if fast else self.fast.app
        try:
            before, answered = _metrics(), self.fast.answered
            self.counter.flush()
            console = Counter(self.tally.counts)
            self.lines.clear()
            response = self.client.get(path, headers=headers)
            self.counter.flush()
            after = _metrics()
        finally:
            self.app.asgi_handler = self.fast
        assert len(self.lines) == 1, self.lines
        line = {k: v for k, v in self.lines[0].items() if k not in ("ms", "request_id")}
        return {
            "status": response.status_code,
            # A problem names the request's id, made afresh for each request without a given one.
            "body": response.content.replace(response.headers["x-request-id"].encode(), b"<request id>"),
            "headers": [(k, v) for k, v in response.headers.multi_items() if k not in _UNCOMPARED_HEADERS],
            "log": line,
            "metrics": {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after.keys() | before.keys()},
            "console": self.tally.counts - console,
            "fast": self.fast.answered - answered,
        }


def _metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name in _WATCHED
    }


@pytest.fixture(scope="module")
def gateway(demo_mapping: Mapping) -> Iterator[_Gateway]:
    app = create_app(demo_mapping, cursor_secret=b"fast-path-parity" * 2)
    with TestClient(app) as client:
        gw = _Gateway(app, client)
        with mock.patch("gateway.request_id.access_line", lambda: gw.line):
            yield gw


@pytest.fixture(scope="module")
def tokens(token: TokenFactory) -> dict[str, str | None]:
    return {
        "none": None,
        "admin": f"Bearer {token('admin', sub='fast-admin')}",
        "jobs reader": f"Bearer {token('jobs:read', sub='fast-reader')}",
        "every customer's jobs": f"Bearer {token('jobs:read:all', 'customers:read:all', sub='fast-all')}",
        "portal C0001": f"Bearer {token('jobs:read', 'customers:read', sub='fast-portal', customer_id='C0001')}",
        "portal, odd claim": f"Bearer {token('jobs:read', sub='fast-odd', customer_id='x' * 40)}",
        "portal, no claim": f"Bearer {token('customers:read', sub='fast-noclaim')}",
        "costs and stock": f"Bearer {token('costs:read', 'stock:read', sub='fast-costs')}",
        "expired": f"Bearer {token('admin', sub='fast-expired', ttl_s=-3600)}",
        "bad signature": f"Bearer {token('admin', sub='fast-forged')[:-4]}AAAA",
        "not a token": "Bearer not-a-token",
        "basic": "Basic YWRtaW46YWRtaW4=",
        "empty bearer": "Bearer ",
    }


@pytest.fixture(scope="module")
def cursors(gateway: _Gateway, tokens: dict[str, str | None]) -> list[str]:
    """Real cursors of a few walks, for the generated lists to continue (or to misuse)."""
    found = []
    for path in ("/v1/jobs?limit=3", "/v1/jobs?limit=3&sort=-due_date", "/v2/jobs?status=RELEASED&limit=2"):
        response = gateway.client.get(path, headers={"Authorization": str(tokens["admin"])})
        assert response.status_code == 200, response.text
        found.append(response.json()["next_cursor"])
    return found


@dataclass(frozen=True)
class _Shape:
    """What makes sense to ask of one resource: most generated requests do, the rest go astray."""

    keys: tuple[str, ...]
    fields: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]
    sorts: tuple[str, ...]
    embeds: tuple[str, ...]


_SHAPES = {
    "jobs": _Shape(
        ("J000001", "J000045", "J000108", "J000017", "J001999", "J999999", "j000001"),
        ("job_number,status", "status,customer_id,due_date", "customer_id"),
        (
            ("status", "released"),
            ("status[in]", "on_hold,planned"),
            ("customer_id", "C0001"),
            ("rush", "true"),
            ("quantity[gt]", "100"),
            ("due_date[lt]", "2026-06-01"),
            ("status", "RELEASED"),
        ),
        ("due_date", "-due_date", "job_number", "due_date,-job_number"),
        ("customer", "operations"),
    ),
    "customers": _Shape(
        ("C0001", "C0042", "C0002", "C9999", "c0001"),
        ("customer_id,name", "email", "company_name"),
        (("active", "true"), ("customer_id", "C0001"), ("name[like]", "A*")),
        ("name", "-customer_id"),
        ("jobs",),
    ),
    "items": _Shape(
        ("BRKT-00001", "BRKT-00011", "brkt-00001", "nothing"),
        ("item_number,price", "standard_cost,item_number", "description"),
        (("active", "true"), ("price[gt]", "10")),
        ("item_number", "-price"),
        ("stock",),
    ),
    "stock": _Shape(
        ("BRKT-00001,W02", "BRKT-00001,W05", "BRKT-00001,W01", "BRKT-00001", "BRKT-00001,W02,X", "a\\,b,W01"),
        ("on_hand,allocated", "warehouse"),
        (("warehouse", "W02"), ("on_hand[gt]", "5")),
        ("warehouse", "-on_hand"),
        ("item",),
    ),
    "operations": _Shape(
        ("J000001,10", "J000001,20", "J000045,10", "J000001,xx", "J000001"),
        ("job_number,sequence,status", "work_center"),
        (("status", "queued"), ("job_number", "J000001"), ("done", "false")),
        ("job_number,sequence", "-sequence"),
        ("job",),
    ),
}
_ODD_KEYS = ("aggregate", "é", "%41", "a;b", "..", " ", "J000001/x", "{key}", "\u00a0", "J0 01")
_ODD_PARAMS = (("bogus", "1"), ("quantity[gt]", "abc"), ("count", "true"), ("offset", "2"), ("offset", "-1"),
               ("fields", ""), ("fields", "bogus"), ("embed", ""), ("embed", "bogus"), ("sort", "bogus"),
               ("limit", "0"), ("limit", "abc"), ("limit", ""), ("limit", "1000"))  # fmt: skip
_ACCEPTS = ("application/json", "*/*", "application/*", "text/html, application/json;q=0.5")
_ODD_ACCEPTS = ("application/json;q=0", "text/html", "application/x-ndjson", "text/csv")
_ETAGS = ("same", "W/same", '"nope", same', "*")
_ODD_ETAGS = ('"nope"', "W/*", "")
_TOKEN_NAMES = ("admin", "jobs reader", "every customer's jobs", "portal C0001", "costs and stock", "none")
_ODD_TOKENS = (
    "portal, odd claim",
    "portal, no claim",
    "expired",
    "bad signature",
    "not a token",
    "basic",
    "empty bearer",
)


_V2_NAMES = {"name": "company_name", "rush": "expedite", "standard_cost": "price"}
_V2_VALUES = {"released": "RELEASED", "on_hold": "ON_HOLD", "planned": "PLANNED"}


def _in_v2(text: str) -> str:
    """A v1 field name or value list as v2 spells it (renamed fields, upper-case statuses)."""
    words = re.split(r"([,\[\]-])", text)
    return "".join(_V2_NAMES.get(w, _V2_VALUES.get(w, w)) for w in words)


_READERS = {
    "jobs": ("admin", "jobs reader", "every customer's jobs", "portal C0001"),
    "customers": ("admin", "every customer's jobs", "portal C0001"),
    "items": ("admin", "none", "costs and stock", "jobs reader"),
    "stock": ("admin", "costs and stock"),
    "operations": ("admin", "jobs reader", "every customer's jobs", "portal C0001"),
}


@st.composite
def _requests(draw: st.DrawFn, cursors: list[str]) -> tuple[str, dict[str, str | None]]:
    """A request: a plausible one (most of them, answered by the fast path) or one astray."""
    plausible = draw(st.sampled_from((True, True, False)))

    def pick(usual: tuple[Any, ...], odd: tuple[Any, ...] = (), absent: bool = False) -> Any:
        options = (*((None,) if absent else ()), *usual, *(() if plausible else odd))
        return draw(st.sampled_from(options))

    version = pick(("v1", "v2"), ("v3",))
    resource = pick(tuple(sorted(_SHAPES)), ("item_costs", "nowhere"))
    shape = _SHAPES.get(resource, _SHAPES["jobs"])
    params: list[tuple[str, str]] = []
    if draw(st.booleans()):  # one row
        path = f"/{version}/{resource}/{pick(shape.keys, _ODD_KEYS)}"
    else:
        path = f"/{version}/{resource}"
        params.extend(draw(st.lists(st.sampled_from(shape.filters), max_size=2, unique_by=lambda f: f[0])))
        if (sort := pick(shape.sorts, absent=True)) is not None:
            params.append(("sort", sort))
        if (limit := pick(("1", "2", "5", "100"), absent=True)) is not None:
            params.append(("limit", limit))
        if draw(st.sampled_from((False, False, True))):
            params.append(("cursor", draw(st.sampled_from([*cursors, "garbage", ""]))))
    if (fields := pick(shape.fields, absent=True)) is not None:
        params.append(("fields", fields))
    if (embed := pick(shape.embeds, absent=True)) is not None:
        params.append(("embed", embed))
    if not plausible and draw(st.booleans()):
        params.append(draw(st.sampled_from(_ODD_PARAMS)))
    if plausible and version == "v2":
        params = [(_in_v2(name), _in_v2(value)) for name, value in params]
    params = draw(st.permutations(params))
    target = quote(path, safe="/,;%") + (f"?{urlencode(params)}" if params else "")
    headers = {
        "authorization": pick(_READERS.get(resource, _TOKEN_NAMES), _ODD_TOKENS),
        "accept": pick(_ACCEPTS, _ODD_ACCEPTS, absent=True),
        "if-none-match": pick(_ETAGS, _ODD_ETAGS, absent=True),
        "x-request-id": pick(("given-id-1",), ("bad id!",), absent=True),
        "origin": pick((), ("https://example.com",), absent=True),
    }
    return target, headers


def _headers(chosen: dict[str, str | None], tokens: dict[str, str | None], etag: str | None) -> dict[str, str]:
    """The request's headers; ``same`` in If-None-Match stands for the row's own ETag (dropped until it is known)."""
    headers = {k: v for k, v in chosen.items() if v is not None and k != "authorization"}
    if (auth := tokens[str(chosen["authorization"])]) is not None:
        headers["authorization"] = auth
    if "same" in headers.get("if-none-match", ""):
        if etag is None:
            del headers["if-none-match"]
        else:
            headers["if-none-match"] = headers["if-none-match"].replace("same", etag)
    return headers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_path_answers_as_litestar_does(
    gateway: _Gateway, tokens: dict[str, str | None], cursors: list[str], data: st.DataObject
) -> None:
    target, chosen = data.draw(_requests(cursors))
    headers = _headers(chosen, tokens, None)
    # A token is verified on the first request that carries it, then known: both states are compared.
    first = gateway.send(True, target, headers)
    if any(k == "etag" for k, _ in first["headers"]) and "same" in str(chosen["if-none-match"]):
        headers = _headers(chosen, tokens, dict(first["headers"])["etag"])
        first = gateway.send(True, target, headers)
    _same_answers(gateway, target, headers)
    # The next page of a walk: its cursor as the previous page issued it.
    for name, value in first["headers"]:
        if name == "link" and value.endswith('; rel="next"'):
            _same_answers(gateway, value[1 : value.index(">")], headers)


def _same_answers(gateway: _Gateway, target: str, headers: dict[str, str]) -> None:
    slow = gateway.send(False, target, headers)
    fast = gateway.send(True, target, headers)
    assert slow["fast"] == 0
    for name in ("status", "body", "headers", "log", "metrics", "console"):
        assert fast[name] == slow[name], f"{name} differs for {target} {headers}"


def test_hot_reads_are_answered_by_the_fast_path(gateway: _Gateway, tokens: dict[str, str | None]) -> None:
    admin = {"authorization": str(tokens["admin"])}
    portal = {"authorization": str(tokens["portal C0001"])}
    gateway.send(True, "/v1/jobs/J000001", admin)  # the token is verified (by Litestar) once
    gateway.send(True, "/v1/jobs/J000045", portal)
    one = gateway.send(True, "/v1/jobs/J000001?fields=job_number,status", admin)
    page = gateway.send(True, "/v2/jobs?status=RELEASED&sort=due_date&limit=5", admin)
    mine = gateway.send(True, "/v1/jobs?limit=100", portal)
    catalogue = gateway.send(True, "/v1/items/BRKT-00001", {})
    assert [r["fast"] for r in (one, page, mine, catalogue)] == [1, 1, 1, 1]
    assert one["status"] == page["status"] == mine["status"] == 200
    assert mine["log"]["rows"] > 0 and all(row["customer_id"] == "C0001" for row in _rows(mine["body"]))
    etag = dict(one["headers"])["etag"]
    unchanged = gateway.send(True, "/v1/jobs/J000001?fields=job_number,status", {**admin, "if-none-match": etag})
    assert (unchanged["status"], unchanged["fast"], unchanged["body"]) == (304, 1, b"")
    # Litestar answers what the fast path is not sure of.
    readiness = gateway.app.state.ctx.readiness
    readiness.checked = False  # as when started during a database outage
    try:
        waiting = gateway.send(True, "/v1/jobs/J000001", admin)
    finally:
        readiness.checked = True
    assert (waiting["status"], waiting["fast"]) == (503, 0)
    for path, headers in [
        ("/v1/jobs/J999999", admin),  # 404
        ("/v1/jobs", {**admin, "accept": "application/x-ndjson"}),  # an export
        ("/v1/jobs/J000001", {"authorization": "Bearer not-a-token"}),  # 401
        ("/v1/jobs/J000001", {}),  # 401: no token
        ("/v1/jobs/aggregate?group_by=status", admin),  # another route
    ]:
        assert gateway.send(True, path, headers)["fast"] == 0, path


def test_embeds_are_answered_by_the_fast_path_in_one_hop(
    gateway: _Gateway, tokens: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page or a row with embeds (a portal's jobs with their operations): the fast path, one executor run."""
    admin = {"authorization": str(tokens["admin"])}
    portal = {"authorization": str(tokens["portal C0001"])}
    gateway.send(True, "/v1/jobs/J000001", admin)  # the tokens are verified (by Litestar) once
    gateway.send(True, "/v1/jobs/J000045", portal)
    executor = gateway.app.state.ctx.executor
    hops = []
    run = executor.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return run(*args, **kwargs)

    monkeypatch.setattr(executor, "run", counted)
    for path, headers in [
        ("/v1/jobs?embed=operations,customer&limit=20", portal),
        ("/v1/jobs?customer_id=C0001&embed=operations&limit=100", admin),
        ("/v1/customers?embed=jobs", portal),
        ("/v1/jobs/J000045?embed=operations,customer", portal),
    ]:
        hops.clear()
        answer = gateway.send(True, path, headers)
        assert (answer["status"], answer["fast"], len(hops)) == (200, 1, 1), path
        body = json.loads(answer["body"])
        rows = body.get("data", [body])
        jobs = [job for row in rows for job in row["jobs"]] if path.startswith("/v1/customers") else rows
        assert jobs and all(job["customer_id"] == "C0001" for job in jobs), path
        for job in jobs:
            assert all(op["job_number"] == job["job_number"] for op in job.get("operations", [])), path
    assert jobs[0]["operations"], "J000045 (the last read) has operations"


def _rows(body: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(body)["data"]
    return rows


def _with_api(mapping: Mapping, **changes: Any) -> Mapping:
    return msgspec.structs.replace(mapping, api=msgspec.structs.replace(mapping.api, **changes))


def test_with_cors_a_request_with_an_origin_is_litestars(demo_mapping: Mapping) -> None:
    app = create_app(_with_api(demo_mapping, cors=CorsConfig(allow_origins=["https://portal.example.com"])))
    fast = app.asgi_handler
    assert isinstance(fast, FastReads)
    with TestClient(app) as client:
        client.get("/v1/items/BRKT-00001")
        answered = fast.answered
        cross = client.get("/v1/items/BRKT-00001", headers={"Origin": "https://portal.example.com"})
        assert cross.headers["access-control-allow-origin"] == "https://portal.example.com"
        assert fast.answered == answered
        same = client.get("/v1/items/BRKT-00001")
        assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
        assert fast.answered == answered + 1


def test_with_rate_limits_the_fast_path_counts_each_request_once(demo_mapping: Mapping, token: TokenFactory) -> None:
    """The fast path stays on with rate limits, counts each request once, and hands a refusal to Litestar."""
    limits = RateLimitConfig(per_subject="5/hour", per_ip="1000/hour")
    app = create_app(_with_api(demo_mapping, rate_limit=limits))
    fast = app.asgi_handler
    assert isinstance(fast, FastReads)
    mine = {"Authorization": f"Bearer {token('items:read', sub='limited')}"}
    other = {"Authorization": f"Bearer {token('items:read', sub='someone-else')}"}
    with TestClient(app) as client:
        first = client.get("/v1/items/BRKT-00001", headers=mine)
        assert first.headers["ratelimit-reset"] == "3600"  # the window starts with this identity's first request
        answers = [
            first,  # Litestar's: the token is new to the verifier's cache
            client.get("/v1/items?limit=2", headers=mine),  # fast path
            client.get("/v1/items/NO-SUCH-ITEM", headers=mine),  # fast path, then Litestar's 404: counted once
            client.get("/v1/items?limit=1", headers={**mine, "Accept": "application/x-ndjson"}),  # Litestar only
            client.get("/v1/items/BRKT-00001", headers=mine),
        ]
        refused = client.get("/v1/items/BRKT-00001", headers=mine)
        elsewhere = client.get("/v1/items/BRKT-00001", headers=other)
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 200]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0"]
    assert all(a.headers["ratelimit-limit"] == "5" for a in answers)  # the tighter of the two limits
    assert fast.answered == 2  # the list and the last get: a token's first request is verified by Litestar
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("rate-limited") and "per token identity" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["ratelimit-remaining"] == "0"
    assert elsewhere.status_code == 200 and elsewhere.headers["ratelimit-remaining"] == "4"
