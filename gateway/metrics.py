"""Prometheus metrics at ``/metrics``: requests, latency, database statements and pool use.

Metrics are process-wide (prometheus_client's registry), so every app built in a process
shares them. Under ``serve --workers N`` the parent points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh folder before the workers start; each worker writes its samples there and whichever
worker answers ``/metrics`` adds them all up, so a scrape sees the whole server.

Names and labels (documented in README "Operations"):

=====================================================  =========================================
``bridgehead_http_requests_total``                     counter; method, route (the template,
                                                       ``/v1/jobs/{key}``; ``unmatched`` for 404s
                                                       outside any route), status
``bridgehead_http_request_duration_seconds``           histogram to the response's first byte;
                                                       method, route
``bridgehead_http_requests_in_progress``               gauge, summed over workers
``bridgehead_db_statement_duration_seconds``           histogram of legacy statements; operation
                                                       (select, insert, update, delete, call)
``bridgehead_db_connections_in_use``                   gauge of checked-out legacy connections
``bridgehead_db_requests_waiting``                     gauge of calls queued for a database worker
``bridgehead_export_streams_open``                     gauge of exports streaming now
``bridgehead_rows_served_total``                       counter; route, format (json, ndjson, csv)
``bridgehead_sync_store_*``                                  read from the state store at each scrape
                                                       (``gateway/sync_metrics.py``)
=====================================================  =========================================
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from litestar import Response, get
from litestar.enums import ScopeType
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    import sqlalchemy as sa
    from litestar.handlers import HTTPRouteHandler
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = (
    "DB_WAITING",
    "EXPORTS_OPEN",
    "InProgressMiddleware",
    "count_response",
    "instrument_engine",
    "metrics_handlers",
    "observe_statement",
    "rows_served",
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("bridgehead_http_requests", "HTTP requests answered.", ("method", "route", "status"))
LATENCY = Histogram(
    "bridgehead_http_request_duration_seconds",
    "Time from a request's arrival to its response's first byte.",
    ("method", "route"),
    buckets=_LATENCY_BUCKETS,
)
IN_PROGRESS = Gauge("bridgehead_http_requests_in_progress", "Requests being answered now.", multiprocess_mode="livesum")
STATEMENTS = Histogram(
    "bridgehead_db_statement_duration_seconds",
    "Legacy database statements, from execute to the driver's first answer.",
    ("operation",),
    buckets=_LATENCY_BUCKETS,
)
CONNECTIONS_IN_USE = Gauge(
    "bridgehead_db_connections_in_use",
    "Legacy database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_WAITING = Gauge(
    "bridgehead_db_requests_waiting",
    "Database calls queued for a worker (and so for a connection): the pool is saturated while above 0.",
    multiprocess_mode="livesum",
)
EXPORTS_OPEN = Gauge(
    "bridgehead_export_streams_open",
    "NDJSON/CSV exports streaming now (each holds an export connection).",
    multiprocess_mode="livesum",
)
ROWS_SERVED = Counter(
    "bridgehead_rows_served",
    "Rows sent to clients: list pages, single rows and exported rows.",
    ("route", "format"),
)


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set: ``labels()`` validates, locks and builds
    a key on every call (~5 % of a keyed read). The metric keeps every child it made anyway."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def rows_served(scope: Scope | dict[str, Any], count: int, fmt: str) -> None:
    """Add ``count`` rows to the request's tally (its access-log ``rows``) and to the counter.

    Exports call it as their rows stream, from their own worker threads; the tally is an int in
    the request's state, updated by one stream at a time.
    """
    state = scope.setdefault("state", {})
    state["rows"] = state.get("rows", 0) + count
    _child(ROWS_SERVED, str(scope.get("path_template") or "unmatched"), fmt).inc(count)


async def count_response(message: Message, scope: Scope) -> None:
    """``before_send`` hook: count and time the response (it runs for unmatched routes too)."""
    if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
        return
    route = str(scope.get("path_template") or "unmatched")
    state: dict[str, Any] = scope.get("state", {})
    started = state.get("started")
    method = scope["method"]
    _child(REQUESTS, method, route, str(message["status"])).inc()
    if started is not None:
        _child(LATENCY, method, route).observe(time.perf_counter() - started)


class InProgressMiddleware:
    """Counts the requests being answered now (matched routes: the others answer at once)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            IN_PROGRESS.dec()


def instrument_engine(engine: sa.Engine) -> None:
    """Time every statement on ``engine`` and track its checked-out connections."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _started(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        if context is not None:
            context._bridgehead_started = time.perf_counter()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _finished(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, _many: bool) -> None:
        started = getattr(context, "_bridgehead_started", None)
        if started is not None:
            STATEMENTS.labels(_operation(sql)).observe(time.perf_counter() - started)

    # A checkout can be refused after it began (the idle-connection ping finds a dead link and
    # raises), and the pool then checks the record in: only a counted checkout is uncounted.
    @sa.event.listens_for(engine, "checkout")
    def _checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        record.record_info["bh_in_use"] = True
        CONNECTIONS_IN_USE.inc()

    @sa.event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.record_info.pop("bh_in_use", False):
            CONNECTIONS_IN_USE.dec()


_OPERATIONS = {"select": "select", "with": "select", "insert": "insert", "update": "update", "delete": "delete"}


def observe_statement(sql: str, _parameters: Any, seconds: float) -> None:
    """A read ``Database`` ran on the driver's cursor, past SQLAlchemy's events: timed the same way."""
    STATEMENTS.labels(_operation(sql)).observe(seconds)


def _operation(sql: str) -> str:
    word = sql.lstrip(" (\n\t{").split(None, 1)[0].lower() if sql.strip() else ""
    return _OPERATIONS.get(word, "call" if word in ("exec", "execute", "call") else "other")


def _registry() -> CollectorRegistry:
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def metrics_handlers(extra: Collector | None = None) -> list[HTTPRouteHandler]:
    """``/metrics``; ``extra`` adds this app's own collector (the sync metrics of its state store)."""
    from gateway.readiness import UNGATED  # here: readiness imports the executor, which imports us

    own = CollectorRegistry(auto_describe=False)
    if extra is not None:
        own.register(extra)

    # Metrics answer while the database is down: that is when an operator needs them most. The
    # state store is read in a worker thread (sync_to_thread), never on the event loop.
    @get("/metrics", include_in_schema=False, sync_to_thread=True, opt=UNGATED)
    def metrics() -> Response[bytes]:
        body = generate_latest(_registry()) + (generate_latest(own) if extra is not None else b"")
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [metrics]
