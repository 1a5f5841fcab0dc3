"""The operator's console in headless Chromium, against a real gateway whose syncs reach the fake shop.

Sign in by pasting a token, see a customer the shop refused in the dead-letter queue, fix the
legacy row, click Replay and Run now, and see the customer in the shop; approve a held run;
filter the audit trail. Nothing is fetched from the internet and the page runs under its CSP.

Set ``BRIDGEHEAD_CONSOLE_SCREENSHOT`` to a file name to keep the dead-letter screenshot.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec
import pytest
import stamina
import uvicorn

from gateway import create_app
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.state import StateDatabase
from tests.browser.conftest import OfflinePage, _free_port
from tests.conftest import TokenFactory, demo_environ


@dataclass
class Console:
    url: str
    fake: FakeShopify
    db: Path
    token: str

    def sql(self, statement: str, *args: Any) -> None:
        with sqlite3.connect(self.db) as conn:
            conn.execute(statement, args)

    def api(self, method: str, path: str) -> Any:
        answer = httpx.request(method, self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def console(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory, token: TokenFactory) -> Iterator[Console]:
    stamina.set_testing(True, attempts=3)
    folder = tmp_path_factory.mktemp("console-browser")
    db = folder / "demo.db"
    shutil.copyfile(demo_db_path, db)
    mapping = load_mapping(DEMO_MAPPING_PATH, demo_environ(db))
    port = _free_port()
    # An identity provider's login page on the same loopback address (answered by the browser test itself).
    assert mapping.auth is not None
    auth = msgspec.structs.replace(mapping.auth, login_url=f"http://127.0.0.1:{port}/idp/authorize",
                                   login_client_id="console-test")  # fmt: skip
    mapping = msgspec.structs.replace(mapping, auth=auth)
    fake = FakeShopify(bucket=CostBucket(maximum=1_000_000, restore_rate=1_000_000))
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    app = create_app(mapping, state=StateDatabase(f"sqlite:///{folder / 'state.db'}"), sync_http=http)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the gateway did not start"
    yield Console(f"http://127.0.0.1:{port}", fake, db, token("admin", sub="ops-alice"))
    server.should_exit = True
    thread.join(10)
    http.close()
    stamina.set_testing(False)


class ConsolePage(OfflinePage):
    """An offline page that also keeps every Content-Security-Policy violation the browser reports."""

    def __init__(self, page: Any, base: str) -> None:
        super().__init__(page, base)
        self.csp: list[str] = []
        page.on("console", self._message)

    def _message(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[ConsolePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield ConsolePage(context.new_page(), console.url)
    context.close()


def _sign_in(page: Any, console: Console) -> None:
    page.goto(f"{console.url}/admin")
    page.locator("#token").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who", has_text="ops-alice").wait_for()


def test_a_dead_letter_is_fixed_replayed_and_delivered(page: ConsolePage, console: Console) -> None:
    # What the loop would have done: the catalogue and stock once, then three customer runs, one customer
    # refused by the shop each time (max_attempts: 3) until it is dead-lettered.
    console.sql("UPDATE CUSTMAST SET EMAIL = 'orders2(at)summit' WHERE TRIM(CUSTNO) = 'C0002'")
    for name in ("items", "stock", "customers", "customers", "customers"):
        console.api("POST", f"/admin/syncs/{name}/run")
    p: Any = page.page
    p.goto(f"{console.url}/admin")
    assert p.locator("#signin").is_visible()  # no token in this tab yet: the sign-in form
    _sign_in(p, console)
    customers = p.locator("section.sync[data-sync=customers]")
    customers.get_by_text("Dead letters: 1").wait_for()
    letter = p.locator("tr[data-key=C0002]")
    assert "Email is invalid" in letter.locator(".reason").inner_text()
    assert p.locator("svg[aria-label='Gateway requests'] rect").count() > 0
    assert p.locator("svg[aria-label='Sync records'] rect[data-series=done]").count() > 0
    shot = Path(os.environ.get("BRIDGEHEAD_CONSOLE_SCREENSHOT") or console.db.with_name("console-dlq.png"))
    p.screenshot(path=str(shot), full_page=True)

    console.sql("UPDATE CUSTMAST SET EMAIL = 'orders2@summit.example.com' WHERE TRIM(CUSTNO) = 'C0002'")
    letter.get_by_role("button", name="Replay").click()
    p.locator("#flash", has_text="Replay C0002: done").wait_for()
    assert p.locator("tr[data-key=C0002]").count() == 0
    customers.get_by_role("button", name="Run now").click()
    p.locator("#flash", has_text="Run customers: done").wait_for()
    assert "orders2@summit.example.com" in {c["email"] for c in console.fake.shop.customers.values()}
    assert p.locator("section.sync[data-sync=customers]").get_by_text("Dead letters: 0").is_visible()
    last = p.locator("section.sync[data-sync=customers] tbody tr").first
    assert "succeeded" in last.inner_text()
    # The run's row-level outcome: what was sent and what the shop answered.
    last.locator("a").click()
    p.locator("#outcome-search input[name=key]").fill("C0002")
    p.locator("#outcome-search button").click()
    row = p.locator("#view[data-loaded*='key=C0002'] tr[data-key=C0002]")
    row.locator(".badge", has_text="created").wait_for()
    row.locator("summary", has_text="request").click()
    from playwright.sync_api import expect  # imported here: without Playwright the module still collects

    expect(row.locator("details[open] pre")).to_contain_text("orders2@summit.example.com")
    assert page.blocked == [] and page.csp == []


def test_each_sync_links_its_runbook(page: ConsolePage, console: Console) -> None:
    p: Any = page.page
    _sign_in(p, console)
    p.locator("section.sync[data-sync=stock] a.runbook").click()
    article = p.locator("article.runbook-page[data-sync=stock]")
    article.locator("h2", has_text="Replay dead letters").wait_for()
    assert article.locator("h2", has_text="Reconnect").count() == 1
    assert page.blocked == [] and page.csp == []


def test_a_held_run_is_approved_in_the_console(page: ConsolePage, console: Console) -> None:
    console.api("POST", "/admin/syncs/items/run")
    console.sql("UPDATE ITEMMAST SET PRICE = PRICE + 10000")  # one dollar more on every item
    p: Any = page.page
    _sign_in(p, console)
    items = p.locator("section.sync[data-sync=items]")
    items.get_by_role("button", name="Run now").click()
    items.locator(".badge", has_text="awaiting approval").first.wait_for()
    held = p.locator("section.approval").first
    assert "variant.price" in held.inner_text()
    before = {p_["variants"][0]["price"] for p_ in console.fake.shop.products.values() if p_["variants"]}
    held.get_by_role("button", name="Approve and send").click()
    p.locator("#flash", has_text="done").wait_for()
    items.locator(".badge", has_text="active").wait_for()
    after = {p_["variants"][0]["price"] for p_ in console.fake.shop.products.values() if p_["variants"]}
    assert after != before
    (decided,) = [a for a in console.api("GET", "/admin/approvals?all=true")["data"] if a["decision"]]
    assert decided["decided_by"] == "ops-alice"


def test_the_audit_trail_is_filtered(page: ConsolePage, console: Console) -> None:
    console.api("POST", "/admin/syncs/stock/pause")
    console.api("POST", "/admin/syncs/stock/resume")
    p: Any = page.page
    _sign_in(p, console)
    p.get_by_role("link", name="Audit trail").click()
    p.locator("tr.audit-entry").first.wait_for()
    p.locator("#audit-filter input[name=action]").fill("pause")
    p.locator("#audit-filter button").click()
    p.wait_for_function("location.hash.includes('action=pause')")
    p.locator("#view[data-loaded*='action=pause'] tr.audit-entry").first.wait_for()
    rows = p.locator("tr.audit-entry").all_inner_texts()
    assert rows and all("pause" in r and "ops-alice" in r for r in rows)
    assert not any("resume" in r for r in rows)


def test_sign_in_through_the_identity_provider(page: ConsolePage, console: Console) -> None:
    p: Any = page.page
    asked: list[dict[str, str]] = []

    def identity_provider(route: Any) -> None:
        # The IdP's part: it signs the user in and sends the browser back with the token in the fragment.
        query = dict(parse_qsl(urlsplit(route.request.url).query))
        asked.append(query)
        back = f"{query['redirect_uri']}#access_token={console.token}&token_type=Bearer&state={query['state']}"
        route.fulfill(status=302, headers={"Location": back})

    p.route("**/idp/authorize*", identity_provider)
    p.goto(f"{console.url}/admin")
    p.get_by_role("link", name="Sign in with the identity provider").click()
    p.locator("#who", has_text="ops-alice").wait_for()
    (query,) = asked
    assert query["response_type"] == "token" and query["client_id"] == "console-test"
    assert query["redirect_uri"] == f"{console.url}/admin" and "admin" in query["scope"].split()
    assert "access_token" not in p.url  # the token left the address bar (and the history)
    assert p.evaluate("sessionStorage.getItem('bridgehead.console.token')") == console.token


def test_a_forged_sign_in_answer_is_refused(page: ConsolePage, console: Console) -> None:
    p: Any = page.page
    p.goto(f"{console.url}/admin#access_token={console.token}&state=not-what-this-tab-asked")
    p.locator("#signin-error", has_text="did not match").wait_for()
    assert p.evaluate("sessionStorage.getItem('bridgehead.console.token')") is None


def test_a_token_without_admin_is_refused_at_sign_in(page: ConsolePage, console: Console, token: TokenFactory) -> None:
    p: Any = page.page
    p.goto(f"{console.url}/admin")
    p.locator("#token").fill(token("jobs:read", sub="reader"))
    p.get_by_role("button", name="Sign in").click()
    p.locator("#signin-error", has_text="admin").wait_for()
    assert p.locator("#tabs").is_hidden()
    csp = httpx.get(f"{console.url}/admin").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
