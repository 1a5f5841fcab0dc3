"""Uvicorn factories for the servers the benchmark starts with ``--workers N``.

``bridgehead`` serves the bench copy of the demo mapping (``BENCH_MAPPING``) exactly as
``bridgehead serve`` would, auth on, except that uvicorn may run several workers, which
``bridgehead serve`` cannot yet (the lead owns gateway/cli.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ("bridgehead",)


def bridgehead() -> Litestar:
    from gateway.app import create_app
    from gateway.logging import configure_logging
    from legacy_adapters import load_mapping

    configure_logging(os.environ.get("BENCH_LOG_LEVEL", "warning"))
    return create_app(load_mapping(os.environ["BENCH_MAPPING"]))
