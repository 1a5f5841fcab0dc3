"""``/docs`` renders every API version's operations from assets in the wheel, with no internet."""

from __future__ import annotations

import os
from typing import Any

from legacy_adapters.mapping import Mapping
from tests.browser.conftest import OfflinePage

# Swagger UI draws a deprecated operation's path (all of v1's: v2 succeeds it) under a class of its own.
PATHS = ".opblock-summary-path, .opblock-summary-path__deprecated"


def test_docs_render_offline_with_every_version(
    offline_page: OfflinePage, live_gateway: str, demo_mapping: Mapping
) -> None:
    page: Any = offline_page.page
    page.goto(f"{live_gateway}/docs", wait_until="networkidle")
    page.wait_for_selector(PATHS, timeout=60_000)
    # The newest version opens first: it is the one new clients should read.
    assert "/v2/item_costs" in rendered_paths(page)
    page.select_option(".topbar select", label="v1")
    page.locator(PATHS, has_text="/v1/jobs").first.wait_for(timeout=60_000)
    paths = rendered_paths(page)
    assert {"/v1/jobs", "/v1/jobs/{key}"} <= paths
    assert not any(p.startswith("/v2/") or "item_costs" in p for p in paths)  # v2's split is v2's alone
    assert offline_page.blocked == []  # nothing was even asked of the internet
    assert offline_page.failed == []
    # The version switcher lists every version of the mapping; each renders its own operations.
    options = page.locator(".topbar select option").all_inner_texts()
    assert options == list(demo_mapping.versions)
    for version in demo_mapping.versions:
        page.select_option(".topbar select", label=version)
        page.locator(PATHS, has_text=f"/{version}/jobs").first.wait_for(timeout=60_000)
        assert page.locator(".topbar select").input_value().endswith(f"/openapi/{version}.json")
        assert {f"/{version}/jobs", f"/{version}/jobs/{{key}}"} <= rendered_paths(page)
    if shot := os.environ.get("BRIDGEHEAD_DOCS_SCREENSHOT"):  # for a look by eye: a PNG of the last version
        page.screenshot(path=shot, full_page=False)


def rendered_paths(page: Any) -> set[str]:
    """The operation paths Swagger UI has drawn (it puts zero-width spaces after slashes)."""
    return {p.strip().replace("\u200b", "") for p in page.locator(PATHS).all_inner_texts()}


def test_docs_assets_are_a_fixed_list(live_gateway: str) -> None:
    import httpx

    css = httpx.get(f"{live_gateway}/docs/assets/swagger-ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for probe in ("..%2F..%2Fpyproject.toml", "index.html", "swagger-ui.js.map"):
        answer = httpx.get(f"{live_gateway}/docs/assets/{probe}")
        assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
    page = httpx.get(f"{live_gateway}/docs")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "cdn." not in page.text and "https://" not in page.text
