"""Write handlers: POST (one row or a bulk array), PATCH, DELETE and actions, generated per resource.

Each write is one database transaction that either fully happens or leaves the
table as it was. PATCH and DELETE honour ``If-Match`` through a compare-and-set
in the statement's WHERE clause; every write is audited; POST and actions honour
``Idempotency-Key`` (see ``idempotency.py``).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Request, Response, delete, patch, post
from litestar.params import FromPath, RawBody

from gateway.auth.guards import access_of, action_guard, write_guard
from gateway.committed import after_commit, committed_response, uri_reference
from gateway.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    TooManyRows,
    Unprocessable,
    UnsupportedMediaType,
    from_legacy,
)
from gateway.executor import offloaded
from gateway.idempotency import with_idempotency
from gateway.mcp.dispatch import VIA
from gateway.migration import write_plan
from gateway.params import QUERY_NAMES, Errors, parse_flag, parse_key
from gateway.problems import problem_of
from gateway.request_id import request_id
from legacy_adapters.actions import action_parameters, action_statements, run_action
from legacy_adapters.exceptions import LegacyError, QueryError
from legacy_adapters.writer import (
    Encoded,
    RowChanged,
    RowExists,
    StoredRow,
    delete_row,
    encode_body,
    fetch_for_update,
    insert_row,
    update_row,
)
from sync.state.audit import AuditEntry

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.auth.guards import Access
    from gateway.context import GatewayContext
    from gateway.idempotency import Attempt
    from legacy_adapters.query.resource import Resource

__all__ = ("write_handlers",)

log = structlog.get_logger("bridgehead.writes")
_AUDIT_ATTEMPTS = 4
_FOREIGN_ROW = "the row would belong to someone else (row filter); nothing was written"
_decoder = msgspec.json.Decoder(float_hook=Decimal)  # 12.50 stays exactly 12.50 on its way to QTY = 1250
JSON = "application/json"


def _decode(request: Request[Any, Any, Any], body: RawBody) -> Any:
    # A body in another media type is refused, not guessed at; no Content-Type at all is read as JSON.
    media_type = (request.headers.get("content-type") or JSON).partition(";")[0].strip().lower()
    if media_type != JSON and not (media_type.startswith("application/") and media_type.endswith("+json")):
        raise UnsupportedMediaType(f"the body must be {JSON}, not {media_type[:100]!r}")
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        # ValidationError (a DecodeError) is an integer literal past any column's range.
        detail = "a number is out of range" if isinstance(exc, msgspec.ValidationError) else "invalid JSON"
        raise BadRequest(
            "the request body is not valid JSON", errors=[{"parameter": "body", "detail": detail}]
        ) from None
    except RecursionError:
        detail = "nested too deeply"
        raise BadRequest(
            "the request body is not valid JSON", errors=[{"parameter": "body", "detail": detail}]
        ) from None


def _unprocessable(encoded: Encoded, index: int | None = None) -> Unprocessable:
    errors: list[dict[str, Any]] = [
        {"field": p.field, "detail": p.detail, **({"index": index} if index is not None else {})}
        for p in encoded.problems
    ]
    summary = errors[0]["detail"] if len(errors) == 1 else f"{len(errors)} fields are invalid"
    if len(errors) == 1 and errors[0]["field"]:
        summary = f"{errors[0]['field']}: {summary}"
    return Unprocessable(summary, errors=errors)


def _row_problem(error: GatewayError) -> dict[str, Any]:
    """One bulk row's failure, as the same problem details a whole request would get."""
    problem: dict[str, Any] = msgspec.to_builtins(problem_of(error))
    return problem


def _key_text(resource: Resource, api_row: dict[str, Any]) -> str:
    parts = [str(api_row[f.name]) for f in resource.key]
    return ",".join(p.replace("\\", "\\\\").replace(",", "\\,") for p in parts) if len(parts) > 1 else parts[0]


def _key_of(resource: Resource, api_row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(api_row[f.name] for f in resource.key)


def _if_match(request: Request[Any, Any, Any], required: bool) -> list[str] | None:
    header = request.headers.get("if-match")
    if header is None:
        if required:
            raise PreconditionRequired("send If-Match with the ETag from your last read of this row")
        return None
    return [t.strip() for t in header.split(",")]


def _check_if_match(tags: list[str] | None, before: StoredRow) -> None:
    # If-Match uses the strong comparison (RFC 9110 13.1.1): a weak tag never matches.
    if tags is not None and "*" not in tags and f'"{before.etag}"' not in tags:
        raise PreconditionFailed("the row changed since your copy was read (its ETag no longer matches)")


def _changes(access: Access, before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[Any, Any]:
    """Before/after of changed fields only, without fields hidden behind a scope."""
    names = [n for n, f in access.fields.items() if f.spec.scope is None]
    if before is None or after is None:
        row = before or after or {}
        return (None, {n: row.get(n) for n in names}) if after is not None else ({n: row.get(n) for n in names}, None)
    changed = [n for n in names if before.get(n) != after.get(n)]
    return {n: before.get(n) for n in changed}, {n: after.get(n) for n in changed}


def write_handlers(ctx: GatewayContext, resource: Resource) -> list[HTTPRouteHandler]:
    """POST/PATCH/DELETE/action handlers for ``resource``, as far as the mapping allows writes."""
    spec = resource.spec
    api = ctx.mapping.api
    # Where the rows are stored in this resource's migration phase (gateway/migration.py); bodies and
    # keys are still checked against ``resource``, so every phase answers bad input the same way.
    plan = write_plan(ctx, resource)
    store, database = plan.store, plan.database
    actions = store.spec.actions if plan.twin else spec.actions

    def audit(request: Request[Any, Any, Any], access: Access, key: str, action: str, status: int,
              before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:  # fmt: skip
        old, new = _changes(access, before, after)
        entry = AuditEntry(
            subject=access.principal.subject,
            request_id=request_id(request.scope),
            version=resource.version,
            resource=resource.name,
            key=key,
            action=action,
            status=status,
            before=old,
            after=new,
            # Set only by an in-process call (gateway/mcp/dispatch.py): the scope's state, never a header.
            via=request.scope.get("state", {}).get(VIA),
        )

        # The write has committed: a state store that fails now must not turn it into an error the
        # client would retry (a second write), nor into a 500. Retry the audit row, then keep it in the log.
        def record() -> None:
            for attempt in range(_AUDIT_ATTEMPTS):
                try:
                    ctx.audit.record(entry)
                    return
                except sa.exc.SQLAlchemyError as exc:
                    log.warning("audit entry not recorded, retrying", attempt=attempt + 1, error=str(exc))
                    time.sleep(0.05 * 2**attempt)
            log.error("audit entry lost: the state store refused it", **msgspec.structs.asdict(entry))

        after_commit("audit", record)

    def visible_after_write(conn: sa.Connection, key: tuple[Any, ...], access: Access) -> StoredRow:
        """The written row as this caller may see it; a row it could not see is refused and rolled back."""
        row = fetch_for_update(conn, store, key, plan.conditions(access.conditions))
        if row is not None:
            return row
        if fetch_for_update(conn, store, key, ()) is not None:
            raise Forbidden(_FOREIGN_ROW)
        raise Unprocessable("the row would not be visible through the API (mapping 'where'); nothing was written")

    def locked_row(
        conn: sa.Connection, key: str, values: tuple[Any, ...], access: Access, if_match: list[str] | None
    ) -> StoredRow:
        """The row a PATCH, DELETE or action works on, read under lock; 404 unless visible, 412 on If-Match."""
        before = fetch_for_update(conn, store, values, plan.conditions(access.conditions))
        if before is None:
            raise NotFound(f"no {resource.name} with key {key!r}")
        _check_if_match(if_match, before)
        return before

    def create_one(conn: sa.Connection, encoded: Encoded, access: Access) -> StoredRow:
        key = tuple(encoded.api[f.name] for f in resource.key)
        try:
            insert_row(conn, store, plan.stored(encoded))
        except RowExists:
            # A row the caller cannot see answers as if the new row were someone else's (which it
            # would be): whose row holds the key, and what it holds, stays hidden (see docs/mapping.md).
            conditions = plan.conditions(access.conditions)
            hidden = conditions and fetch_for_update(conn, store, key, conditions) is None
            if hidden and fetch_for_update(conn, store, key, ()) is not None:
                raise Forbidden(_FOREIGN_ROW) from None
            raise Conflict("a row with this key already exists") from None
        return visible_after_write(conn, key, access)

    async def create(request: Request[Any, Any, Any], body: RawBody) -> Response[Any]:
        access = access_of(request)
        payload = await ctx.executor.run(_decode, request, body)

        def run(attempt: Attempt) -> Response[Any]:
            if isinstance(payload, list):
                return create_many(request, payload, access, attempt)
            encoded = encode_body(resource, payload, access.fields, partial=False)
            if encoded.problems:
                raise _unprocessable(encoded)
            row = database.run_transaction(attempt.seal(lambda conn: create_one(conn, encoded, access)))
            plan.after_write(_key_of(resource, row.api), None, row.api)
            key = _key_text(resource, row.api)
            audit(request, access, key, "create", 201, None, row.api)
            visible = {n: row.api[n] for n in access.fields}
            headers = {"ETag": f'"{row.etag}"', "Location": uri_reference(resource.version, resource.name, key)}
            return committed_response(201, visible, headers, JSON)

        return await with_idempotency(ctx, request, access.principal, body, run)

    def create_many(
        request: Request[Any, Any, Any], rows: list[Any], access: Access, attempt: Attempt
    ) -> Response[Any]:
        if len(rows) > api.max_bulk:
            raise TooManyRows(f"at most {api.max_bulk} rows per request; got {len(rows)}")
        if not rows:
            raise Unprocessable("the array is empty")
        # ?partial=true: the valid rows are written and the others reported; anything but true/false is 400.
        flag = Errors()
        partial = parse_flag(request.query_params.get("partial"), "partial", flag.items)
        flag.raise_if_any()
        encoded = [encode_body(resource, r, access.fields, partial=False) for r in rows]
        if not partial:
            problems = [e for i, e in enumerate(encoded) if e.problems]
            if problems:
                errors = [
                    {"index": i, "field": p.field, "detail": p.detail}
                    for i, e in enumerate(encoded)
                    for p in e.problems
                ]
                raise Unprocessable(
                    f"{len(problems)} of {len(rows)} rows are invalid; nothing was written", errors=errors
                )
            created = database.run_transaction(
                attempt.seal(lambda conn: [create_one(conn, e, access) for e in encoded])
            )
            for row in created:
                plan.after_write(_key_of(resource, row.api), None, row.api)
                audit(request, access, _key_text(resource, row.api), "create", 201, None, row.api)
            data = [{n: r.api[n] for n in access.fields} for r in created]
            return committed_response(201, {"data": data}, {}, JSON)

        def each(conn: sa.Connection) -> list[dict[str, Any]]:
            results: list[dict[str, Any]] = []
            for index, item in enumerate(encoded):
                if item.problems:
                    results.append({"index": index, "status": 422, "problem": _row_problem(_unprocessable(item))})
                    continue
                try:
                    with conn.begin_nested():  # a savepoint: one bad row rolls back alone
                        row = create_one(conn, item, access)
                except (Conflict, Forbidden, Unprocessable) as exc:
                    results.append({"index": index, "status": exc.status_code, "problem": _row_problem(exc)})
                    continue
                except (LegacyError, sa.exc.DBAPIError) as exc:
                    # A value or constraint only the database refuses fails this row, not the request.
                    legacy = exc if isinstance(exc, LegacyError) else database.backend.classify(exc)
                    if getattr(legacy, "transient", False):
                        raise legacy from None  # the database itself is in trouble: fail the whole request
                    error = from_legacy(legacy)
                    results.append({"index": index, "status": error.status_code, "problem": _row_problem(error)})
                    continue
                results.append({"index": index, "status": 201, "data": {n: row.api[n] for n in access.fields}})
                written.append(row.api)
            return results

        written: list[dict[str, Any]] = []

        results = database.run_transaction(attempt.seal(each))
        for row_api in written:
            plan.after_write(_key_of(resource, row_api), None, row_api)
        for result in results:
            if result["status"] == 201:
                audit(request, access, _key_text(resource, result["data"]), "create", 201, None, result["data"])
        return committed_response(200, {"results": results}, {}, JSON)

    def update(request: Request[Any, Any, Any], key: FromPath[str], body: RawBody) -> Response[Any]:
        access = access_of(request)
        values = parse_key(key, resource)
        tags = _if_match(request, api.require_if_match)
        encoded = encode_body(resource, _decode(request, body), access.fields, partial=True)
        if encoded.problems:
            raise _unprocessable(encoded)

        def change(conn: sa.Connection) -> tuple[StoredRow, StoredRow]:
            before = locked_row(conn, key, values, access, tags)
            try:
                update_row(conn, store, before, plan.stored(encoded).columns)
            except RowChanged:
                raise PreconditionFailed("the row changed while it was being updated; read it again") from None
            return before, visible_after_write(conn, values, access)

        before, after = database.run_transaction(change)
        plan.after_write(values, before.api, after.api)
        audit(request, access, key, "update", 200, before.api, after.api)
        visible = {n: after.api[n] for n in access.fields}
        return committed_response(200, visible, {"ETag": f'"{after.etag}"'}, JSON)

    def remove(request: Request[Any, Any, Any], key: FromPath[str]) -> None:
        access = access_of(request)
        if spec.delete is None or not (spec.delete.column or spec.delete.hard):
            raise MethodNotAllowed(f"{resource.name} rows cannot be deleted through the API")
        values = parse_key(key, resource)
        tags = _if_match(request, api.require_if_match)

        def drop(conn: sa.Connection) -> StoredRow:
            before = locked_row(conn, key, values, access, tags)
            try:
                delete_row(conn, store, before)
            except RowChanged:
                raise PreconditionFailed("the row changed while it was being deleted; read it again") from None
            return before

        before = database.run_transaction(drop)
        plan.after_write(values, before.api, None)
        audit(request, access, key, "delete", 204, before.api, None)

    async def act(
        request: Request[Any, Any, Any], key: FromPath[str], name: FromPath[str], body: RawBody
    ) -> Response[Any]:
        action = actions.get(name)
        if action is None:
            known = ", ".join(actions) or "none"
            raise NotFound(f"{resource.name} has no action {name!r} (actions: {known})")
        access = access_of(request)
        values = parse_key(key, resource)
        payload = await ctx.executor.run(_decode, request, body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise BadRequest(
                "the action body must be a JSON object", errors=[{"parameter": "body", "detail": "object"}]
            )

        def run(attempt: Attempt) -> Response[Any]:
            def perform(conn: sa.Connection) -> tuple[StoredRow, dict[str, Any], StoredRow | None]:
                before = locked_row(conn, key, values, access, None)
                try:
                    params = action_parameters(store, action, before.api, payload)
                except QueryError as exc:
                    raise Unprocessable(exc.message, errors=[{"field": exc.parameter, "detail": exc.message}]) from None
                outcome = run_action(conn, action_statements(action, params, conn.dialect))
                return before, outcome, fetch_for_update(conn, store, values, ())

            before, outcome, after = database.run_transaction(attempt.seal(perform))
            after_api = after.api if after is not None else None
            plan.after_write(values, before.api, after_api)
            audit(request, access, key, f"action:{name}", 200, before.api, after_api)
            data = {n: after_api[n] for n in access.fields} if after_api is not None else None
            return committed_response(200, {"action": name, "result": outcome, "data": data}, {}, JSON)

        return await with_idempotency(ctx, request, access.principal, body, run)

    path = f"/{resource.name}"
    tag = [resource.name]
    name = resource.qualified_name
    handlers: list[HTTPRouteHandler] = []
    writes = [write_guard(resource)]
    # A body past the resource's (or the API's) limit is refused 413 before it is read whole.
    limit = spec.max_body_bytes or ctx.mapping.api.max_body_bytes
    # The query parameters each write takes: any other is refused (``gateway.params.check_query_names``).
    takes_partial, takes_none = {QUERY_NAMES: ("partial",)}, {QUERY_NAMES: ()}
    if spec.writable:
        handlers.append(post(path, name=f"{name}.create", tags=tag, guards=writes, request_max_body_size=limit,
                             opt=takes_partial)(create))  # fmt: skip
        update_route = patch(f"{path}/{{key:str}}", name=f"{name}.update", tags=tag, guards=writes,
                             request_max_body_size=limit, opt=takes_none)  # fmt: skip
        handlers.append(update_route(offloaded(ctx.executor, update)))
    if spec.delete is not None:
        handlers.append(delete(f"{path}/{{key:str}}", name=f"{name}.delete", tags=tag, guards=writes,
                               status_code=204, opt=takes_none)(offloaded(ctx.executor, remove)))  # fmt: skip
    if spec.actions:
        act_route = f"{path}/{{key:str}}/actions/{{name:str}}"
        guards = [action_guard(resource)]
        handlers.append(post(act_route, name=f"{name}.act", tags=tag, status_code=200, guards=guards,
                             request_max_body_size=limit, opt=takes_none)(act))  # fmt: skip
    return handlers
