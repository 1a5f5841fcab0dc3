"""The admin API behind the console (scope ``admin``): syncs, runs, the DLQ, conflicts, approvals, charts.

Every action (pause, resume, run, replay, discard, approve, reject) is recorded in the
audit trail with the acting subject, as ``resource`` ``sync``, ``dlq`` or ``run``
and version ``admin``, so ``GET /admin/audit?resource=dlq`` lists what was done to the DLQ.
The routes are documented in the committed OpenAPI (``gateway/console/openapi.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, RawBody

from gateway.auth.guards import scope_guard
from gateway.auth.middleware import principal_of
from gateway.auth.principal import ADMIN_SCOPE
from gateway.console.syncs import run_summary
from gateway.exceptions import BadRequest, NotFound, Unprocessable, UnsupportedMediaType
from gateway.params import QUERY_NAMES, name_errors, parse_flag
from gateway.readiness import UNGATED
from gateway.request_id import request_id
from legacy_adapters.query.values import INT64_MAX, check_text, shown
from sync.runbook import runbook_filename
from sync.state.audit import AuditEntry
from sync.state.outcomes import OUTCOMES
from sync.state.utc import utcnow

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler
    from markdown_it import MarkdownIt

    from gateway.console.requests import RequestCounter
    from gateway.console.syncs import SyncConsole
    from gateway.context import GatewayContext
    from sync.engine import RunReport

__all__ = ("console_api_handlers",)

_Note = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
_Id = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
_B = TypeVar("_B", bound=msgspec.Struct)


@functools.cache
def _markdown() -> MarkdownIt:
    """Runbook pages to HTML with raw HTML off: whatever a mapping's names hold is shown as text.

    Made on the first runbook asked for: markdown-it is ~1 MB of every worker's memory otherwise.
    """
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


class ReplayBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sync: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    ids: Annotated[list[_Id], msgspec.Meta(max_length=1000)] | None = None


class DiscardBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    note: _Note


class DecisionBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    note: _Note | None = None


def _json(body: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def _body(request: Request[Any, Any, Any], raw: bytes, kind: type[_B]) -> _B:
    """The JSON body as ``kind``; no body is ``{}``. Bad JSON is 400, a wrong shape 422, another type 415."""
    if not raw.strip():
        raw = b"{}"
    else:
        media_type = (request.headers.get("content-type") or "application/json").partition(";")[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType(f"the body must be application/json, not {media_type[:100]!r}")
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        errors = [{"parameter": "body", "detail": "invalid JSON"}]
        raise BadRequest("the request body is not valid JSON", errors=errors) from None
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise Unprocessable(str(exc)[:300], errors=[{"parameter": "body", "detail": str(exc)[:300]}]) from None


class _Query:
    """Query parameters checked one by one; ``done()`` raises one 400 listing every bad one."""

    def __init__(self, request: Request[Any, Any, Any], known: tuple[str, ...]) -> None:
        self.params = request.query_params
        self.errors = name_errors(self.params.multi_items(), known, "this admin route")

    def text(self, name: str, choices: tuple[str, ...] | None = None) -> str | None:
        raw: str | None = self.params.get(name)
        if raw is None:
            return None
        try:
            check_text(raw)
        except ValueError as exc:
            self.errors.append({"parameter": name, "detail": str(exc)})
            return None
        if len(raw) > 400 or (choices and raw not in choices):
            detail = f"one of {', '.join(choices)}" if choices else "at most 400 characters"
            self.errors.append({"parameter": name, "detail": f"expected {detail}, got {shown(raw)}"})
            return None
        return raw

    def whole(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.params.get(name)
        if raw is None:
            return default
        value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else None
        if value is None or not low <= value <= high:
            detail = f"expected a whole number from {low} to {high}, got {shown(raw)}"
            self.errors.append({"parameter": name, "detail": detail})
            return default
        return value

    def flag(self, name: str) -> bool:
        return parse_flag(self.params.get(name), name, self.errors)

    def done(self) -> None:
        if self.errors:
            detail = self.errors[0]["detail"] if len(self.errors) == 1 else f"{len(self.errors)} parameters are invalid"
            raise BadRequest(detail, errors=self.errors)


def _id(value: int, what: str) -> int:
    """A run or dead-letter id from the path; one no store could hold is simply not there."""
    if not 1 <= value <= INT64_MAX:
        raise NotFound(f"no {what} {str(value)[:30]}")
    return value


def _report(report: RunReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "sync": report.sync,
        "status": report.status,
        "created": report.done["create"],
        "updated": report.done["update"],
        "deleted": report.done["delete"],
        "failed": report.failed,
        "dead_lettered": report.dead_lettered,
        "skipped": report.skipped,
        "error": report.error,
    }


def console_api_handlers(ctx: GatewayContext, syncs: SyncConsole, requests: RequestCounter) -> list[HTTPRouteHandler]:
    admin_only = [scope_guard(ADMIN_SCOPE, "the admin API")]
    # Ungated: the console is what an operator opens when the legacy database is down.
    # ``queried``: the routes that read a query string (``_Query`` checks it); the others take none.
    queried: dict[str, Any] = {"guards": admin_only, "include_in_schema": False, "sync_to_thread": True, "opt": UNGATED}
    options: dict[str, Any] = {**queried, "opt": {**UNGATED, QUERY_NAMES: ()}}

    def audit(request: Request[Any, Any, Any], resource: str, key: str, action: str, after: dict[str, Any]) -> None:
        ctx.audit.record(AuditEntry(subject=principal_of(request).subject, request_id=request_id(request.scope),
                                    version="admin", resource=resource, key=key, action=action, status=200,
                                    after=after))  # fmt: skip

    def subject(request: Request[Any, Any, Any]) -> str:
        who = principal_of(request).subject
        return who or "an unnamed admin token"

    @get("/admin/session", **options)
    def session(request: Request[Any, Any, Any]) -> Response[bytes]:
        principal = principal_of(request)
        return _json({"subject": principal.subject, "scopes": sorted(principal.scopes)})

    @get("/admin/syncs", **options)
    def list_syncs() -> Response[bytes]:
        return _json({"data": syncs.syncs()})

    @get("/admin/syncs/{sync:str}", **options)
    def one_sync(sync: FromPath[str]) -> Response[bytes]:
        return _json(syncs.sync(sync))

    def pause_or_resume(paused: bool) -> Any:
        def handler(request: Request[Any, Any, Any], sync: FromPath[str], body: RawBody) -> Response[bytes]:
            decision = _body(request, body, DecisionBody)
            found = syncs.pause(sync, paused)
            audit(request, "sync", sync, "pause" if paused else "resume", {"note": decision.note})
            return _json(found)

        return handler

    pause = post("/admin/syncs/{sync:str}/pause", name="pause_sync", **options)(pause_or_resume(True))
    resume = post("/admin/syncs/{sync:str}/resume", name="resume_sync", **options)(pause_or_resume(False))

    @post("/admin/syncs/{sync:str}/run", **options)
    def run_now(request: Request[Any, Any, Any], sync: FromPath[str], body: RawBody) -> Response[bytes]:
        _body(request, body, DecisionBody)
        syncs.check(sync)
        report = _report(syncs.run_now(sync))
        audit(request, "sync", sync, "run", {"run_id": report["run_id"], "status": report["status"]})
        return _json(report)

    @get("/admin/runs", **queried)
    def list_runs(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = _Query(request, ("sync", "limit"))
        name, limit = query.text("sync"), query.whole("limit", 20, 1, 500)
        query.done()
        if name:
            syncs.check(name)
        return _json({"data": [run_summary(r) for r in syncs.store.runs(name, limit)]})

    @get("/admin/runs/{run_id:int}", **queried)
    def run_detail(request: Request[Any, Any, Any], run_id: FromPath[int]) -> Response[bytes]:
        query = _Query(request, ("key", "outcome", "limit", "cursor"))
        key, outcome = query.text("key"), query.text("outcome", OUTCOMES)
        limit, cursor = query.whole("limit", 100, 1, 1000), query.whole("cursor", 0, 0, INT64_MAX)
        query.done()
        run = syncs.run(_id(run_id, "run"))
        rows = syncs.store.outcomes(run_id, key=key, outcome=outcome, limit=limit, after_id=cursor)
        return _json({**run, "outcomes": rows, "next_cursor": str(rows[-1]["id"]) if len(rows) == limit else None})

    @get("/admin/dlq", **queried)
    def dead_letters(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = _Query(request, ("sync",))
        name = query.text("sync")
        query.done()
        return _json({"data": syncs.dlq(name)})

    @post("/admin/dlq/replay", **options)
    def replay(request: Request[Any, Any, Any], body: RawBody) -> Response[bytes]:
        wanted = _body(request, body, ReplayBody)
        letters = syncs.replay(wanted.sync, wanted.ids)
        for d in letters:
            audit(request, "dlq", str(d["id"]), "replay", {"sync": d["sync"], "key": d["key"]})
        return _json({"replayed": len(letters), "data": letters})

    @post("/admin/dlq/{letter_id:int}/discard", **options)
    def discard(request: Request[Any, Any, Any], letter_id: FromPath[int], body: RawBody) -> Response[bytes]:
        note = _body(request, body, DiscardBody).note
        letter = syncs.discard(_id(letter_id, "dead letter"))
        audit(request, "dlq", str(letter_id), "discard", {"sync": letter["sync"], "key": letter["key"], "note": note})
        return _json(letter)

    @get("/admin/conflicts", **queried)
    def conflicts(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = _Query(request, ("sync", "key", "run", "limit"))
        name, key = query.text("sync"), query.text("key")
        run_id, limit = query.whole("run", 0, 1, INT64_MAX), query.whole("limit", 100, 1, 1000)
        query.done()
        from sync.changes.base import encode_key

        if name:
            syncs.check(name)
        stored_key = key if key is None or key.startswith("[") else encode_key([p.strip() for p in key.split(",")])
        found = syncs.store.conflicts(name, run_id=run_id or None, key=stored_key, limit=limit)
        return _json({"data": [_conflict(c) for c in found]})

    @get("/admin/approvals", **queried)
    def approvals(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = _Query(request, ("sync", "all"))
        name, everything = query.text("sync"), query.flag("all")
        query.done()
        return _json({"data": syncs.approvals(name, waiting=not everything)})

    def decide(approve: bool) -> Any:
        def handler(request: Request[Any, Any, Any], run_id: FromPath[int], body: RawBody) -> Response[bytes]:
            note = _body(request, body, DecisionBody).note
            report = _report(syncs.decide(_id(run_id, "run"), approve, subject(request)))
            audit(request, "run", str(run_id), "approve" if approve else "reject",
                  {"sync": report["sync"], "status": report["status"], "note": note})  # fmt: skip
            return _json(report)

        return handler

    approve = post("/admin/approvals/{run_id:int}/approve", name="approve_run", **options)(decide(True))
    reject = post("/admin/approvals/{run_id:int}/reject", name="reject_run", **options)(decide(False))

    @get("/admin/runbook/{sync:str}", **options)
    def runbook(sync: FromPath[str]) -> Response[bytes]:
        markdown = syncs.runbook(sync)
        return _json(
            {"sync": sync, "file": runbook_filename(sync), "markdown": markdown, "html": _markdown().render(markdown)}
        )

    @get("/admin/alerts", **options)
    def alerts() -> Response[bytes]:
        return _json({"data": [_alert(a) for a in syncs.alerts()]})

    @get("/admin/series", **queried)
    def series(request: Request[Any, Any, Any]) -> Response[bytes]:
        query = _Query(request, ("hours",))
        hours = query.whole("hours", 6, 1, 48)
        query.done()
        points = 60
        step = dt.timedelta(hours=hours) / points
        start = utcnow().replace(second=0, microsecond=0) - step * (points - 1)
        counts = [dict.fromkeys(("2xx", "3xx", "4xx", "5xx"), 0) for _ in range(points)]
        for minute, status_class, count in requests.since(start):
            index = int((minute - start) / step)
            if 0 <= index < points and status_class in counts[index]:
                counts[index][status_class] += count
        buckets = [{"at": start + step * i, **c} for i, c in enumerate(counts)]
        return _json({"hours": hours, "step_s": int(step.total_seconds()), "requests": buckets,
                      "sync": syncs.throughput(start, step, points)})  # fmt: skip

    return [session, list_syncs, one_sync, pause, resume, run_now, list_runs, run_detail, dead_letters, replay,
            discard, conflicts, approvals, approve, reject, runbook, alerts, series]  # fmt: skip


def _alert(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": a["kind"],
        "subject": a["subject"],
        "sync": a.get("sync"),
        "destination": a.get("destination"),
        "message": a["message"],
        "value": a.get("value"),
        "threshold": a.get("threshold"),
        "since": a["since"],
    }


def _conflict(c: dict[str, Any]) -> dict[str, Any]:
    def value(text: str | None) -> Any:
        return None if text is None else msgspec.json.decode(text)

    return {"id": c["id"], "run_id": c["run_id"], "sync": c["sync"], "key": msgspec.json.decode(c["key"]),
            "field": c["field"], "legacy": value(c["legacy_value"]), "destination": value(c["remote_value"]),
            "winner": c["winner"], "at": c["at"]}  # fmt: skip
