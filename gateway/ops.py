"""Operations endpoints: liveness, readiness (the database answers, on its own connection), problem-type pages.

They answer before the database does (``UNGATED``): a gateway waiting for its
database at start-up still says it is alive and why it is not ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response, get
from litestar.params import FromPath

from gateway.exceptions import NotFound
from gateway.problems import PROBLEM_TYPES
from gateway.readiness import UNGATED

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from gateway.context import GatewayContext

__all__ = ("ops_handlers",)


def ops_handlers(ctx: GatewayContext) -> list[HTTPRouteHandler]:
    @get("/health/live", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", include_in_schema=False, opt=UNGATED)
    async def ready() -> dict[str, str]:
        await ctx.readiness.probe()  # not ready -> 503 with Retry-After
        return {"status": "ok", "database": "ok"}

    @get("/problems/{slug:str}", include_in_schema=False, sync_to_thread=False, opt=UNGATED)
    def problem_type(slug: FromPath[str]) -> Response[Any]:
        if slug not in PROBLEM_TYPES:
            raise NotFound(f"no problem type {slug!r}")
        return Response(f"{slug}: {PROBLEM_TYPES[slug]}\n", media_type=MediaType.TEXT)

    return [live, ready, problem_type]
