"""Replay API requests against the same mapping in the ``legacy`` and the ``cutover`` phase, and compare answers.

Both gateways run in this process over the real databases, share one cursor secret
and a throwaway state store, and are asked with one admin token. An answer matches
when its status, body bytes, ``ETag``, ``Link`` and content type are equal. The
generated set covers what a client can ask: every page of the list, count, each
sortable field both ways (two pages), an equality filter on every field from values
seen, single rows by key (with and without ``fields``), a missing key and bad input.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import msgspec

if TYPE_CHECKING:
    from litestar.testing import TestClient

    from legacy_adapters.mapping.model import Mapping

__all__ = ("ReplayResult", "replay")

_COMPARED_HEADERS = ("etag", "link", "content-type")


@dataclass(slots=True)
class ReplayResult:
    requests: int = 0
    identical: int = 0
    differences: list[str] = field(default_factory=list)


def _token(mapping: Mapping) -> str:
    from gateway.auth.principal import ADMIN_SCOPE
    from gateway.cli import mint_token

    auth = mapping.auth
    if auth is None or not auth.hs256_secret:
        return ""
    return mint_token(auth.hs256_secret, subject="bridgehead-migrate-verify", scopes=[ADMIN_SCOPE], claims={},
                      ttl_s=3600, issuer=auth.issuer, audience=auth.audience)  # fmt: skip


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _generated(client: TestClient[Any], base: str, mapping: Mapping, version: str, resource: str,
               max_pages: int) -> Iterator[str]:  # fmt: skip
    spec = mapping.versions[version].resources[resource]
    first = f"{base}?limit=100"
    seen: list[dict[str, Any]] = []
    path: str | None = first
    for _ in range(max_pages):
        if path is None:
            break
        yield path
        answer = client.get(path)
        if answer.status_code != 200:
            break
        body = msgspec.json.decode(answer.content)
        if len(seen) < 200:
            seen.extend(body["data"][: 200 - len(seen)])
        link = answer.headers.get("link")
        path = link[1 : link.index(">")] if link else None
    yield f"{base}?count=exact&limit=5"
    for name in spec.fields:
        for direction in ("", "-"):
            sorted_path = f"{base}?sort={direction}{name}&limit=25"
            yield sorted_path
            answer = client.get(sorted_path)
            link = answer.headers.get("link") if answer.status_code == 200 else None
            if link:
                yield link[1 : link.index(">")]
        values = list(dict.fromkeys(_text(row[name]) for row in seen if row.get(name) is not None))[:2]
        for value in values:
            yield f"{base}?{urlencode({name: value, 'limit': 25})}"
        yield f"{base}?{urlencode({f'{name}[isnull]': 'true', 'limit': 25})}"
    key_fields = spec.key_fields
    for row in seen[:25]:
        key = ",".join(quote(_text(row[k]).replace("\\", "\\\\").replace(",", "\\,"), safe="") for k in key_fields)
        yield f"{base}/{key}"
        yield f"{base}/{key}?fields={','.join(list(spec.fields)[:2])}"
    yield f"{base}/{'Z' * 8}"  # no such row: 404
    yield f"{base}?sort=no_such_field"  # 400
    yield f"{base}?limit=0"
    yield f"{base}?cursor=not-a-cursor"


_DATE_CODECS = ("yyyymmdd", "cyymmdd", "julian", "mm/dd/yyyy", "date_time")


def _explained(path: str, fields: dict[str, Any]) -> str:
    """Why a sort or filter on a field with sentinels, codes or date codecs may differ (docs/migration.md)."""
    query = parse_qs(urlsplit(path).query)
    named = {v.lstrip("-") for v in ",".join(query.get("sort", [])).split(",") if v}
    named |= {k.partition("[")[0] for k in query if k not in ("sort", "limit", "cursor", "fields", "embed", "count")}
    suspects = sorted(n for n in named if n in fields)
    if not suspects:
        return ""
    return (f" [{', '.join(suspects)}: legacy sorts and filters null sentinels and undecodable values by their "
            "stored value, the clean table holds NULL; see docs/migration.md#known-differences]")  # fmt: skip


def replay(mapping: Mapping, version: str, resource: str, *, paths: list[str] | None = None,
           max_pages: int = 50) -> ReplayResult:  # fmt: skip
    """Ask both phases the same requests (``paths``, else a generated set); every difference is described."""
    from litestar.testing import TestClient

    from gateway.app import create_app
    from legacy_adapters.migration.phases import with_phase
    from sync.state import StateDatabase

    secret = secrets.token_bytes(32)
    sentinel_fields = {
        name: field.null_if
        for name, field in mapping.versions[version].resources[resource].fields.items()
        if field.null_if or field.map or field.transform in _DATE_CODECS
    }
    headers = {"Authorization": f"Bearer {token}"} if (token := _token(mapping)) else {}
    result = ReplayResult()
    with tempfile.TemporaryDirectory(prefix="bridgehead-verify-") as folder:
        apps = [
            create_app(with_phase(mapping, phase, {resource}), cursor_secret=secret,
                       state=StateDatabase(f"sqlite:///{Path(folder) / f'{phase}.db'}"))
            for phase in ("legacy", "cutover")
        ]  # fmt: skip
        with TestClient(apps[0]) as legacy, TestClient(apps[1]) as moved:
            legacy.headers.update(headers)
            moved.headers.update(headers)
            base = f"/{version}/{resource}"
            for path in paths if paths is not None else _generated(legacy, base, mapping, version, resource, max_pages):
                result.requests += 1
                # One request id for both: problem bodies carry it.
                same = {"X-Request-ID": f"migrate-verify-{result.requests}"}
                left, right = legacy.get(path, headers=same), moved.get(path, headers=same)
                problems = []
                if left.status_code != right.status_code:
                    problems.append(f"status {left.status_code} != {right.status_code}")
                if left.content != right.content:
                    problems.append("body differs")
                for name in _COMPARED_HEADERS:
                    if left.headers.get(name) != right.headers.get(name):
                        problems.append(f"{name} differs")
                if problems:
                    why = _explained(path, sentinel_fields)
                    result.differences.append(f"GET {path}: {'; '.join(problems)}{why}")
                else:
                    result.identical += 1
    return result
