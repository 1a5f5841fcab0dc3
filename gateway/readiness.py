"""Readiness: whether the database answers, asked on a connection and a thread of its own, and the start-up gate.

``/health/ready`` must answer while every request worker and connection is busy
(twenty slow exports, a burst of reads), so its probe never uses theirs: one
connection of the database's probe pool, one worker, and a deadline, so a
database that went silent is a prompt 503 rather than a hung probe.

A gateway started while its database is down (``bridgehead serve`` during an
outage) does not exit: it listens, answers 503 with ``Retry-After`` on every data
route and on readiness, and keeps trying in the background. Once the database
answers, the mapping is checked against it (tables and columns, as ``serve``
does before it listens) and the gate opens; a mapping that does not match is
logged and ``on_mismatch`` is called (``serve`` stops then, as it would have at
start).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from gateway.exceptions import GatewayTimeout, ServiceUnavailable
from gateway.executor import DatabaseExecutor
from legacy_adapters.exceptions import DatabaseError, DatabaseUnavailable

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from legacy_adapters.database import Database
    from legacy_adapters.mapping.model import Mapping

__all__ = ("UNGATED", "Readiness")

log = structlog.get_logger("bridgehead.readiness")

UNGATED = {"ungated": True}
"""Route ``opt`` of the handlers that answer before the database does (health, docs, problem types)."""

_RETRY_S = (0.5, 1.0, 2.0, 5.0)
"""Waits between start-up attempts: quick at first, then every five seconds."""


class Readiness:
    def __init__(
        self,
        database: Database,
        mapping: Mapping,
        *,
        checked: bool = True,
        on_mismatch: Callable[[str], None] | None = None,
    ) -> None:
        self.database = database
        self.mapping = mapping
        self.checked = checked
        """The mapping was checked against the live database (or the caller vouches for it)."""
        self.failure: str | None = None
        """Why the gate will never open (the mapping does not match the database)."""
        self._on_mismatch = on_mismatch
        # A probe is a login at most and a SELECT 1: longer than a login may take is not ready.
        # (Probes are polled by load balancers that give up after a few seconds themselves.)
        probe_deadline = min(database.config.connect_timeout_s, database.config.request_deadline_s)
        self._worker = DatabaseExecutor(1, probe_deadline, name="bridgehead-ready")
        self._task: asyncio.Task[None] | None = None

    async def probe(self) -> None:
        """Return when the database answers now; else raise ``ServiceUnavailable`` (503, Retry-After)."""
        if not self.checked:
            raise self._waiting()
        try:
            await self._worker.run(self.database.probe)
        except GatewayTimeout:
            raise ServiceUnavailable("the database did not answer the readiness probe in time") from None

    async def guard(self, _connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        """Litestar guard: data routes answer 503 until the start-up check has passed.

        A coroutine so that Litestar awaits it on the loop (a plain function would be a thread hop per request).
        """
        if not self.checked and not handler.opt.get("ungated"):
            raise self._waiting()

    def _waiting(self) -> ServiceUnavailable:
        if self.failure:
            return ServiceUnavailable(f"the mapping does not match the database: {self.failure}")
        return ServiceUnavailable("the gateway is waiting for its database", headers={"Retry-After": "5"})

    async def start(self) -> None:
        """Startup hook: when not yet checked, keep trying in the background until the database answers."""
        if not self.checked:
            self._task = asyncio.get_running_loop().create_task(self._wait_for_database())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._worker.shutdown()

    async def _wait_for_database(self) -> None:
        attempt = 0
        while True:
            try:
                errors = await self._worker.run(self._check, deadline_s=self._check_deadline())
            except (DatabaseUnavailable, GatewayTimeout, ServiceUnavailable) as exc:
                if attempt == 0:  # the driver's own reason is logged by Database.errors()
                    log.warning("the database is not available yet; answering 503 until it is", reason=str(exc))
            except DatabaseError as exc:
                log.warning("the mapping could not be checked yet", reason=str(exc))
            else:
                if errors:
                    self.failure = "; ".join(errors)
                    log.error("the mapping does not match the database", findings=errors)
                    if self._on_mismatch is not None:
                        self._on_mismatch(self.failure)
                    return
                self.checked = True
                log.info("the database answers and the mapping matches it: serving")
                return
            await asyncio.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
            attempt += 1

    def _check(self) -> list[str]:
        from legacy_adapters.check import check_mapping

        self.database.probe()
        return [str(f) for f in check_mapping(self.mapping, self.database, thorough=False) if f.severity == "error"]

    def _check_deadline(self) -> float:
        # A probe, then one inspection query per mapped table.
        tables = sum(len(v.resources) for v in self.mapping.versions.values())
        return self.database.config.request_deadline_s * (2 + tables)
