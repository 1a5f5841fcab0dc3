"""The floor: the jobs endpoint a developer would write by hand for the demo database.

Litestar + SQLAlchemy Core + the same driver (whatever ``BENCH_DB_URL`` names) +
msgspec encoding, the same HS256 token check and the same legacy clean-up of the
same fields (trim, status letters, YYYYMMDD and date+time pairs, implied
decimals, Y/N and 1/0 flags, sentinels), returning byte-for-byte the bodies
Bridgehead returns for the benchmark's requests (``bench.__main__`` checks it before any load).
The token check and the clean-up are in ``bench/handwritten.py``, shared with the ceiling.
No mapping, no generic query building: each statement is written once at import.

``BENCH_FLOOR_MODE`` picks how the blocking database work runs:

``executor``  an async handler making one hop per request to a dedicated executor sized
              to the connection pool, which fetches, cleans up and encodes together, as
              Bridgehead runs them (the floor proper);
``thread``    ``sync_to_thread=True`` handlers, the framework's generic thread pool;
``loop``      the blocking call made on the event loop itself (the ceiling, not a model to ship).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.response import Stream

import legacy_adapters.dialects  # noqa: F401 - registers sqlite+pyodbc with SQLAlchemy
from bench.handwritten import STATUS_CODE, bearer_error, encoder, job, operation

__all__ = ("create_app",)

POOL_SIZE = 5  # Bridgehead's default database.pool_size

_meta = sa.MetaData()
JOBMAST = sa.Table(
    "JOBMAST",
    _meta,
    *(
        sa.Column(c, quote=True)
        for c in ("JOBNO", "CUSTNO", "ITEMNO", "JSTAT", "ORDDT", "ORDTM", "DUEDT", "RUSHFL", "QTY", "PRIO", "NOTES")
    ),
    sa.Column("DELFLG", quote=True),
    quote=True,
)
JOBOPS = sa.Table(
    "JOBOPS",
    _meta,
    *(
        sa.Column(c, quote=True)
        for c in ("JOBNO", "OPSEQ", "WRKCTR", "OPDESC", "STDHRS", "OPSTAT", "STRDT", "STRTM", "DONEFL")
    ),
    quote=True,
)
_JOB_COLUMNS = [c for c in JOBMAST.c if c.name != "DELFLG"]
# A literal, as the mapping's `where` is: sqliteodbc streams (StepAPI=1) only statements without
# parameters, and buffers the whole result of a prepared one. The column is quoted by the dialect
# ("DELFLG" would be a string on MariaDB).
_VISIBLE = JOBMAST.c.DELFLG.op("<>")(sa.literal_column("'Y'"))
_GET_ONE = sa.select(*_JOB_COLUMNS).where(sa.bindparam("key") == JOBMAST.c.JOBNO, _VISIBLE).limit(2)


# -- the app ------------------------------------------------------------------------------------------


class _Floor:
    """Engine, token check and the three endpoints' blocking work."""

    def __init__(self, url: str, secret: str, issuer: str, audience: str) -> None:
        self.engine = sa.create_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_pre_ping=False)
        self.secret, self.issuer, self.audience = secret, issuer, audience

    def check_token(self, request: Request[Any, Any, Any]) -> None:
        refused = bearer_error(request.headers.get("authorization", ""), self.secret, self.issuer, self.audience)
        if refused is not None:
            raise NotAuthorizedException(refused)

    def get_job(self, key: str) -> bytes | None:
        with self.engine.connect() as conn:
            row = conn.execute(_GET_ONE, {"key": key.ljust(10)}).first()
        return None if row is None else encoder.encode(job(row))

    def _list_statement(self, query: dict[str, str]) -> tuple[sa.Select[Any], int]:
        limit = min(int(query.get("limit", 50)), 500)
        statement = sa.select(*_JOB_COLUMNS).where(_VISIBLE)
        if "customer_id" in query:
            statement = statement.where(query["customer_id"].ljust(8) == JOBMAST.c.CUSTNO)
        if "status" in query:
            statement = statement.where(STATUS_CODE[query["status"]] == JOBMAST.c.JSTAT)
        if query.get("sort") == "due_date":
            order = (JOBMAST.c.DUEDT, JOBMAST.c.JOBNO)
        else:
            order = (JOBMAST.c.JOBNO,)
        if "after" in query:  # keyset: the last row's sort values, comma separated
            parts = query["after"].split(",")
            if len(order) == 2:
                due, key = int(parts[0]), parts[1].ljust(10)
                statement = statement.where(sa.tuple_(*order) > sa.tuple_(sa.literal(due), sa.literal(key)))
            else:
                statement = statement.where(parts[0].ljust(10) < JOBMAST.c.JOBNO)
        return statement.order_by(*order), limit

    def list_jobs(self, query: dict[str, str]) -> bytes:
        statement, limit = self._list_statement(query)
        with self.engine.connect() as conn:
            raw = conn.execute(statement.limit(limit + 1)).all()
            more = len(raw) > limit
            rows = [job(r) for r in raw[:limit]]
            if query.get("embed") == "operations" and rows:
                keys = sorted({r[0] for r in raw[:limit]})
                children: dict[str, list[dict[str, Any]]] = {}
                ops = sa.select(*JOBOPS.c).where(JOBOPS.c.JOBNO.in_(keys)).order_by(JOBOPS.c.JOBNO, JOBOPS.c.OPSEQ)
                for op in conn.execute(ops):
                    item = operation(op)
                    children.setdefault(item["job_number"], []).append(item)
                for row in rows:
                    row["operations"] = children.get(row["job_number"], [])
        after = None
        if more:
            last = raw[limit - 1]
            after = f"{last.DUEDT},{last.JOBNO.rstrip()}" if query.get("sort") == "due_date" else last.JOBNO.rstrip()
        return encoder.encode({"data": rows, "next_cursor": after})

    def export_jobs(self) -> Any:
        statement, _ = self._list_statement({})
        buffer = bytearray()
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(statement)
            for partition in result.partitions():
                for r in partition:
                    encoder.encode_into(job(r), buffer, len(buffer))
                    buffer.extend(b"\n")
                yield bytes(buffer)
                buffer.clear()


def create_app() -> Litestar:
    """The floor app, configured from ``BENCH_DB_URL``, ``BENCH_JWT_SECRET`` and ``BENCH_FLOOR_MODE``."""
    floor = _Floor(os.environ["BENCH_DB_URL"], os.environ["BENCH_JWT_SECRET"], "bridgehead-demo", "bridgehead")
    mode = os.environ.get("BENCH_FLOOR_MODE", "thread")

    def _get(request: Request[Any, Any, Any], key: str) -> Response[bytes]:
        floor.check_token(request)
        body = floor.get_job(key)
        if body is None:
            raise NotFoundException("no such job")
        return Response(body, media_type="application/json")

    def _list(request: Request[Any, Any, Any]) -> Response[Any]:
        floor.check_token(request)
        query = dict(request.query_params)
        if "application/x-ndjson" in request.headers.get("accept", ""):
            return Stream(floor.export_jobs(), media_type="application/x-ndjson")
        return Response(floor.list_jobs(query), media_type="application/json")

    if mode == "executor":
        executor = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="db")

        async def get_async(request: Request[Any, Any, Any], key: str) -> Response[bytes]:
            floor.check_token(request)
            body = await asyncio.get_running_loop().run_in_executor(executor, floor.get_job, key)
            if body is None:
                raise NotFoundException("no such job")
            return Response(body, media_type="application/json")

        async def list_async(request: Request[Any, Any, Any]) -> Response[Any]:
            floor.check_token(request)
            query = dict(request.query_params)
            if "application/x-ndjson" in request.headers.get("accept", ""):
                return Stream(floor.export_jobs(), media_type="application/x-ndjson")
            body = await asyncio.get_running_loop().run_in_executor(executor, floor.list_jobs, query)
            return Response(body, media_type="application/json")

        handlers = [get("/v1/jobs/{key:str}")(get_async), get("/v1/jobs")(list_async)]
    else:
        threaded = mode == "thread"
        handlers = [
            get("/v1/jobs/{key:str}", sync_to_thread=threaded)(_get),
            get("/v1/jobs", sync_to_thread=threaded)(_list),
        ]
    return Litestar(route_handlers=handlers, openapi_config=None, on_shutdown=[floor.engine.dispose])
