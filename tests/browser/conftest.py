"""A real gateway on 127.0.0.1 and Debian's Chromium driven by Playwright, with no internet.

Every request the page makes to anything but the gateway is aborted and recorded, so a test
sees exactly what an air-gapped factory network would show.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from legacy_adapters.mapping import Mapping
from tests.conftest import service_unavailable

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_gateway(demo_mapping: Mapping) -> Iterator[str]:
    """The demo app served by uvicorn in a thread on a free loopback port."""
    from gateway import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(demo_mapping), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the gateway did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


class OfflinePage:
    """A Chromium page whose requests beyond the gateway are refused, as without internet."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.blocked: list[str] = []
        self.failed: list[str] = []
        page.route("**/*", self._route)
        page.on("requestfailed", lambda request: self.failed.append(request.url))

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it is
    # open, and later tests that call asyncio.run() would find it.
    if not CHROMIUM.exists():
        service_unavailable("Debian's chromium is not installed (scripts/setup-browser installs it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("the playwright package is not installed (make test installs the test extra)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def offline_page(browser: Any, live_gateway: str) -> Iterator[OfflinePage]:
    context = browser.new_context()
    page = context.new_page()
    yield OfflinePage(page, live_gateway)
    context.close()
