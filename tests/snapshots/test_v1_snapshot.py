"""v1 of the demo answers byte for byte what it answered before v2 existed.

Each case below is one request against the demo mapping (``legacy_adapters/demo/bridgehead.yaml``)
over the session's deterministic 2,000-job demo database. Its answer — status line, the headers
that are part of the contract, and the body, byte-exact — is compared with the file
``tests/snapshots/v1/<case>.http`` committed before v2 was added. Adding or changing a later
version must leave every file unchanged.

Regenerate (only for a deliberate, reviewed change to v1 — which is a breaking change for its
clients and must also pass ``bridgehead openapi guard``):

    BRIDGEHEAD_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/snapshots -q

With the switch set, the test writes the files and fails anyway, so a regeneration can never pass
unnoticed in CI; run it once more without the switch and commit the files with a reason.

Not compared: the lifecycle headers a version gains when it is deprecated (``Deprecation``,
``Sunset`` and the ``Link`` entries with ``rel="deprecation"`` or ``rel="successor-version"``),
which announce the change without altering the answer, and the request id, which is fixed by
the request here (``X-Request-ID: snapshot``) and so compared too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from gateway import create_app
from legacy_adapters.mapping import Mapping
from sync.state import StateDatabase
from tests.conftest import TokenFactory

UPDATE_ENV = "BRIDGEHEAD_UPDATE_SNAPSHOTS"
SNAPSHOTS = Path(__file__).with_name("v1")

# Announcements of a version's retirement: added when v1 is deprecated, not part of its answers.
LIFECYCLE_HEADERS = {"deprecation", "sunset"}
_LIFECYCLE_LINK = re.compile(r'^\s*<[^>]*>\s*;\s*rel="?(deprecation|successor-version)"?\s*$')

ADMIN = "admin"
PORTAL = "portal"  # a customer-portal token: customers:read + jobs:read, customer_id claim C0042
CATALOGUE = "catalogue"  # an internal app with stock:read and costs:read but not jobs
ANONYMOUS = "anonymous"

# name -> (who, method, path, extra request headers)
CASES: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "jobs-filter-sort-embed": (
        ADMIN,
        "GET",
        "/v1/jobs?status=complete&sort=-due_date,job_number&embed=customer&limit=3",
        {},
    ),
    "jobs-fields-range": (
        ADMIN,
        "GET",
        "/v1/jobs?fields=job_number,quantity,due_date&quantity[gte]=900&rush=true&limit=4",
        {},
    ),
    "jobs-embed-many": (ADMIN, "GET", "/v1/jobs?embed=operations,item&limit=1&sort=job_number", {}),
    "jobs-next-page": (ADMIN, "GET", "/v1/jobs?limit=2&sort=job_number", {}),
    "customers-embed-jobs": (ADMIN, "GET", "/v1/customers?limit=1&embed=jobs", {}),
    "items-anonymous": (ANONYMOUS, "GET", "/v1/items?limit=3&sort=-price", {}),
    "items-with-cost": (CATALOGUE, "GET", "/v1/items?limit=2&embed=stock", {}),
    "stock-compound-key": (CATALOGUE, "GET", "/v1/stock?limit=3&sort=item_number,warehouse&embed=item", {}),
    "operations-filter": (ADMIN, "GET", "/v1/operations?job_number=J000001&sort=sequence", {}),
    "job-by-key": (ADMIN, "GET", "/v1/jobs/J000001", {}),
    "job-by-key-embed": (ADMIN, "GET", "/v1/jobs/J000002?embed=customer,operations", {}),
    "job-not-modified": (ADMIN, "GET", "/v1/jobs/J000001", {"If-None-Match": '"c5bee9c6aa0ec974d0f37fe297f2f9da"'}),
    "customer-by-key": (ADMIN, "GET", "/v1/customers/C0042", {}),
    "item-by-key": (ANONYMOUS, "GET", "/v1/items/BUSH-00055", {}),
    "job-not-found": (ADMIN, "GET", "/v1/jobs/NOPE", {}),
    "unknown-resource": (ADMIN, "GET", "/v1/nowhere", {}),
    "bad-limit": (ADMIN, "GET", "/v1/jobs?limit=abc", {}),
    "bad-filter-field": (ADMIN, "GET", "/v1/jobs?colour=red", {}),
    "bad-sort": (ADMIN, "GET", "/v1/jobs?sort=nope", {}),
    "no-token": (ANONYMOUS, "GET", "/v1/jobs?limit=1", {}),
    "missing-scope": (CATALOGUE, "GET", "/v1/jobs?limit=1", {}),
    "export-ndjson": (
        ADMIN,
        "GET",
        "/v1/jobs?customer_id=C0001&sort=job_number&fields=job_number,status,quantity,due_date",
        {"Accept": "application/x-ndjson"},
    ),
    "export-csv": (
        ADMIN,
        "GET",
        "/v1/jobs?customer_id=C0001&sort=job_number&fields=job_number,status,rush,quantity,notes",
        {"Accept": "text/csv"},
    ),
    "portal-jobs": (PORTAL, "GET", "/v1/jobs?limit=3&sort=job_number", {}),
    "portal-own-customer": (PORTAL, "GET", "/v1/customers", {}),
    "portal-other-job": (PORTAL, "GET", "/v1/jobs/J000001", {}),
    "portal-operations": (PORTAL, "GET", "/v1/operations?limit=3", {}),
}


@pytest.fixture(scope="module")
def snapshot_client(demo_mapping: Mapping, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    # A fixed cursor secret: next-page links are part of the answer.
    state = StateDatabase(f"sqlite:///{tmp_path_factory.mktemp('snapshot') / 'state.db'}")
    with TestClient(create_app(demo_mapping, state=state, cursor_secret=b"snapshot-cursor-secret")) as client:
        yield client


@pytest.fixture(scope="module")
def credentials(token: TokenFactory) -> dict[str, dict[str, str]]:
    def bearer(value: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {value}"}

    return {
        ADMIN: bearer(token("admin", sub="admin")),
        PORTAL: bearer(token("customers:read", "jobs:read", sub="portal-42", customer_id="C0042")),
        CATALOGUE: bearer(token("stock:read", "costs:read", sub="catalogue")),
        ANONYMOUS: {},
    }


def render(response: Any) -> bytes:
    """Status, contract headers sorted by name, a blank line, then the body exactly as sent."""
    lines = [f"HTTP {response.status_code}"]
    for name, value in sorted(response.headers.multi_items()):
        name = name.lower()
        if name in LIFECYCLE_HEADERS:
            continue
        if name == "link":
            kept = [part for part in value.split(",") if not _LIFECYCLE_LINK.match(part)]
            if not kept:
                continue
            value = ",".join(kept)
        lines.append(f"{name}: {value}")
    return ("\n".join(lines) + "\n\n").encode() + response.content


@pytest.mark.parametrize("case", sorted(CASES))
def test_v1_answer_is_unchanged(
    case: str, snapshot_client: TestClient[Any], credentials: dict[str, dict[str, str]]
) -> None:
    who, method, path, headers = CASES[case]
    response = snapshot_client.request(
        method, path, headers={**credentials[who], **headers, "X-Request-ID": "snapshot"}
    )
    actual = render(response)
    stored = SNAPSHOTS / f"{case}.http"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        stored.write_bytes(actual)
        pytest.fail(f"{UPDATE_ENV}=1: wrote {stored.name}; run again without it and commit the file", pytrace=False)
    assert stored.exists(), f"no snapshot {stored} (generate it with {UPDATE_ENV}=1 before changing v1)"
    expected = stored.read_bytes()
    assert actual == expected, f"/v1 changed its answer to {method} {path} (snapshot {stored.name})"


def test_snapshots_cover_every_case() -> None:
    # A snapshot without a case would be dead weight that nobody checks.
    on_disk = {p.stem for p in SNAPSHOTS.glob("*.http")}
    assert on_disk == set(CASES)


def test_render_drops_only_lifecycle_announcements() -> None:
    class Fake:
        status_code = 200
        content = b"{}"

        class headers:
            @staticmethod
            def multi_items() -> list[tuple[str, str]]:
                return [
                    ("Deprecation", "@1767225600"),
                    ("Sunset", "Sat, 01 May 2027 00:00:00 GMT"),
                    ("Link", '</v1/jobs?cursor=x>; rel="next", </v2/jobs>; rel="successor-version"'),
                    ("Content-Type", "application/json"),
                ]

    assert render(Fake()) == b'HTTP 200\ncontent-type: application/json\nlink: </v1/jobs?cursor=x>; rel="next"\n\n{}'
