"""The scenarios: what each server is asked, in its own URL dialect, for the same rows.

Bridgehead and the floor answer the same API (the floor returns the same bodies);
sandman2 is asked for the same rows in its terms (raw column names, padded CHAR
values, stored codes, offset pages). A scenario a server cannot express is skipped
for it and shown as n/a.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import msgspec

from bench.data import CURSOR_SECRET, DEEP_PAGE, PAGE_LIMIT, Samples

__all__ = ("SCENARIOS", "Scenario", "bridgehead_deep_cursors")

_STATUSES = {"on_hold": "H", "released": "R", "planned": "P"}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    paths: Callable[[str, Samples, dict[str, list[str]]], list[str] | None]
    """(server kind, samples, extras) -> request paths, or None when the server cannot express it."""
    variants: bool = False
    """Also run the floor's other execution models (executor, loop) on it."""


def _get(kind: str, s: Samples, _: dict[str, list[str]]) -> list[str]:
    if kind == "sandman2":
        return [f"/jobmast/{quote(k.ljust(10))}" for k in s.job_keys]
    return [f"/v1/jobs/{k}" for k in s.job_keys]


def _list_customer(kind: str, s: Samples, _: dict[str, list[str]]) -> list[str]:
    if kind == "sandman2":
        return [
            "/jobmast/?" + urlencode({"CUSTNO": c.ljust(8), "JSTAT": "C", "sort": "DUEDT", "limit": 100})
            for c in s.list_customers
        ]
    return [
        "/v1/jobs?" + urlencode({"customer_id": c, "status": "complete", "sort": "due_date", "limit": 100})
        for c in s.list_customers
    ]


def _list_status(kind: str, s: Samples, _: dict[str, list[str]]) -> list[str]:
    if kind == "sandman2":
        return [f"/jobmast/?JSTAT={code}&sort=DUEDT&limit=100" for code in _STATUSES.values()]
    return [f"/v1/jobs?status={name}&sort=due_date&limit=100" for name in _STATUSES]


def _page_first(kind: str, s: Samples, _: dict[str, list[str]]) -> list[str]:
    if kind == "sandman2":
        return [f"/jobmast/?page=1&limit={PAGE_LIMIT}"]
    return [f"/v1/jobs?limit={PAGE_LIMIT}"]


def _page_deep(kind: str, s: Samples, extras: dict[str, list[str]]) -> list[str]:
    if kind == "sandman2":  # offset pagination is what sandman2 has
        return [f"/jobmast/?page={DEEP_PAGE + d}&limit={PAGE_LIMIT}" for d in range(-5, 5)]
    if kind == "floor":
        return [f"/v1/jobs?limit={PAGE_LIMIT}&after={k.rstrip()}" for k in s.deep_page_keys]
    return [f"/v1/jobs?limit={PAGE_LIMIT}&cursor={c}" for c in extras["deep_cursors"]]


def _embed(kind: str, s: Samples, _: dict[str, list[str]]) -> list[str] | None:
    if kind == "sandman2":
        return None  # sandman2 has no relation embedding
    return ["/v1/jobs?" + urlencode({"customer_id": c, "embed": "operations", "limit": 100}) for c in s.list_customers]


SCENARIOS = (
    Scenario("get", "get one job by key", _get, variants=True),
    Scenario("list_customer", "list: customer + status, sort due_date, limit 100 (30-44 rows)", _list_customer),
    Scenario("list_100", "list of 100: status, sort due_date, limit 100 (100 rows)", _list_status, variants=True),
    Scenario("page_1", f"keyset page 1 (limit {PAGE_LIMIT})", _page_first),
    Scenario("page_10000", f"keyset page {DEEP_PAGE:,} (limit {PAGE_LIMIT})", _page_deep),
    Scenario("embed", "list + embed=operations (30-44 jobs, ~4 ops each)", _embed),
)


def bridgehead_deep_cursors(base: str, headers: dict[str, str], samples: Samples) -> list[str]:
    """Cursors for pages around DEEP_PAGE, made with the gateway's own CursorCodec.

    The query fingerprint is read from the cursor Bridgehead itself issues for page 1
    of the same query, so nothing here re-implements how it is computed.
    """
    from gateway.pagination import CursorCodec

    first = httpx.get(f"{base}/v1/jobs?limit={PAGE_LIMIT}", headers=headers, timeout=30).json()
    raw = base64.urlsafe_b64decode(first["next_cursor"] + "=" * (-len(first["next_cursor"]) % 4))
    fingerprint, _ = msgspec.json.decode(raw[:-16])
    codec = CursorCodec(CURSOR_SECRET.encode())
    return [codec.encode((key,), fingerprint) for key in samples.deep_page_keys]
