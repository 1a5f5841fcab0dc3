"""Bearer tokens against the demo gateway: HS256 verification, scopes, row filters, hidden fields.

Every token here is a real HS256 JWT (the ``token`` fixture, or hand-built for
the broken ones). The portal token belongs to customer C0001; what it may see is
checked against the demo database with plain SQL, so a leak of another
customer's row fails a test rather than hiding in a count.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from gateway.cli import main

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from litestar.testing import TestClient

    from legacy_adapters.mapping import Mapping

OWN = "C0001"
OTHER = "C0002"
PROBLEM_JSON = "application/problem+json"
INJECTION = "C0001' OR '1'='1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes] | None) -> str:
    """A JWT built byte by byte, for the tokens pyjwt refuses to make (alg none, odd headers)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def demo_claims(mapping: Mapping, **changes: Any) -> dict[str, Any]:
    """The claims of a good 10-minute token for the demo gateway, with ``changes`` applied."""
    assert mapping.auth is not None
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "tester",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": mapping.auth.issuer,
        "aud": mapping.auth.audience,
        "scope": "jobs:read jobs:read:all",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def hs256(mapping: Mapping, claims: dict[str, Any], secret: str | None = None) -> str:
    assert mapping.auth is not None
    return jwt.encode(claims, secret or mapping.auth.hs256_secret, algorithm="HS256")  # type: ignore[arg-type]


def assert_invalid_token(response: Any, detail_contains: str) -> dict[str, Any]:
    """401, problem+json, and a WWW-Authenticate challenge carrying the same reason (RFC 6750 3)."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == "/problems/invalid-token"
    assert body["status"] == 401
    assert detail_contains in body["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{body["detail"]}"' in challenge
    return body


def assert_insufficient_scope(response: Any, scope: str) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == "/problems/insufficient-scope"
    assert scope in body["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge
    return body


# -- the demo database, read directly ---------------------------------------------------------


@pytest.fixture(scope="module")
def db(demo_db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{demo_db_path}?mode=ro", uri=True, check_same_thread=False)


def jobs_of(db: sqlite3.Connection, customer: str) -> set[str]:
    rows = db.execute(
        "SELECT TRIM(JOBNO) FROM JOBMAST WHERE DELFLG <> 'Y' AND TRIM(CUSTNO) = ?", (customer,)
    ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def own_jobs(db: sqlite3.Connection) -> set[str]:
    jobs = jobs_of(db, OWN)
    assert len(jobs) > 5, "the demo database should give C0001 several jobs"
    return jobs


@pytest.fixture(scope="module")
def other_job(db: sqlite3.Connection) -> str:
    return min(jobs_of(db, OTHER))


@pytest.fixture(scope="module")
def portal(token: Callable[..., str]) -> dict[str, str]:
    """A customer-portal token: jobs and customers, but only customer C0001's."""
    return bearer(token("jobs:read", "customers:read", sub="portal", customer_id=OWN))


# -- verification -----------------------------------------------------------------------------


def test_a_valid_token_reads_jobs(client: TestClient[Any], demo_mapping: Mapping) -> None:
    response = client.get("/v1/jobs?limit=5", headers=bearer(hs256(demo_mapping, demo_claims(demo_mapping))))
    assert response.status_code == 200
    assert len(response.json()["data"]) == 5


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/J000001", "/v1/customers", "/v1/stock", "/v1/operations"])
def test_no_token_is_401_on_every_protected_resource(client: TestClient[Any], path: str) -> None:
    body = assert_invalid_token(client.get(path), "bearer token is required")
    assert body["instance"] == path


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc.def.ghi", "bearer-abc"]
)
def test_a_malformed_authorization_header_is_401(client: TestClient[Any], authorization: str) -> None:
    response = client.get("/v1/jobs", headers={"Authorization": authorization})
    assert_invalid_token(response, "Bearer <token>")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9", "....", "\xe9.\xe9.\xe9"])
def test_a_token_that_is_not_a_jwt_is_401(client: TestClient[Any], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}".encode("latin-1")}
    assert_invalid_token(client.get("/v1/jobs", headers=headers), "malformed")


def test_the_bearer_scheme_is_case_insensitive(client: TestClient[Any], demo_mapping: Mapping) -> None:
    token = hs256(demo_mapping, demo_claims(demo_mapping))
    assert client.get("/v1/jobs?limit=1", headers={"Authorization": f"bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -120}, "expired"),
        ({"nbf": 120}, "not valid yet"),
        ({"iss": "https://evil.example"}, "untrusted issuer"),
        ({"iss": None}, "lacks a required claim"),
        ({"aud": "another-api"}, "not meant for this API"),
        ({"aud": None}, "lacks a required claim"),
        ({"exp": None}, "lacks a required claim"),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "no-issuer", "wrong-audience", "no-audience", "no-exp"],
)
def test_claims_outside_the_rules_are_401(
    client: TestClient[Any], demo_mapping: Mapping, changes: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    timed = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in changes.items()}
    token = hs256(demo_mapping, demo_claims(demo_mapping, **timed))
    assert_invalid_token(client.get("/v1/jobs", headers=bearer(token)), reason)


def test_clock_skew_within_the_leeway_is_tolerated(client: TestClient[Any], demo_mapping: Mapping) -> None:
    assert demo_mapping.auth is not None and demo_mapping.auth.leeway_s == 30
    now = int(time.time())
    just_expired = hs256(demo_mapping, demo_claims(demo_mapping, exp=now - 10))
    nearly_valid = hs256(demo_mapping, demo_claims(demo_mapping, nbf=now + 10, iat=now + 10))
    assert client.get("/v1/jobs?limit=1", headers=bearer(just_expired)).status_code == 200
    assert client.get("/v1/jobs?limit=1", headers=bearer(nearly_valid)).status_code == 200


def test_a_token_signed_with_another_secret_is_401(client: TestClient[Any], demo_mapping: Mapping) -> None:
    token = hs256(demo_mapping, demo_claims(demo_mapping), secret="another-secret-that-is-also-32-bytes-long")
    assert_invalid_token(client.get("/v1/jobs", headers=bearer(token)), "signature does not verify")


def test_a_tampered_payload_is_401(client: TestClient[Any], demo_mapping: Mapping, token: Any) -> None:
    original = token("jobs:read", customer_id=OWN)
    header, payload, signature = original.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["customer_id"] == OWN
    claims["customer_id"] = OTHER
    claims["scope"] = "admin"
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    assert_invalid_token(client.get("/v1/jobs", headers=bearer(forged)), "signature does not verify")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_401(client: TestClient[Any], demo_mapping: Mapping, alg: str) -> None:
    claims = demo_claims(demo_mapping, scope="admin")
    for signature in (None, lambda _: b"x"):
        token = hand_made({"alg": alg, "typ": "JWT"}, claims, signature)
        assert_invalid_token(client.get("/v1/jobs", headers=bearer(token)), "algorithm")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS512", "PS256"])
def test_an_algorithm_the_gateway_does_not_trust_is_401(
    client: TestClient[Any], demo_mapping: Mapping, alg: str
) -> None:
    # The demo trusts HS256 only (no JWKS): an asymmetric alg must not even be tried.
    assert demo_mapping.auth is not None
    secret = demo_mapping.auth.hs256_secret.encode()  # type: ignore[union-attr]
    token = hand_made(
        {"alg": alg, "typ": "JWT", "kid": "k1"},
        demo_claims(demo_mapping),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    assert_invalid_token(client.get("/v1/jobs", headers=bearer(token)), "algorithm")


@pytest.mark.parametrize(
    "header",
    [
        {"alg": 'HS256"; error="none'},
        {"alg": "RS256\u2603"},
        {"alg": ["HS256"]},
        {"alg": {"x": 1}},
        {"typ": "JWT"},
        {"alg": "x" * 500},
    ],
    ids=["quote", "non-latin-1", "list", "object", "missing", "long"],
)
def test_a_hostile_header_is_a_clean_401(
    client: TestClient[Any], demo_mapping: Mapping, header: dict[str, Any]
) -> None:
    """Whatever the header holds, the answer is a 401 with a well-formed challenge, never a 500."""
    token = hand_made(header, demo_claims(demo_mapping), lambda _: b"sig")
    response = client.get("/v1/jobs", headers=bearer(token))
    assert_invalid_token(response, "algorithm")
    challenge = response.headers["www-authenticate"]
    # RFC 6750 3: error_description holds no '"' or '\\' and is printable ASCII.
    description = challenge.split('error_description="', 1)[1]
    assert description.endswith('"')
    assert '"' not in description[:-1] and "\\" not in description
    assert description.isascii() and description.isprintable()
    assert len(challenge) < 300


def test_a_bad_token_on_an_anonymous_resource_is_still_401(client: TestClient[Any], demo_mapping: Mapping) -> None:
    """A broken token is refused, not quietly treated as no token (the caller should learn it is broken)."""
    expired = hs256(demo_mapping, demo_claims(demo_mapping, exp=int(time.time()) - 3600))
    assert client.get("/v1/items?limit=1").status_code == 200
    assert_invalid_token(client.get("/v1/items?limit=1", headers=bearer(expired)), "expired")


# -- scopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/v1/jobs", "jobs:read"),
        ("/v1/jobs/J000001", "jobs:read"),
        ("/v1/stock", "stock:read"),
        ("/v1/customers", "customers:read"),
        ("/v1/operations", "jobs:read"),
    ],
)
def test_a_token_without_the_read_scope_is_403_naming_it(
    client: TestClient[Any], token: Any, path: str, scope: str
) -> None:
    wrong = token("items:read", "jobs:write", "stock:read:all", customer_id=OWN)
    assert_insufficient_scope(client.get(path, headers=bearer(wrong)), scope)


def test_the_read_scope_opens_the_resource(client: TestClient[Any], token: Any) -> None:
    response = client.get("/v1/stock?limit=3", headers=bearer(token("stock:read")))
    assert response.status_code == 200
    assert len(response.json()["data"]) == 3


def test_scopes_may_come_as_an_scp_list(client: TestClient[Any], token: Any) -> None:
    # No "scope" claim at all: Azure AD / Okta style.
    scp = bearer(token(scp=["stock:read"]))
    assert client.get("/v1/stock?limit=1", headers=scp).status_code == 200
    assert_insufficient_scope(client.get("/v1/jobs", headers=scp), "jobs:read")


def test_admin_implies_every_scope(client: TestClient[Any], admin: dict[str, str]) -> None:
    for path in ("/v1/jobs", "/v1/stock", "/v1/customers", "/v1/operations", "/v1/items"):
        assert client.get(f"{path}?limit=1", headers=admin).status_code == 200, path


def test_embedding_needs_the_scope_of_the_embedded_resource(client: TestClient[Any], token: Any) -> None:
    only_customers = bearer(token("customers:read", customer_id=OWN))
    assert client.get("/v1/customers?limit=1", headers=only_customers).status_code == 200
    body = assert_insufficient_scope(
        client.get("/v1/customers?limit=1&embed=jobs", headers=only_customers), "jobs:read"
    )
    assert "embed=jobs" in body["detail"]
    assert_insufficient_scope(client.get(f"/v1/customers/{OWN}?embed=jobs", headers=only_customers), "jobs:read")


# -- row filters ------------------------------------------------------------------------------


def test_portal_reads_its_own_job(client: TestClient[Any], portal: dict[str, str], own_jobs: set[str]) -> None:
    job = min(own_jobs)
    response = client.get(f"/v1/jobs/{job}", headers=portal)
    assert response.status_code == 200
    assert response.json()["customer_id"] == OWN


def test_another_customers_job_is_404_not_403(
    client: TestClient[Any], portal: dict[str, str], admin: dict[str, str], other_job: str
) -> None:
    assert client.get(f"/v1/jobs/{other_job}", headers=admin).status_code == 200
    response = client.get(f"/v1/jobs/{other_job}", headers=portal)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    # Indistinguishable from a key that does not exist at all.
    missing = client.get("/v1/jobs/J999999", headers=portal)
    assert missing.status_code == 404
    assert response.json()["title"] == missing.json()["title"]
    assert client.get(f"/v1/jobs/{other_job}?embed=operations", headers=portal).status_code == 404


def test_portal_lists_only_its_own_jobs(client: TestClient[Any], portal: dict[str, str], own_jobs: set[str]) -> None:
    response = client.get("/v1/jobs?limit=500&count=exact", headers=portal)
    assert response.status_code == 200
    body = response.json()
    assert {row["job_number"] for row in body["data"]} == own_jobs
    assert {row["customer_id"] for row in body["data"]} == {OWN}
    assert body["count"] == len(own_jobs)


def test_portal_pages_through_only_its_own_jobs(
    client: TestClient[Any], portal: dict[str, str], own_jobs: set[str]
) -> None:
    seen: list[str] = []
    url: str | None = "/v1/jobs?limit=4"
    while url:
        response = client.get(url, headers=portal)
        assert response.status_code == 200
        seen.extend(row["job_number"] for row in response.json()["data"])
        url = response.links.get("next", {}).get("url")  # by rel: v1 links to v2 too
    assert sorted(seen) == sorted(own_jobs)


def test_a_filter_cannot_widen_the_row_filter(client: TestClient[Any], portal: dict[str, str]) -> None:
    for query in (f"customer_id={OTHER}", f"customer_id[in]={OWN},{OTHER}", "customer_id[ne]=C0001"):
        body = client.get(f"/v1/jobs?limit=500&count=exact&{query}", headers=portal).json()
        assert {row["customer_id"] for row in body["data"]} <= {OWN}, query
    assert client.get(f"/v1/jobs?customer_id={OTHER}&count=exact", headers=portal).json()["count"] == 0


def test_portal_export_holds_only_its_own_jobs(
    client: TestClient[Any], portal: dict[str, str], own_jobs: set[str]
) -> None:
    ndjson = client.get("/v1/jobs", headers={**portal, "Accept": "application/x-ndjson"})
    assert ndjson.status_code == 200
    lines = [json.loads(line) for line in ndjson.text.splitlines() if line]
    assert {row["job_number"] for row in lines} == own_jobs
    assert len(lines) == len(own_jobs)

    exported = client.get("/v1/jobs", headers={**portal, "Accept": "text/csv"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["job_number"] for row in rows} == own_jobs
    assert {row["customer_id"] for row in rows} == {OWN}


def test_portal_embeds_only_its_own_rows(
    client: TestClient[Any], portal: dict[str, str], own_jobs: set[str], other_job: str
) -> None:
    customers = client.get("/v1/customers?embed=jobs&limit=500", headers=portal)
    assert customers.status_code == 200
    data = customers.json()["data"]
    assert [c["customer_id"] for c in data] == [OWN]
    assert {j["job_number"] for j in data[0]["jobs"]} == own_jobs

    jobs = client.get("/v1/jobs?embed=customer&limit=500", headers=portal).json()["data"]
    assert {j["customer"]["customer_id"] for j in jobs} == {OWN}

    single = client.get(f"/v1/customers/{OWN}?embed=jobs", headers=portal)
    assert single.status_code == 200
    assert {j["job_number"] for j in single.json()["jobs"]} == own_jobs
    assert client.get(f"/v1/customers/{OTHER}", headers=portal).status_code == 404


def test_portal_sees_only_the_operations_of_its_own_jobs(
    client: TestClient[Any], portal: dict[str, str], db: sqlite3.Connection, own_jobs: set[str], other_job: str
) -> None:
    expected = db.execute(
        "SELECT COUNT(*) FROM JOBOPS o JOIN JOBMAST j ON j.JOBNO = o.JOBNO "
        "WHERE j.DELFLG <> 'Y' AND TRIM(j.CUSTNO) = ?",
        (OWN,),
    ).fetchone()[0]
    assert expected > 0
    body = client.get("/v1/operations?limit=500&count=exact", headers=portal).json()
    assert {row["job_number"] for row in body["data"]} <= own_jobs
    assert body["count"] == len(body["data"]) == expected

    ndjson = client.get("/v1/operations", headers={**portal, "Accept": "application/x-ndjson"})
    assert len([line for line in ndjson.text.splitlines() if line]) == expected
    assert client.get(f"/v1/operations/{other_job},10", headers=portal).status_code == 404
    assert client.get(f"/v1/operations?job_number={other_job}&count=exact", headers=portal).json()["count"] == 0

    jobs = client.get("/v1/jobs?embed=operations&limit=500", headers=portal).json()["data"]
    assert {op["job_number"] for job in jobs for op in job["operations"]} <= own_jobs


@pytest.mark.parametrize("value", [INJECTION, "C0001'; DROP TABLE JOBMAST; --", "%", "C000_", '") OR 1=1 --'])
def test_a_claim_carrying_sql_is_only_data(
    client: TestClient[Any], token: Any, db: sqlite3.Connection, value: str
) -> None:
    before = db.execute("SELECT COUNT(*) FROM JOBMAST").fetchone()[0]
    headers = bearer(token("jobs:read", "customers:read", customer_id=value))
    body = client.get("/v1/jobs?count=exact&limit=500", headers=headers).json()
    assert body["data"] == [] and body["count"] == 0
    export = client.get("/v1/jobs", headers={**headers, "Accept": "application/x-ndjson"})
    assert export.status_code == 200 and export.text.strip() == ""
    assert client.get("/v1/operations?count=exact", headers=headers).json()["count"] == 0
    assert client.get("/v1/customers?embed=jobs", headers=headers).json()["data"] == []
    assert db.execute("SELECT COUNT(*) FROM JOBMAST").fetchone()[0] == before


@pytest.mark.parametrize("claims", [{}, {"customer_id": ""}, {"customer_id": None}, {"customer_id": []}])
@pytest.mark.parametrize(
    "request_",
    [
        ("/v1/jobs", {}),
        ("/v1/jobs/J000001", {}),
        ("/v1/jobs?count=exact", {}),
        ("/v1/operations", {}),
        ("/v1/jobs", {"Accept": "text/csv"}),
        ("/v1/jobs", {"Accept": "application/x-ndjson"}),
    ],
    ids=["list", "get", "count", "operations", "csv", "ndjson"],
)
def test_a_token_without_the_claim_is_403_not_every_row(
    client: TestClient[Any], token: Any, claims: dict[str, Any], request_: tuple[str, dict[str, str]]
) -> None:
    path, extra = request_
    response = client.get(path, headers={**bearer(token("jobs:read", **claims)), **extra})
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "customer_id" in response.json()["detail"]


@pytest.mark.parametrize("scopes", [("admin",), ("jobs:read", "jobs:read:all")], ids=["admin", "read-all"])
def test_unfiltered_tokens_see_every_customer(
    client: TestClient[Any], token: Any, db: sqlite3.Connection, scopes: tuple[str, ...]
) -> None:
    total = db.execute("SELECT COUNT(*) FROM JOBMAST WHERE DELFLG <> 'Y'").fetchone()[0]
    customers = db.execute("SELECT COUNT(DISTINCT CUSTNO) FROM JOBMAST WHERE DELFLG <> 'Y'").fetchone()[0]
    # A customer_id claim does not narrow an unfiltered token either.
    headers = bearer(token(*scopes, customer_id=OWN))
    body = client.get("/v1/jobs?count=exact&limit=500", headers=headers).json()
    assert body["count"] == total
    export = client.get("/v1/jobs?fields=customer_id", headers={**headers, "Accept": "application/x-ndjson"})
    assert len({json.loads(line)["customer_id"] for line in export.text.splitlines()}) == customers


# -- field hiding -----------------------------------------------------------------------------


def test_a_hidden_field_is_absent_without_its_scope(client: TestClient[Any], token: Any) -> None:
    for headers in ({}, bearer(token("jobs:read"))):
        rows = client.get("/v1/items?limit=10", headers=headers).json()["data"]
        assert rows and all("standard_cost" not in row and "price" in row for row in rows)
        one = client.get(f"/v1/items/{rows[0]['item_number']}", headers=headers).json()
        assert "standard_cost" not in one
        export = client.get("/v1/items", headers={**headers, "Accept": "text/csv"})
        assert "standard_cost" not in export.text.splitlines()[0]
        ndjson = client.get("/v1/items", headers={**headers, "Accept": "application/x-ndjson"})
        assert "standard_cost" not in ndjson.text


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("standard_cost=1.00", "standard_cost"),
        ("standard_cost[gt]=1", "standard_cost[gt]"),
        ("standard_cost[isnull]=true", "standard_cost[isnull]"),
        ("sort=-standard_cost", "sort"),
        ("fields=item_number,standard_cost", "fields"),
    ],
)
def test_a_hidden_field_cannot_be_filtered_sorted_or_selected(
    client: TestClient[Any], query: str, parameter: str
) -> None:
    for accept in ("application/json", "text/csv"):
        response = client.get(f"/v1/items?{query}", headers={"Accept": accept})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert [e["parameter"] for e in response.json()["errors"]] == [parameter]
        # The error lists the fields the caller may use, and the hidden one is not among them.
        assert "standard_cost (" not in response.json()["errors"][0]["detail"]


def test_a_hidden_field_cannot_be_selected_on_a_single_row(client: TestClient[Any]) -> None:
    item = client.get("/v1/items?limit=1").json()["data"][0]["item_number"]
    response = client.get(f"/v1/items/{item}?fields=standard_cost")
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "fields"


@pytest.mark.parametrize("scopes", [("costs:read",), ("admin",)])
def test_the_field_scope_reveals_the_field(client: TestClient[Any], token: Any, scopes: tuple[str, ...]) -> None:
    headers = bearer(token(*scopes))
    rows = client.get("/v1/items?limit=10&sort=-standard_cost", headers=headers).json()["data"]
    costs = [row["standard_cost"] for row in rows]
    assert costs == sorted(costs, reverse=True) and costs[0] > 0
    threshold = costs[4]
    filtered = client.get(f"/v1/items?standard_cost[gte]={threshold}&limit=500", headers=headers).json()["data"]
    assert filtered and all(row["standard_cost"] >= threshold for row in filtered)
    assert len(filtered) >= 5
    csv_head = client.get("/v1/items?limit=1", headers={**headers, "Accept": "text/csv"}).text.splitlines()[0]
    assert "standard_cost" in csv_head


def test_a_hidden_field_of_an_embedded_resource_stays_hidden(client: TestClient[Any], token: Any) -> None:
    plain = bearer(token("stock:read"))
    costs = bearer(token("stock:read", "costs:read"))
    hidden = client.get("/v1/stock?limit=5&embed=item", headers=plain).json()["data"]
    shown = client.get("/v1/stock?limit=5&embed=item", headers=costs).json()["data"]
    assert all("standard_cost" not in row["item"] for row in hidden if row["item"])
    assert any("standard_cost" in row["item"] for row in shown if row["item"])


# -- OpenAPI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(client: TestClient[Any]) -> dict[str, Any]:
    response = client.get("/openapi/v1.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_openapi_declares_the_bearer_scheme(openapi: dict[str, Any]) -> None:
    scheme = openapi["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "JWT"


@pytest.mark.parametrize(
    ("resource", "scope"),
    [("jobs", "jobs:read"), ("stock", "stock:read"), ("customers", "customers:read"), ("operations", "jobs:read")],
)
def test_openapi_names_each_operations_scope(openapi: dict[str, Any], resource: str, scope: str) -> None:
    for path in (f"/v1/{resource}", f"/v1/{resource}/{{key}}"):
        operation = openapi["paths"][path]["get"]
        assert operation["security"] == [{"bearerAuth": [scope]}], path
        assert {"401", "403"} <= set(operation["responses"]), path


def test_openapi_marks_the_catalogue_anonymous_and_the_hidden_field(openapi: dict[str, Any]) -> None:
    for path in ("/v1/items", "/v1/items/{key}"):
        assert {} in openapi["paths"][path]["get"]["security"]
    schema = openapi["components"]["schemas"]["Items"]["properties"]["standard_cost"]
    assert schema["x-required-scope"] == "costs:read"
    assert "costs:read" in schema["description"]
    assert "x-required-scope" not in openapi["components"]["schemas"]["Items"]["properties"]["price"]
    filters = [p for p in openapi["paths"]["/v1/items"]["get"]["parameters"] if p["name"].startswith("standard_cost")]
    assert filters and all("costs:read" in p["description"] for p in filters)


# -- logging ----------------------------------------------------------------------------------


def _refusals(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("log_level") == "warning" and "reason" in e]


def test_a_refused_token_is_logged_with_reason_and_subject_never_the_token(
    client: TestClient[Any], demo_mapping: Mapping
) -> None:
    expired = hs256(demo_mapping, demo_claims(demo_mapping, sub="portal-7", exp=int(time.time()) - 3600))
    forged = hs256(demo_mapping, demo_claims(demo_mapping, sub="mallory"), secret="x" * 40)
    with capture_logs() as logs:
        assert client.get("/v1/jobs", headers=bearer(expired)).status_code == 401
        assert client.get("/v1/jobs", headers=bearer(forged)).status_code == 401
        assert client.get("/v1/jobs", headers=bearer("garbage")).status_code == 401
    refusals = _refusals(logs)
    assert [(e["reason"], e["claimed_subject"]) for e in refusals] == [
        ("the token has expired", "portal-7"),
        ("the token signature does not verify", "mallory"),
        ("the token is malformed", None),
    ]
    everything = repr(logs)
    for secret in (expired, forged, "garbage"):
        assert secret not in everything
        assert secret.rsplit(".", 1)[-1] not in everything  # not even the signature part


def test_a_missing_scope_is_logged_with_the_subject(client: TestClient[Any], token: Any) -> None:
    wrong = token("items:read", sub="warehouse-app")
    with capture_logs() as logs:
        assert client.get("/v1/stock", headers=bearer(wrong)).status_code == 403
        assert client.get("/v1/jobs", headers=bearer(token("jobs:read", sub="no-claim-app"))).status_code == 403
        assert client.get("/v1/jobs").status_code == 401
    refusals = _refusals(logs)
    assert [(e["subject"], "stock:read" in e["reason"]) for e in refusals[:2]] == [
        ("warehouse-app", True),
        ("no-claim-app", False),
    ]
    assert "customer_id" in refusals[1]["reason"]
    assert refusals[2]["subject"] is None and "token is required" in refusals[2]["reason"]
    assert wrong not in repr(logs)


# -- CLI: bridgehead token issue --------------------------------------------------------------


@pytest.fixture
def cli_env(demo_mapping: Mapping, demo_db_path: Path) -> dict[str, str | None]:
    assert demo_mapping.auth is not None
    return {"BRIDGEHEAD_JWT_SECRET": demo_mapping.auth.hs256_secret, "BRIDGEHEAD_DB_URL": f"sqlite:///{demo_db_path}"}


def issue(env: dict[str, str | None], *args: str) -> Any:
    from legacy_adapters.demo import DEMO_MAPPING_PATH

    return CliRunner().invoke(main, ["token", "issue", "-c", str(DEMO_MAPPING_PATH), *args], env=env)


def test_cli_issues_a_token_the_gateway_accepts(
    client: TestClient[Any], cli_env: dict[str, str | None], own_jobs: set[str]
) -> None:
    result = issue(cli_env, "--sub", "portal", "--scope", "jobs:read", "--claim", f"customer_id={OWN}", "--ttl", "1h")
    assert result.exit_code == 0, result.output
    minted = result.stdout.strip()
    claims = jwt.decode(minted, options={"verify_signature": False})
    assert claims["sub"] == "portal" and claims["scope"] == "jobs:read" and claims["customer_id"] == OWN
    assert claims["exp"] - claims["iat"] == 3600
    assert (claims["iss"], claims["aud"]) == ("bridgehead-demo", "bridgehead")
    body = client.get("/v1/jobs?limit=500", headers=bearer(minted)).json()
    assert {row["job_number"] for row in body["data"]} == own_jobs


def test_cli_scopes_may_be_repeated_or_space_separated(cli_env: dict[str, str | None]) -> None:
    result = issue(cli_env, "--sub", "app", "--scope", "jobs:read costs:read", "--scope", "stock:read", "--ttl", "30m")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["scope"].split() == ["jobs:read", "costs:read", "stock:read"]
    assert claims["exp"] - claims["iat"] == 1800


@pytest.mark.parametrize("ttl", ["1 hour", "1y", "-1h", "h", "0s", "0h", ""])
def test_cli_refuses_a_bad_ttl(cli_env: dict[str, str | None], ttl: str) -> None:
    result = issue(cli_env, "--sub", "portal", "--ttl", ttl)
    assert result.exit_code != 0
    assert "--ttl" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("claim", ["customer_id", "=C0001", "exp=5", "sub=root", "aud=elsewhere", "scope=admin"])
def test_cli_refuses_a_bad_claim(cli_env: dict[str, str | None], claim: str) -> None:
    result = issue(cli_env, "--sub", "portal", "--scope", "jobs:read", "--claim", claim)
    assert result.exit_code != 0
    assert "--claim" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("secret", [None, "", "too-short"])
def test_cli_without_a_usable_secret_says_so(cli_env: dict[str, str | None], secret: str | None) -> None:
    result = issue({**cli_env, "BRIDGEHEAD_JWT_SECRET": secret}, "--sub", "portal")
    assert result.exit_code != 0
    assert "hs256_secret" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
