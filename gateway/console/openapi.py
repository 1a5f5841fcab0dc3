"""The admin API (``/admin/...``, scope ``admin``) as OpenAPI operations, added to every version's document.

Written by hand beside the handlers (``api.py``, ``gateway/admin.py``) because they are not
generated from the mapping; ``tests/guards/test_schemathesis.py`` drives them like any
other documented operation, so a drift between the two fails there.
"""

from __future__ import annotations

from typing import Any

from legacy_adapters.query.values import INT64_MAX
from sync.state.outcomes import OUTCOMES

__all__ = ("admin_paths", "admin_schemas")

_TAG = ["admin"]
_SECURITY = [{"bearerAuth": ["admin"]}]
_PROBLEM = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_ERRORS = {
    "400": "Invalid parameter or body; `errors` lists each one",
    "401": "Missing or invalid bearer token",
    "403": "The token lacks the `admin` scope",
    "404": "No such sync, run or dead letter",
    "409": "The run is not (or no longer) waiting for approval",
    "415": "The body is not `application/json`",
    "422": "The body does not have the documented shape",
}
_HEADERS = {"401": ("WWW-Authenticate",), "403": ("WWW-Authenticate",)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = _nullable("string", format="date-time")
_COUNT = {"type": "integer", "minimum": 0}
_ID = {"type": "integer", "minimum": 1, "maximum": INT64_MAX}
_KEY = {"description": "The legacy key: its parts in order.", "type": "array"}


def _responses(ok: dict[str, Any] | str, *errors: str) -> dict[str, Any]:
    schema = _ref(ok) if isinstance(ok, str) else ok
    answers: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
    for code in ("400", "401", "403", *errors):
        answers[code] = {"description": _ERRORS[code], **_PROBLEM}
        if code in _HEADERS:
            answers[code]["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in _HEADERS[code]}
    return answers


def _operation(op_id: str, summary: str, ok: dict[str, Any] | str, *errors: str, **more: Any) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "summary": summary,
        "tags": _TAG,
        "security": _SECURITY,
        "responses": _responses(ok, *errors),
        **more,
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _body(name: str, required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


_SYNC = _path("sync", {"type": "string", "minLength": 1, "maxLength": 100})
_TEXT = {"type": "string", "maxLength": 400}


def admin_paths() -> dict[str, Any]:
    def data(name: str) -> dict[str, Any]:
        return {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": _ref(name)}}}

    decision = {"requestBody": _body("AdminNote")}
    audit_filters = [
        _query(name, f"Only entries whose {name} is exactly this.", _TEXT) for name in ("resource", "subject", "action")
    ]
    return {
        "/admin/session": {"get": _operation("admin_session", "Who the token is", "AdminSession")},
        "/admin/syncs": {"get": _operation("list_syncs", "Every sync with its state and last runs", data("Sync"))},
        "/admin/syncs/{sync}": {
            "get": _operation("get_sync", "One sync", "Sync", "404", parameters=[_SYNC]),
        },
        "/admin/syncs/{sync}/pause": {
            "post": _operation(
                "pause_sync",
                "Pause: no run sends until resumed",
                "Sync",
                "404",
                "415",
                "422",
                parameters=[_SYNC],
                **decision,
            ),
        },
        "/admin/syncs/{sync}/resume": {
            "post": _operation(
                "resume_sync", "Resume a paused sync", "Sync", "404", "415", "422", parameters=[_SYNC], **decision
            ),
        },
        "/admin/syncs/{sync}/run": {
            "post": _operation(
                "run_sync",
                "Run the sync now and wait for the run to end",
                "RunReport",
                "404",
                "415",
                "422",
                parameters=[_SYNC],
                **decision,
            ),
        },
        "/admin/runs": {
            "get": _operation(
                "list_runs",
                "Runs, newest first",
                data("Run"),
                "404",
                parameters=[
                    _query("sync", "Only this sync's runs.", _TEXT),
                    _query("limit", "At most this many.", {"type": "integer", "minimum": 1, "maximum": 500}),
                ],
            ),
        },
        "/admin/runs/{run_id}": {
            "get": _operation(
                "get_run",
                "A run with its row-level outcomes",
                "RunDetail",
                "404",
                parameters=[
                    _path("run_id", _ID),
                    _query("key", "Only records whose legacy key contains this text.", _TEXT),
                    _query("outcome", "Only this outcome.", {"type": "string", "enum": list(OUTCOMES)}),
                    _query("limit", "At most this many outcomes.", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query(
                        "cursor", "`next_cursor` of the previous page.", {"type": "string", "pattern": "^[0-9]{1,18}$"}
                    ),
                ],
            ),
        },
        "/admin/dlq": {
            "get": _operation(
                "list_dead_letters",
                "The dead-letter queue with each record's reason",
                data("DeadLetter"),
                "404",
                parameters=[_query("sync", "Only this sync's.", _TEXT)],
            ),
        },
        "/admin/dlq/replay": {
            "post": _operation(
                "replay_dead_letters",
                "Back to the outbox, sent as the row is now on the next run: `ids`, a sync's, or all",
                "Replayed",
                "404",
                "415",
                "422",
                requestBody=_body("ReplayRequest"),
            ),
        },
        "/admin/dlq/{letter_id}/discard": {
            "post": _operation(
                "discard_dead_letter",
                "Give up on a record (with a note); its row is not sent again until it changes",
                "DeadLetter",
                "404",
                "415",
                "422",
                parameters=[_path("letter_id", _ID)],
                requestBody=_body("DiscardRequest", True),
            ),
        },
        "/admin/conflicts": {
            "get": _operation(
                "list_conflicts",
                "Fields both sides changed (`owner: newest`): both values, who won",
                data("Conflict"),
                "404",
                parameters=[
                    _query("sync", "Only this sync's.", _TEXT),
                    _query("key", "Only this legacy key (`C0042`, or `I0001,W01` for a composite one).", _TEXT),
                    _query("run", "Only this run's.", _ID),
                    _query("limit", "At most this many.", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            ),
        },
        "/admin/approvals": {
            "get": _operation(
                "list_approvals",
                "Runs awaiting approval with their planned diff",
                data("Approval"),
                "404",
                parameters=[
                    _query("sync", "Only this sync's.", _TEXT),
                    _query("all", "Decided ones too, with who decided.", {"type": "string", "enum": ["true", "false"]}),
                ],
            ),
        },
        "/admin/approvals/{run_id}/approve": {
            "post": _operation(
                "approve_run",
                "Send a held run, recording who decided",
                "RunReport",
                "404",
                "409",
                "415",
                "422",
                parameters=[_path("run_id", _ID)],
                **decision,
            ),
        },
        "/admin/approvals/{run_id}/reject": {
            "post": _operation(
                "reject_run",
                "Cancel a held run and drop its plan, recording who decided",
                "RunReport",
                "404",
                "409",
                "415",
                "422",
                parameters=[_path("run_id", _ID)],
                **decision,
            ),
        },
        "/admin/runbook/{sync}": {
            "get": _operation(
                "get_runbook",
                "The sync's runbook page (`bridgehead runbook`), as Markdown and HTML",
                "Runbook",
                "404",
                parameters=[_SYNC],
            ),
        },
        "/admin/alerts": {
            "get": _operation(
                "list_alerts", "Active alerts (raised by sync/alerts, cleared on recovery)", data("Alert")
            ),
        },
        "/admin/series": {
            "get": _operation(
                "get_series",
                "Requests and sync records per interval over the last hours",
                "Series",
                parameters=[_query("hours", "How far back.", {"type": "integer", "minimum": 1, "maximum": 48})],
            ),
        },
        "/admin/audit": {
            "get": _operation(
                "list_audit",
                "The audit trail of writes and admin actions, newest first",
                "AuditPage",
                parameters=[
                    *audit_filters,
                    _query("key", "Only entries for this key.", _TEXT),
                    _query("since", "From this instant (ISO 8601).", {"type": "string", "maxLength": 40}),
                    _query("until", "Before this instant (ISO 8601).", {"type": "string", "maxLength": 40}),
                    _query("limit", "At most this many.", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query(
                        "cursor", "`next_cursor` of the previous page.", {"type": "string", "pattern": "^[0-9]{1,18}$"}
                    ),
                ],
            ),
        },
    }


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def admin_schemas() -> dict[str, Any]:
    counts = {name: _COUNT for name in ("created", "updated", "deleted", "failed", "skipped", "dead_lettered")}
    run = _object(
        ["id", "sync", "status", "started_at", *counts],
        id=_ID,
        sync={"type": "string"},
        status={"type": "string"},
        started_at=_TIME,
        finished_at=_TIME_OR_NULL,
        **counts,
        conflicts=_COUNT,
        error=_nullable("string"),
        planned=_object(["create", "update", "delete"], create=_COUNT, update=_COUNT, delete=_COUNT),
    )
    outcome = _object(
        ["id", "run_id", "key", "outcome", "at"],
        id=_ID,
        run_id=_ID,
        sync={"type": "string"},
        key={"type": "string", "description": "The legacy key as JSON."},
        outcome={"type": "string", "enum": list(OUTCOMES)},
        request={"description": "What was sent for this record (secrets redacted)."},
        answer={"description": "What the destination answered for it (secrets redacted)."},
        error=_nullable("string"),
        at=_TIME,
    )
    note = {"type": "string", "minLength": 1, "maxLength": 1000}
    return {
        "AdminSession": _object(
            ["subject", "scopes"], subject=_nullable("string"), scopes={"type": "array", "items": {"type": "string"}}
        ),
        "Sync": _object(
            ["name", "state", "last_runs", "waiting", "dead_letters"],
            name={"type": "string"},
            resource={"type": "string"},
            destination={"type": "string"},
            object={"type": "string"},
            mode={"type": "string"},
            state={"type": "string", "enum": ["active", "paused", "awaiting_approval", "reconnect_needed"]},
            awaiting_run=_nullable("integer"),
            interval_s={"type": "number"},
            lag_s=_nullable("number", description="Seconds since the last run that delivered started."),
            next_run_at=_TIME_OR_NULL,
            waiting=_COUNT,
            dead_letters=_COUNT,
            remote_records=_COUNT,
            last_runs={"type": "array", "items": _ref("Run")},
            runbook={"type": "string", "description": "The runbook page's file name (`bridgehead runbook`)."},
            runbook_url=_nullable("string"),
        ),
        "Run": run,
        "RunDetail": {
            "allOf": [
                _ref("Run"),
                _object(
                    ["outcomes", "next_cursor"],
                    outcomes={"type": "array", "items": outcome},
                    next_cursor=_nullable("string"),
                ),
            ]
        },
        "RunReport": _object(
            ["run_id", "sync", "status"],
            run_id={"type": "integer"},
            sync={"type": "string"},
            status={"type": "string"},
            **counts,
            error=_nullable("string"),
        ),
        "DeadLetter": _object(
            ["id", "sync", "key", "reason", "attempts"],
            id=_ID,
            sync={"type": "string"},
            key=_KEY,
            op={"type": "string"},
            attempts=_COUNT,
            reason={"type": "string"},
            created_at=_TIME,
            row={"description": "The legacy row as planned."},
        ),
        "Replayed": _object(["replayed", "data"], replayed=_COUNT, data={"type": "array", "items": _ref("DeadLetter")}),
        "ReplayRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sync": {"type": "string", "minLength": 1, "maxLength": 100},
                "ids": {"type": "array", "items": _ID, "maxItems": 1000},
            },
        },
        "DiscardRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["note"],
            "properties": {"note": note},
        },
        "AdminNote": {"type": "object", "additionalProperties": False, "properties": {"note": note}},
        "Conflict": _object(
            ["run_id", "sync", "key", "field", "winner"],
            id=_ID,
            run_id=_ID,
            sync={"type": "string"},
            key=_KEY,
            field={"type": "string"},
            legacy={"description": "The legacy side's value."},
            destination={"description": "The destination's."},
            winner={"type": "string"},
            at=_TIME,
        ),
        "Approval": _object(
            ["run_id", "sync", "reason", "plan"],
            run_id=_ID,
            sync={"type": "string"},
            reason={"type": "string"},
            plan={"type": "object"},
            decision=_nullable("string"),
            decided_by=_nullable("string"),
            decided_at=_TIME_OR_NULL,
        ),
        "Runbook": _object(
            ["sync", "file", "markdown", "html"],
            sync={"type": "string"},
            file={"type": "string"},
            markdown={"type": "string"},
            html={"type": "string"},
        ),
        "Alert": _object(
            ["kind", "subject", "message", "since"],
            kind={"type": "string"},
            subject={"type": "string"},
            sync=_nullable("string"),
            destination=_nullable("string"),
            message={"type": "string"},
            value=_nullable("number"),
            threshold=_nullable("number"),
            since=_TIME,
        ),
        "Series": _object(
            ["hours", "step_s", "requests", "sync"],
            hours={"type": "integer"},
            step_s={"type": "integer"},
            requests={
                "type": "array",
                "items": _object(
                    ["at", "2xx", "3xx", "4xx", "5xx"], at=_TIME, **{c: _COUNT for c in ("2xx", "3xx", "4xx", "5xx")}
                ),
            },
            sync={
                "type": "array",
                "items": _object(
                    ["at", "done", "failed", "skipped"], at=_TIME, done=_COUNT, failed=_COUNT, skipped=_COUNT
                ),
            },
        ),
        "AuditPage": _object(
            ["data", "next_cursor"],
            next_cursor=_nullable("string"),
            data={
                "type": "array",
                "items": _object(
                    ["id", "at", "version", "resource", "key", "action", "status"],
                    id=_ID,
                    at={"type": "string"},
                    subject=_nullable("string"),
                    request_id=_nullable("string"),
                    version={"type": "string"},
                    resource={"type": "string"},
                    key={"type": "string"},
                    action={"type": "string"},
                    status={"type": "integer"},
                    before=_nullable("object"),
                    after=_nullable("object"),
                ),
            },
        ),
    }
