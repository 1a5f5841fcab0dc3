"""The ceiling: raw pyodbc on the event loop, no framework. What the harness allows, not a model to ship.

A bare ASGI app that answers the floor's two hottest requests with the floor's bodies:
get by key (``/v1/jobs/{key}``) and a list by status in due-date order
(``/v1/jobs?status=…&sort=due_date&limit=N``). Same HS256 check and the same clean-up
of the same fields (``bench/handwritten.py``), the same SQL text the floor's statements
compile to on SQLite (``tests/unit/test_bench_ceiling.py`` holds the two equal), the same
driver and URL. What it leaves out is everything between the socket and the driver: no
framework, no routing table, no pool, no thread hop. Each worker process opens one DB-API
connection at start-up (through SQLAlchemy's ``create_engine`` for the URL, so the connect
string and arguments are the floor's, and never through SQLAlchemy again) and keeps one
cursor per statement, so the driver prepares each SQL text once: pyodbc re-uses a
cursor's prepared statement when the same text comes back. The blocking call runs on the
event loop itself, one request at a time per worker.

Anything but those two request shapes is answered 400 (or 404): the ceiling runs only the
bench's ``get`` and ``list_100`` scenarios.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from bench.handwritten import STATUS_CODE, bearer_error, encoder, job

__all__ = ("GET_SQL", "LIST_SQL", "app")

_COLUMNS = ", ".join(
    f'"JOBMAST"."{c}"'
    for c in ("JOBNO", "CUSTNO", "ITEMNO", "JSTAT", "ORDDT", "ORDTM", "DUEDT", "RUSHFL", "QTY", "PRIO", "NOTES")
)
# Byte for byte what the floor sends (SQLAlchemy's SQLite compiler, LIMIT and OFFSET bound).
GET_SQL = (
    f'SELECT {_COLUMNS} \nFROM "JOBMAST" \nWHERE ? = "JOBMAST"."JOBNO" AND ("JOBMAST"."DELFLG" <> \'Y\')\n'
    " LIMIT ? OFFSET ?"
)
LIST_SQL = (
    f'SELECT {_COLUMNS} \nFROM "JOBMAST" \nWHERE ("JOBMAST"."DELFLG" <> \'Y\') AND "JOBMAST"."JSTAT" = ? '
    'ORDER BY "JOBMAST"."DUEDT", "JOBMAST"."JOBNO"\n LIMIT ? OFFSET ?'
)
_ISSUER, _AUDIENCE = "bridgehead-demo", "bridgehead"
_JSON = [(b"content-type", b"application/json")]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class _Worker:
    """This process's connection and its two cursors (one per statement, each prepared once)."""

    def __init__(self, url: str, secret: str) -> None:
        import sqlalchemy as sa

        import legacy_adapters.dialects  # noqa: F401 - registers sqlite+pyodbc with SQLAlchemy

        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._fairy = self._engine.raw_connection()
        connection = self._fairy.driver_connection
        assert connection is not None  # a fresh checkout always has one
        self.get_cursor, self.list_cursor = connection.cursor(), connection.cursor()
        self.secret = secret

    def close(self) -> None:
        self.get_cursor.close()
        self.list_cursor.close()
        self._fairy.close()
        self._engine.dispose()

    def get(self, key: str) -> bytes | None:
        rows = self.get_cursor.execute(GET_SQL, (key.ljust(10), 2, 0)).fetchall()
        return encoder.encode(job(rows[0])) if rows else None

    def list(self, status: str, limit: int) -> bytes:
        raw = self.list_cursor.execute(LIST_SQL, (status, limit + 1, 0)).fetchall()
        after = None
        if len(raw) > limit:
            last = raw[limit - 1]
            after = f"{last[6]},{last[0].rstrip()}"
        return encoder.encode({"data": [job(r) for r in raw[:limit]], "next_cursor": after})


_worker: _Worker | None = None


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, detail: str) -> None:
    await _answer(send, status, encoder.encode({"status_code": status, "detail": detail}))


def _list_params(query_string: bytes) -> tuple[str, int] | str:
    """(status code, limit) for the one list shape the ceiling answers, or why the query is refused."""
    query = dict(parse_qsl(query_string.decode("latin-1")))
    if set(query) - {"status", "sort", "limit"} or query.get("sort") != "due_date" or "status" not in query:
        return "the ceiling answers only ?status=…&sort=due_date&limit=N"
    code = STATUS_CODE.get(query["status"])
    if code is None:
        return f"unknown status {query['status']!r}"
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        return "limit must be an integer"
    if limit < 1:
        return "limit must be at least 1"
    return code, min(limit, 500)


async def _lifespan(receive: Receive, send: Send) -> None:
    global _worker
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                _worker = _Worker(os.environ["BENCH_DB_URL"], os.environ["BENCH_JWT_SECRET"])
            except Exception as exc:  # uvicorn prints the message and stops the worker
                await send({"type": "lifespan.startup.failed", "message": f"ceiling: {type(exc).__name__}: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _worker is not None:
                _worker.close()
                _worker = None
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI entry point (``uvicorn bench.ceiling_app:app``)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    worker = _worker
    if worker is None:
        await _refuse(send, 503, "the ceiling has no database connection (run it with its lifespan)")
        return
    path: str = scope["path"]
    if path != "/v1/jobs" and not (path.startswith("/v1/jobs/") and "/" not in path[9:] and len(path) > 9):
        await _refuse(send, 404, "not found")
        return
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
    refused = bearer_error(header, worker.secret, _ISSUER, _AUDIENCE)
    if refused is not None:
        await _refuse(send, 401, refused)
        return
    if path == "/v1/jobs":
        params = _list_params(scope["query_string"])
        if isinstance(params, str):
            await _refuse(send, 400, params)
            return
        await _answer(send, 200, worker.list(*params))
        return
    body = worker.get(path[9:])
    if body is None:
        await _refuse(send, 404, "no such job")
        return
    await _answer(send, 200, body)
