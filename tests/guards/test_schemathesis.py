"""Standing guard: schemathesis drives every committed OpenAPI document against the demo gateway.

For each document in ``openapi/`` and each operation in it, schemathesis generates
requests from the document itself (examples, boundary coverage, then bounded random
fuzzing, valid and invalid inputs) and sends them, with an admin token and with a
customer-scoped portal token, to a real uvicorn serving the demo mapping on 127.0.0.1.
Writes run too (POST, PATCH, DELETE, actions), on a private copy of the demo database.

Every response must be:
- not a 5xx (``not_a_server_error``);
- a status code the operation documents (``status_code_conformance``);
- of a documented content type (``content_type_conformance``);
- valid against its documented schema (``response_schema_conformance``);
- with documented headers well-formed (``response_headers_conformance``);
- for a GET sent with each documented Accept (and one never offered): the export in its
  documented media type, every NDJSON line a valid row.

A 5xx is explained by the exception the gateway logged for its request id (printed at the
end). A 5xx that another branch of issue 11 fixes is listed in ``KNOWN_ELSEWHERE`` with its
owner: reported with the request that shows it instead of failing, until that branch lands.

So the document is a contract the server keeps, and a change that breaks either side
fails here. The budget is fixed (seed, derandomized, bounded examples) so CI stays fast;
the case count and duration are printed at the end of the run.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
import uvicorn
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import create_app
from gateway.cli import _first_customer
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import Mapping, load_mapping
from legacy_adapters.query.resource import bind_version
from tests.conftest import TokenFactory, demo_environ

OPENAPI_DIR = Path(__file__).resolve().parents[2] / "openapi"
DOCUMENTS = sorted(OPENAPI_DIR.glob("*.json"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _config(*, coverage: bool, repeated: list[str]) -> schemathesis.Config:
    """A fixed, derandomized budget: the same cases on every run, a few minutes in all on two cores.

    ``repeated``: labels of operations an earlier document already guards with the same contract
    (see ``repeated_contracts``); they get ``REPEATED_BUDGET`` instead of the full one.
    """
    operations: list[dict[str, Any]] = []
    if repeated:
        operations.append({"include-name": repeated, **REPEATED_BUDGET})
    # Writes are few and cheap, and reach real rows only through the hooks below: a larger budget.
    writes = {"include-method": ["POST", "PATCH", "DELETE"], "generation": {"mode": "all", "max-examples": 40}}
    operations.append(writes)
    return schemathesis.Config.from_dict(
        {
            "seed": 1998,
            "generation": {"mode": "all", "max-examples": 12, "deterministic": True, "database": "none"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": coverage},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "operations": operations,  # the first entry that names an option decides it
        }
    )


REPEATED_BUDGET: dict[str, Any] = {
    "phases": {"coverage": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": 12},
}
"""An operation an earlier document guards with the same contract (v2's /v2/stock is v1's /v1/stock,
both documents list the admin API) is served by the same code: its boundary coverage, generated from
the definition alone, would send the earlier document's requests again, and that phase was most of the
guard's cases and collection time. It keeps its examples and fuzzing (12 cases per caller, the portal's
budget, writes included), so every operation of every document is still sent and checked."""


def _inline(node: Any, components: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (a cycle stays a ``$ref``)."""
    if isinstance(node, list):
        return [_inline(item, components, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/") and ref not in seen:
        kind, _, name = ref.removeprefix("#/components/").partition("/")
        return _inline(components[kind][name], components, (*seen, ref))
    return {key: _inline(value, components, seen) for key, value in node.items()}


def _contracts(document: dict[str, Any]) -> dict[str, str]:
    """Label (``GET /v2/stock``) -> the operation's contract with the version taken out of its path and text.

    The contract is everything schemathesis generates from and checks against: parameters, bodies,
    responses, headers and schemas, with references inlined. ``deprecated`` is left out (a flag on the
    older version's operations that changes neither a request nor what an answer must be).
    """
    version = re.compile(r"/v\d+(?=/)")
    result = {}
    for path, operations in document["paths"].items():
        shared = path if len(path.split("/")) < 2 else version.sub("/{version}", path, count=1)
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "patch", "delete", "head", "options", "trace"}:
                continue
            body = {k: v for k, v in _inline(operation, document.get("components", {})).items() if k != "deprecated"}
            text = json.dumps(body, sort_keys=True)
            result[f"{method.upper()} {path}"] = f"{method} {shared} " + version.sub("/{version}", text)
    return result


def repeated_contracts(documents: list[Path]) -> dict[Path, list[str]]:
    """Per document, the labels of its operations whose contract an earlier document (by name) already has."""
    seen: set[str] = set()
    result = {}
    for path in documents:
        contracts = _contracts(json.loads(path.read_text()))
        result[path] = sorted(label for label, contract in contracts.items() if contract in seen)
        seen.update(contracts.values())
    return result


REPEATED = repeated_contracts(DOCUMENTS)


@dataclass(frozen=True)
class KnownFailure:
    """A 5xx of issue 11 that another branch fixes: listed at the end of the run instead of failing it.

    Matched on the exception the gateway logged (type, message, frames), never on the status
    alone. Delete the entry once that branch is merged: the guard is then strict for it again.
    """

    owner: str
    what: str
    cause: re.Pattern[str]


KNOWN_ELSEWHERE: list[KnownFailure] = []  # issue 11's items 3 and 7 are fixed: the guard is strict


def _server_error_cause(response: Any, stats: Any) -> str:
    request_id = (response.headers.get("x-request-id") or [""])[0]
    return str(stats.server_errors.pop(request_id, "(no exception logged)"))


# Keys of rows that exist, per collection path (``/v1/jobs``), read through the API when the gateway starts:
# half the generated keys are replaced by one, so GET, PATCH, DELETE and actions reach real rows, not only 404.
REAL_KEYS: dict[str, list[str]] = {}


def _load(path: Path, config: schemathesis.Config) -> Any:
    schema = schemathesis.openapi.from_path(path, config=config)
    schema.location = str(path.relative_to(OPENAPI_DIR.parent))
    document = json.loads(path.read_text())
    scales = _scales(document)

    @schema.hook
    def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
        collection = context.operation.path.split("/{key}")[0] if context.operation else ""
        keys = REAL_KEYS.get(collection)
        if not path_parameters or "key" not in path_parameters or not keys:
            return st.just(path_parameters)
        real = st.sampled_from(keys).map(lambda key: {**path_parameters, "key": key})
        return st.one_of(st.just(path_parameters), real)

    @schema.hook
    def map_body(context: schemathesis.HookContext, body: Any) -> Any:
        # Decimals are documented with x-scale (not multipleOf, see gateway/openapi.py): round generated
        # numbers to it, so valid bodies are written and their 201/200 answers are checked, not only 422.
        tag = (context.operation.tags or [""])[0] if context.operation else ""
        return _round_to_scale(body, scales.get(tag, {}))

    return schema


def _scales(document: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Resource (tag) -> field -> its ``x-scale``, from the row schemas of the document."""
    result: dict[str, dict[str, int]] = {}
    for operations in document["paths"].values():
        for operation in operations.values():
            tag = operation["tags"][0]
            row = document["components"]["schemas"].get("".join(p.capitalize() for p in tag.split("_")), {})
            fields = row.get("properties", {})
            result[tag] = {n: f["x-scale"] for n, f in fields.items() if isinstance(f, dict) and "x-scale" in f}
    return result


def _round_to_scale(body: Any, scales: dict[str, int]) -> Any:
    if isinstance(body, list):
        return [_round_to_scale(item, scales) for item in body]
    if not isinstance(body, dict):
        return body
    rounded = dict(body)
    for name, scale in scales.items():
        value = rounded.get(name)
        if isinstance(value, float) and math.isfinite(value):
            rounded[name] = float(round(Decimal(repr(value)), scale)) if abs(value) < 1e15 else value
    return rounded


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def gateway_url(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory, token: TokenFactory) -> Iterator[str]:
    """A real uvicorn on 127.0.0.1 serving the demo mapping over a disposable copy of the demo database."""
    db = tmp_path_factory.mktemp("schemathesis") / "demo.db"
    shutil.copyfile(demo_db_path, db)
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(db))
    app = create_app(mapping)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="schemathesis-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the demo gateway did not start for the schemathesis guard", pytrace=False)
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    _read_real_keys(url, mapping, token)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def _read_real_keys(url: str, mapping: Mapping, token: TokenFactory) -> None:
    headers = {"Authorization": f"Bearer {token('admin', sub='admin')}"}
    for version in mapping.versions:
        for name, resource in bind_version(mapping, version).items():
            page = httpx.get(f"{url}/{version}/{name}?limit=40", headers=headers, timeout=30)
            assert page.status_code == 200, page.text
            key = [f.name for f in resource.key]
            REAL_KEYS[f"/{version}/{name}"] = [
                ",".join(str(row[n]).replace("\\", "\\\\").replace(",", "\\,") for n in key)
                if len(key) > 1
                else str(row[key[0]])
                for row in page.json()["data"]
            ]


@pytest.fixture(scope="module")
def callers(demo_db_path: Path, token: TokenFactory) -> dict[str, dict[str, str]]:
    """The two callers: an admin, and a portal token bound to one customer like the demo's."""
    portal = token("jobs:read", "customers:read", sub="portal", customer_id=_first_customer(demo_db_path))
    return {
        "admin": {"Authorization": f"Bearer {token('admin', sub='admin')}"},
        "portal": {"Authorization": f"Bearer {portal}"},
    }


def _accept(case: schemathesis.Case) -> str | None:
    """For a GET, one of the documented media types (or none, or one never offered), fixed per case.

    schemathesis sends no Accept of its own, so without this the NDJSON and CSV exports and the 406
    answers would never be checked. Chosen from the case's own values, so a replay sends the same.
    """
    if case.method.upper() != "GET":
        return None
    offered = list(case.operation.definition.raw["responses"]["200"].get("content", {}))
    choices = [None, *offered, "image/png", "text/*;q=0.5, application/json;q=0.9"]
    seed = repr((sorted((case.query or {}).items()), sorted((case.path_parameters or {}).items())))
    return choices[zlib.crc32(seed.encode()) % len(choices)]


def _check_ndjson(case: schemathesis.Case, response: Any) -> None:
    """Every NDJSON line is a row of the documented schema (schemathesis validates JSON bodies only)."""
    content = case.operation.definition.raw["responses"]["200"]["content"]["application/x-ndjson"]
    check = jsonschema.Draft202012Validator(
        {**content["schema"], "components": case.operation.schema.raw_schema["components"]}
    )
    # Split on b"\n" only: a row's text may hold U+2028, U+0085 or \x1c raw (valid JSON), which
    # str.splitlines() would also break at.
    lines = [line for line in response.content.split(b"\n") if line]
    for number, line in enumerate(lines, 1):
        errors = [e.message for e in check.iter_errors(json.loads(line))]
        assert not errors, f"NDJSON line {number} of {case.path} does not match its schema: {errors[:3]}"


def _guard(case: schemathesis.Case, base_url: str, who: str, headers: dict[str, str], stats: Any) -> None:
    started = time.monotonic()
    stats.listed.update(f"{k.owner}: {k.what}" for k in KNOWN_ELSEWHERE)
    accept = _accept(case)
    headers = {**headers, "Accept": accept} if accept else headers
    if isinstance((case.headers or {}).get("Idempotency-Key"), str) and case.headers["Idempotency-Key"]:
        # Generated keys repeat ("0"): a fresh suffix lets each body be written, not refused as a reused key.
        case.headers["Idempotency-Key"] = f"{case.headers['Idempotency-Key'][:200]}-{stats.cases}"
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    media_type = (response.headers.get("content-type") or [""])[0].partition(";")[0]
    export = {"application/x-ndjson": "/ndjson", "text/csv": "/csv"}.get(media_type, "")
    stats.record_case(
        f"{case.method.upper()} {case.path}", f"{response.status_code}{export}", time.monotonic() - started
    )
    cause = _server_error_cause(response, stats) if response.status_code >= 500 else None
    if cause is not None:
        curl = case.as_curl_command(headers={**headers, "Authorization": f"Bearer ${who.upper()}"})
        known = next((k for k in KNOWN_ELSEWHERE if k.cause.search(cause)), None)
        if known is not None:
            stats.record_known(f"{known.owner}: {known.what}", curl)
            return
        stats.record_cause(cause, curl)  # printed at the end of the run: the failure report cannot carry it
    case.validate_response(response, checks=CHECKS, headers=headers)
    if response.status_code == 200 and media_type == "application/x-ndjson":
        _check_ndjson(case, response)


# Boundary coverage (every parameter's edge and wrong-type values, most of the cases) runs once, as the
# admin who may see everything; the portal token gets examples and fuzzing, which is what its row filter needs.
CALLERS = {"admin": True, "portal": False}


def _test_for(path: Path, who: str) -> Callable[..., None]:
    schema = _load(path, _config(coverage=CALLERS[who], repeated=REPEATED[path]))

    @schema.parametrize()
    def test_operation(
        case: schemathesis.Case, gateway_url: str, callers: dict[str, dict[str, str]], guard_stats: Any
    ) -> None:
        _guard(case, gateway_url, who, callers[who], guard_stats)

    return test_operation  # type: ignore[no-any-return]


# One test function per committed document and caller (test_v1_admin, test_v1_portal, ...), each
# parametrized per operation.
for _path in DOCUMENTS:
    for _who in CALLERS:
        globals()[f"test_{_path.stem}_{_who}"] = _test_for(_path, _who)


def test_every_committed_document_is_guarded() -> None:
    """A new document in openapi/ is guarded without editing this file, and an empty folder is a failure."""
    assert DOCUMENTS, "no OpenAPI documents in openapi/"
    for path in DOCUMENTS:
        assert json.loads(path.read_text())["openapi"].startswith("3.1"), path
        assert all(f"test_{path.stem}_{who}" in globals() for who in CALLERS)
