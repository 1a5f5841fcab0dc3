"""The reads of one mapped resource, generated from the mapping (no route per table by hand).

``GET /{version}/{resource}``: a keyset (or offset) page as JSON, or every row as
NDJSON/CSV when ``Accept`` asks for it. ``GET /{version}/{resource}/{key}``: one
row with a strong ETag. ``ResourceReads`` answers them over plain inputs (the
caller's ``Access``, the query items, the key, two headers) in a database worker,
because the drivers block: one hop per request. Two callers share it, so both
give the same answer: the Litestar handlers here, and ``gateway.fast_reads``,
which answers the successful JSON reads without entering Litestar.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response
from litestar._parsers import parse_query_string
from litestar.params import FromPath

from gateway.auth.guards import Access, access_of, authorize_read, read_guard
from gateway.exceptions import BadRequest, Forbidden, NotFound
from gateway.export import BATCH_ROWS, CSV, NDJSON, csv_chunks, ndjson_chunks
from gateway.metrics import rows_served
from gateway.negotiation import JSON, choose_media_type
from gateway.pagination import InvalidCursor
from gateway.params import ListParams, parse_fields, parse_key, parse_list_params, refuse_unknown_names
from gateway.routes import read_route
from legacy_adapters.query.plan_cache import PlanCache
from legacy_adapters.reader import Embed, ReadQuery

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext
    from legacy_adapters.mapping.model import ApiConfig
    from legacy_adapters.query.resource import Resource

__all__ = ("CARRIED", "Answer", "ResourceReads", "answered", "query_items", "resource_handlers")

_encoder = msgspec.json.Encoder(decimal_format="number")
PARAMS_CACHE_SIZE = 256
"""Parsed list query strings kept per resource route."""
_VARY = "Accept, Authorization"
ROW_PARAMETERS = ("fields", "embed")
"""What ``GET /{version}/{resource}/{key}`` takes; filters and paging belong to the list."""


def _embeds(ctx: GatewayContext, resource: Resource, names: tuple[str, ...], access: Access) -> tuple[Embed, ...]:
    embeds = []
    for name in names:
        target = resource.relations[name]
        try:
            target_access = authorize_read(target, access.principal)
        except Forbidden as exc:
            raise Forbidden(f"embed={name}: {exc.detail}", scope=target.spec.scopes.read) from None
        embeds.append(Embed(name, target, tuple(target_access.fields.values()), target_access.conditions))
    return tuple(embeds)


def query_items(scope: Any) -> tuple[tuple[str, str], ...]:
    """The query string's parameters in the client's order, blank values kept, as Litestar parses them.

    Both paths of a read take them from here (the Litestar handlers and ``gateway.fast_reads``), and in
    the client's order rather than ``request.query_params``' (a set's, which changes between processes).
    """
    return parse_query_string(scope.get("query_string", b""))


def _first(items: tuple[tuple[str, str], ...], name: str) -> str | None:
    return next((v for k, v in items if k == name), None)


def _next_link(path: str, items: tuple[tuple[str, str], ...], **changes: Any) -> str:
    # The client's own order: the link is part of the (snapshotted) answer.
    params = [(k, v) for k, v in items if k not in ("cursor", "offset")]
    params.extend((k, str(v)) for k, v in changes.items())
    return f"{path}?{urlencode(params)}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A read's whole response, sent by the Litestar handler or by the fast path (``gateway.fast_reads``)."""

    status: int
    headers: dict[str, str]
    body: bytes
    rows: int | None
    """Rows served as JSON, for the access log and ``bridgehead_rows_served_total``; ``None``: none counted (304)."""


class ResourceReads:
    """The reads of one resource over plain inputs: what its GET routes answer, whoever runs them.

    Every method runs in a database worker (one hop per request) and returns the whole answer or
    raises a ``GatewayError``; nothing here looks at a request object.
    """

    def __init__(self, ctx: GatewayContext, resource: Resource) -> None:
        self.ctx = ctx
        self.resource = resource
        # Parsed and checked list parameters per (visible fields, query string): the filters in them
        # carry their built WHERE clauses, so a repeated query builds neither again. Refused ones
        # raise and are never kept.
        self._parsed: PlanCache[ListParams] = PlanCache(PARAMS_CACHE_SIZE)

    def params(self, access: Access, items: tuple[tuple[str, str], ...]) -> ListParams:
        return _parse_cached(self._parsed, items, self.resource, access, self.ctx.mapping.api)

    def page(self, access: Access, items: tuple[tuple[str, str], ...], path: str) -> Answer:
        """``GET /{version}/{resource}`` as JSON: a keyset (or offset) page, its ``Link`` to the next."""
        ctx, resource = self.ctx, self.resource
        params = self.params(access, items)
        conditions = (*access.conditions, *params.filters)
        after = None
        if params.cursor is not None:
            width = len(ReadQuery(resource, (), sort=params.sort).order)
            try:
                after = ctx.cursors.decode(params.cursor, params.fingerprint, width)
            except InvalidCursor as exc:
                raise BadRequest(str(exc), errors=[{"parameter": "cursor", "detail": str(exc)}]) from None
        query = ReadQuery(
            resource,
            params.fields,
            conditions,
            params.sort,
            params.limit,
            after=after,
            offset=params.offset,
            embeds=_embeds(ctx, resource, params.embeds, access),
        )
        page = ctx.reader.page(query)
        body: dict[str, Any] = {"data": page.rows, "next_cursor": None}
        headers = {"Vary": _VARY}
        if page.last is not None:
            if params.offset is not None:
                link = _next_link(path, items, offset=params.offset + params.limit)
            else:
                body["next_cursor"] = ctx.cursors.encode(page.last, params.fingerprint)
                link = _next_link(path, items, cursor=body["next_cursor"])
            headers["Link"] = f'<{link}>; rel="next"'
        if params.count:
            body["count"] = ctx.reader.count(resource, conditions)
        return Answer(200, headers, _encoder.encode(body), len(page.rows))

    def one(
        self,
        access: Access,
        accept: str | None,
        items: tuple[tuple[str, str], ...],
        key: str,
        if_none_match: str | None,
    ) -> Answer:
        """``GET /{version}/{resource}/{key}``: one row with a strong ETag, or 304 when it still matches."""
        ctx, resource = self.ctx, self.resource
        choose_media_type(accept, offered=(JSON,))  # one row is JSON only (else 406)
        if items:
            refuse_unknown_names(items, ROW_PARAMETERS, "a single row")
        values = parse_key(key, resource)
        embed_raw = _first(items, "embed")
        embed_names = tuple(n.strip() for n in embed_raw.split(",") if n.strip()) if embed_raw else ()
        fields = parse_fields(_first(items, "fields"), access, embeds=embed_names, relations=resource.relations)
        for name in embed_names:
            if name not in resource.relations:
                known = ", ".join(sorted(resource.relations)) or "none"
                detail = f"unknown relation {name!r} (relations: {known})"
                raise BadRequest(detail, errors=[{"parameter": "embed", "detail": detail}])
        embeds = _embeds(ctx, resource, embed_names, access)
        found = ctx.reader.get(resource, values, fields, access.conditions, embeds)
        if found is None:
            raise NotFound(f"no {resource.name} with key {key!r}")
        row, row_tag = found
        body = _encoder.encode(row)
        if len(fields) == len(resource.fields) and not embeds:
            etag = f'"{row_tag}"'
        else:  # another representation of the same row must not share its validator
            etag = f'"{hashlib.blake2b(row_tag.encode() + body, digest_size=16).hexdigest()}"'
        headers = {"ETag": etag, "Vary": _VARY, "Cache-Control": "private, no-cache"}
        if _matches(if_none_match, etag):
            return Answer(304, headers, b"", None)
        return Answer(200, headers, body, 1)

    def export(self, access: Access, items: tuple[tuple[str, str], ...], media_type: str, scope: Any) -> _PendingExport:
        """Every matching row as NDJSON or CSV, planned here and streamed later (``scope`` tallies its rows)."""
        params = self.params(access, items)
        if params.embeds:
            raise BadRequest("embed is not available in exports", errors=[{"parameter": "embed", "detail": "remove"}])
        # Every paging parameter either shapes the export or is refused: none is dropped unseen.
        refused = [{"parameter": p, "detail": "remove"} for p in ("cursor", "offset", "count") if _given(items, p)]
        if refused:
            raise BadRequest("exports stream every matching row: cursor, offset and count do not apply", errors=refused)
        limit = params.limit if _given(items, "limit") else None  # then at most that many rows
        conditions = (*access.conditions, *params.filters)
        query = ReadQuery(self.resource, params.fields, conditions, params.sort)
        # Nothing runs yet: the export budget takes a slot, then pulls chunks on its own workers.
        batches = self.ctx.reader.stream_batches(query, batch_size=BATCH_ROWS, limit=limit)
        rows = _counted(batches, scope, "ndjson" if media_type == NDJSON else "csv")
        chunks = ndjson_chunks(rows) if media_type == NDJSON else csv_chunks(rows, [f.name for f in params.fields])
        content_type = f"{CSV}; header=present" if media_type == CSV else NDJSON  # Litestar adds the charset
        return _PendingExport(chunks, content_type)


def _given(items: tuple[tuple[str, str], ...], name: str) -> bool:
    """Whether the query string holds ``name`` with a value (``?cursor=`` is no cursor, as in a page)."""
    return any(k == name and v for k, v in items)


def answered(scope: Any, answer: Answer) -> None:
    """Count what ``answer`` serves (the access log's ``rows``, ``bridgehead_rows_served_total``)."""
    if answer.rows is not None:
        rows_served(scope, answer.rows, "json")


def resource_handlers(ctx: GatewayContext, reads: ResourceReads) -> list[HTTPRouteHandler]:
    """The GET handlers of ``reads``' resource: Litestar's way in to ``ResourceReads``."""
    resource = reads.resource

    def list_rows(request: Request[Any, Any, Any]) -> Answer | _PendingExport:
        access = access_of(request)
        media_type = choose_media_type(request.headers.get("accept"))
        items = query_items(request.scope)
        if media_type != JSON:
            return reads.export(access, items, media_type, request.scope)
        return reads.page(access, items, request.url.path)

    async def list_or_export(request: Request[Any, Any, Any]) -> Response[Any]:
        carried(request.scope)
        result = await ctx.executor.run(list_rows, request)
        if isinstance(result, _PendingExport):
            return await ctx.exports.start(
                result.chunks, media_type=result.media_type, headers={"Vary": _VARY}, subject=_caller(request)
            )
        answered(request.scope, result)
        return _response(result)

    async def get_row(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
        carried(request.scope)
        access = access_of(request)
        accept, if_none_match = request.headers.get("accept"), request.headers.get("if-none-match")
        result = await ctx.executor.run(reads.one, access, accept, query_items(request.scope), key, if_none_match)
        answered(request.scope, result)
        return _response(result)

    path = f"/{resource.name}"
    tag = [resource.name]
    guards = [read_guard(resource)]
    return [
        read_route(path, name=f"{resource.qualified_name}.list", tags=tag, guards=guards)(list_or_export),
        read_route(f"{path}/{{key:str}}", name=f"{resource.qualified_name}.get", tags=tag, guards=guards)(get_row),
    ]


CARRIED = "bridgehead.read_failed"
"""Scope state key: the exception the fast path's read raised, for the Litestar handler to raise in its place."""


def carried(scope: Any) -> None:
    """Raise the failure the fast path handed over with this request (once), rather than read again.

    The fast path (``gateway.fast_reads``) answers only successes; a read that raised is passed to
    Litestar with its exception, so the answer (problem+json, hooks, metrics) is Litestar's own and
    the database is not asked twice (nor a 504 waited for twice).
    """
    failure = scope.get("state", {}).pop(CARRIED, None)
    if failure is not None:
        raise failure


def _response(answer: Answer) -> Response[Any]:
    return Response(answer.body, status_code=answer.status, media_type=JSON, headers=answer.headers)


def _caller(request: Request[Any, Any, Any]) -> str:
    """Whose export this is: the token's issuer and subject, or the client address without a token."""
    user = request.scope.get("user")
    subject = getattr(user, "subject", None)
    if subject is not None:
        return f"{getattr(user, 'claims', {}).get('iss', '')}|{subject}"
    client = request.scope.get("client")
    return f"address|{client[0] if client else ''}"


_TALLY_EVERY = 500
"""Exported rows are added to the metrics in batches: one counter update per row would cost more."""


def _counted(batches: Iterator[list[dict[str, Any]]], scope: Any, fmt: str) -> Iterator[list[dict[str, Any]]]:
    """``batches`` as they stream, their rows tallied for the access log and ``bridgehead_rows_served_total``."""
    pending = 0
    try:
        for batch in batches:
            size = len(batch)
            yield batch
            del batch  # not held while the next batch is made (see Reader.stream_batches)
            pending += size
            if pending >= _TALLY_EVERY:
                rows_served(scope, pending, fmt)
                pending = 0
    finally:
        if pending:
            rows_served(scope, pending, fmt)


@dataclass(frozen=True, slots=True)
class _PendingExport:
    """An export checked and planned in a request worker, not yet started (no connection taken)."""

    chunks: Iterator[bytes]
    media_type: str


_CURSOR_HELD = "-"
"""Stands for a cursor's value in the parse cache's key: every page of a walk shares one entry."""


def _parse_cached(
    cache: PlanCache[ListParams],
    items: tuple[tuple[str, str], ...],
    resource: Resource,
    access: Access,
    api: ApiConfig,
) -> ListParams:
    """``parse_list_params`` once per (visible fields, query string but the cursor's value)."""
    cursor = next((v for k, v in items if k == "cursor" and v), None)
    if cursor is not None:  # parsing only checks that a cursor is there; its value is decoded later
        items = tuple((k, _CURSOR_HELD) if k == "cursor" and v else (k, v) for k, v in items)
    params = cache.get((tuple(access.fields), items), lambda: parse_list_params(items, resource, access, api))
    return params if cursor is None else dataclasses.replace(params, cursor=cursor)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))
