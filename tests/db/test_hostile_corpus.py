"""The hostile-input corpus (tests/hostile/corpus.yaml) against the demo app on SQLite and PostgreSQL.

For every request in the corpus: no 5xx, no traceback, problem+json on every
4xx, a small body, a bounded time, and the status class the corpus expects.
Failures are collected and reported together, so one run shows every hole.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from db_backends import mapping_for, prepared_writes_url, restore_written_tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from gateway import create_app

CORPUS = Path(__file__).parents[1] / "hostile" / "corpus.yaml"
MAX_PROBLEM_BYTES = 16_384
MAX_BODY_BYTES = 262_144
MAX_SECONDS = 5.0
LEAKS = ("Traceback", "SELECT ", "JOBMAST", "sqlalchemy", "pyodbc", "psycopg")
HOSTILE_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql-odbc", id="postgresql-odbc", marks=pytest.mark.odbc),
]


@dataclass
class Case:
    name: str
    method: str = "GET"
    path: str = "/"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    token: str = "admin"
    expect: str = "4xx"


def _generated(text: str) -> str | bytes:
    """Expand a generator marker (``{long:60000}``, ``{nested:1000}``, …) into the value it names."""
    match = re.fullmatch(r"\{(\w+)(?::(\d+))?\}", text)
    if not match:
        return text.replace("{long:60000}", "x" * 60_000)
    kind, n = match.group(1), int(match.group(2) or 0)
    makers: dict[str, Callable[[], str | bytes]] = {
        "long": lambda: "x" * n,
        "nested": lambda: "[" * n + "]" * n,
        "nested_objects": lambda: '{"a":' * n + "1" + "}" * n,
        "bulk": lambda: json.dumps([{"job_number": f"J{i}"} for i in range(n)]),
        "in_list": lambda: ",".join(f"J{i}" for i in range(n)),
        "invalid_utf8": lambda: b'{"notes": "\xff\xfe"}',
    }
    return makers[kind]() if kind in makers else text


def _case(raw: dict[str, Any], substitute: Callable[[str], str] = lambda s: s) -> Case:
    def value(text: Any) -> Any:
        return _generated(substitute(text)) if isinstance(text, str) else text

    def deep(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {substitute(k): deep(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [deep(v) for v in obj]
        return substitute(obj) if isinstance(obj, str) else obj

    query_spec = raw.get("query", [])
    if isinstance(query_spec, str):  # {unknown_parameters:N}
        count = int(re.fullmatch(r"\{unknown_parameters:(\d+)\}", query_spec).group(1))  # type: ignore[union-attr]
        query = [(f"{i:x}", "") for i in range(count)]
    else:
        query = [(str(value(k)), str(value(v))) for k, v in query_spec]
    headers = {k: str(value(v)) for k, v in raw.get("headers", {}).items()}
    body: bytes | None = None
    if "json" in raw:
        body = json.dumps(deep(raw["json"])).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "raw" in raw:
        content = value(raw["raw"])
        body = content if isinstance(content, bytes) else content.encode()
        headers.setdefault("Content-Type", "application/json")
    path = str(value(raw["path"]))
    return Case(
        name=raw["name"],
        method=raw.get("method", "GET"),
        path=path,
        query=query,
        headers=headers,
        body=body,
        token=raw.get("token", "admin"),
        expect=str(raw.get("expect", "4xx")),
    )


def load_corpus() -> list[Case]:
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    cases = [_case(raw) for raw in data["cases"]]
    for template in data["templates"]:
        for payload in data["payloads"]:
            payload = str(payload)
            if template.get("printable") and not all(0x20 <= ord(c) < 0x7F for c in payload):
                continue  # cannot travel in a header at all; the client library refuses it

            def substitute(text: str, payload: str = payload) -> str:
                return text.replace("{payload}", payload)

            case = _case(template, substitute)
            if "{payload}" in template["path"]:  # a path segment is percent-encoded by whoever builds the URL
                case.path = template["path"].replace("{payload}", urllib.parse.quote(payload, safe=","))
            case.name = f"{template['name']}: {payload[:40]!r}"
            cases.append(case)
    return cases


def _status_ok(status: int, expect: str) -> bool:
    allowed = expect.split("|")
    return any(status == int(a) if a.isdigit() else str(status)[0] == a[0] for a in allowed)


def check(client: TestClient[Any], case: Case, tokens: dict[str, str]) -> str | None:
    """What is wrong with the answer to ``case``; None when it is fine."""
    headers = dict(case.headers)
    if case.token != "none":
        headers.setdefault("Authorization", f"Bearer {tokens[case.token]}")
    url = case.path
    if case.query:
        url += "?" + urllib.parse.urlencode(case.query, quote_via=urllib.parse.quote)
    started = time.monotonic()
    response = client.request(case.method, url, headers=headers, content=case.body)
    elapsed = time.monotonic() - started
    status, content = response.status_code, response.content
    problems = []
    if status >= 500:
        problems.append(f"answered {status}")
    if not _status_ok(status, case.expect):
        problems.append(f"answered {status}, expected {case.expect}")
    if elapsed > MAX_SECONDS:
        problems.append(f"took {elapsed:.1f}s")
    if status >= 400:
        if not response.headers.get("content-type", "").startswith("application/problem+json"):
            problems.append(f"{status} is not problem+json")
        elif not {"type", "title", "status", "detail"} <= set(response.json()):
            problems.append("problem lacks type/title/status/detail")
        if len(content) > MAX_PROBLEM_BYTES:
            problems.append(f"problem of {len(content)} bytes")
        # The caller's own words may come back quoted ("unknown field 'SELECT …'"); anything else may not.
        sent = " ".join([urllib.parse.unquote(url), *headers.values(), (case.body or b"").decode("utf-8", "replace")])
        leaked = [w for w in LEAKS if w in response.text and w not in sent]
        if leaked:
            problems.append(f"leaks {leaked}")
    elif len(content) > MAX_BODY_BYTES:
        problems.append(f"body of {len(content)} bytes")
    if not problems:
        return None
    return f"{case.method} {url[:120]} ({case.name}): {'; '.join(problems)}: {response.text[:200]}"


@pytest.fixture(scope="module", params=HOSTILE_BACKENDS)
def hostile_client(
    request: pytest.FixtureRequest, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient[Any]]:
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        copy = tmp / "demo.db"
        shutil.copyfile(demo_db_path, copy)
        url = f"sqlite:///{copy}"
    else:
        url = prepared_writes_url(request.param, demo_db_path, tmp_path_factory)
    mapping = mapping_for(url, tmp)
    with TestClient(create_app(mapping)) as client:
        yield client
    if request.param != "sqlite":  # the corpus PATCHes J000002: put the written tables back
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                restore_written_tables(conn)
        finally:
            engine.dispose()


def test_corpus_covers_every_reported_case() -> None:
    names = {c.name for c in load_corpus()}
    assert len(names) > 1500
    for reported in ("huge exponent anonymous", "offset past any table", "audit since garbage", "bulk past max_bulk"):
        assert reported in names


def test_no_hostile_request_breaks_the_gateway(hostile_client: TestClient[Any], token: Callable[..., str]) -> None:
    tokens = {
        "admin": token("admin", sub="hostile-admin"),
        "portal": token("jobs:read", "customers:read", sub="portal", customer_id="C0001"),
    }
    failures = [f for f in (check(hostile_client, case, tokens) for case in load_corpus()) if f]
    assert not failures, f"{len(failures)} hostile requests broke a rule:\n" + "\n".join(failures[:60])


NEW_JOB = {
    "customer_id": "C0001",
    "item_number": "BRKT-00001",
    "status": "on_hold",
    "ordered_at": "2026-11-26T10:00:00Z",
    "rush": False,
    "quantity": 1,
    "priority": False,
}
# Any key but those no URL path can carry: '/' (a router sees %2F as a slash) and '.'/'..' (dot
# segments, which every client removes, encoded or not).
key_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/"), min_size=1, max_size=10).filter(
    lambda key: key not in (".", "..")
)


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=key_text)
def test_any_unicode_key_is_created_and_found_again_or_refused(
    hostile_client: TestClient[Any], token: Callable[..., str], key: str
) -> None:
    """Non-Latin-1 keys (J€SEC1) were inserted, then the Location header failed: a 500 after the commit."""
    headers = {"Authorization": f"Bearer {token('admin', sub='unicode-keys')}"}
    response = hostile_client.post("/v1/jobs", json={**NEW_JOB, "job_number": key}, headers=headers)
    assert response.status_code in (201, 409, 422), response.text
    if response.status_code != 201:
        return
    location = response.headers["location"]
    assert location.isascii() and location.startswith("/v1/jobs/")
    again = hostile_client.get(location, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["job_number"] == key
