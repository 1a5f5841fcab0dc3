"""The server stack ``serve`` runs on: uvloop and httptools where they are installed.

Measured on ``GET /v1/jobs/{key}`` (2 cores), asyncio + h11 served about half the requests
per second of uvloop + httptools; both are dependencies on Linux and macOS, so every install
path (pip, ``make demo``, docker) gets them. Windows has no uvloop: asyncio is used there.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import structlog

__all__ = ("server_stack",)

log = structlog.get_logger("bridgehead.server")


def server_stack() -> dict[str, Literal["uvloop", "asyncio", "httptools", "h11"]]:
    """uvicorn's ``loop`` and ``http`` options: the fastest implementation that imports here."""
    loop: Literal["uvloop", "asyncio"] = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http: Literal["httptools", "h11"] = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if (loop, http) != ("uvloop", "httptools"):
        log.warning("slower server stack", loop=loop, http=http, hint="pip install uvloop httptools")
    return {"loop": loop, "http": http}
