"""``bridgehead sync run``: one failing sync never hides the others, and the exit code says it failed.

The demo syncs into both sandboxes (fake Shopify and fake Xero on one port), as the README shows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.connectors.xero.fake import FakeXero
from sync.sandbox import Sandboxes, SandboxServer
from tests.conftest import demo_environ

SYNCS = ["items", "stock", "customers", "xero_contacts", "xero_items", "xero_invoices"]


def test_a_one_off_run_reports_every_sync_and_exits_1_when_one_failed(writable_db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(writable_db) as conn:  # 200 jobs are plenty of invoices (and keep the run short)
        conn.execute("DELETE FROM JOBMAST WHERE JOBNO > 'J000200'")
    conn.close()
    fake = FakeShopify(bucket=CostBucket(maximum=1e9, restore_rate=1e9))
    xero = FakeXero()
    with SandboxServer(Sandboxes(fake, xero)) as server:
        env = {**demo_environ(writable_db), "BRIDGEHEAD_SHOPIFY_URL": server.url, "BRIDGEHEAD_XERO_URL": server.url,
               "BRIDGEHEAD_XERO_IDENTITY_URL": server.url}  # fmt: skip
        state = ["--state-url", f"sqlite:///{tmp_path / 'state.db'}", "-c", str(DEMO_MAPPING_PATH)]
        fake.token = "rotated-by-the-merchant"  # every request is refused: each sync fails on its own
        xero.client_secret = "rotated-by-the-bookkeeper"
        failed = CliRunner().invoke(main, ["sync", "run", *state], env=env)
        assert failed.exit_code == 1, failed.output
        lines = [line for line in failed.output.splitlines() if " run " in line]
        assert [line.split(":")[0] for line in lines] == SYNCS
        items, stock, customers, contacts, _, _ = lines
        assert " failed" in items and " failed" in customers and "Traceback" not in failed.output, failed.output
        assert "508 waiting on another sync" in stock  # its products never got there: it waits, no request
        assert " failed" in contacts and "refused the client credentials" in contacts
        assert "rotated-by-the-bookkeeper" not in failed.output
        fake.token, xero.client_secret = "sandbox-token", "sandbox-client-secret"
        ok = CliRunner().invoke(main, ["sync", "run", *state], env=env)
        status = CliRunner().invoke(main, ["sync", "status", *state], env=env)
    # Customers whose names clash in Xero (the demo has a few) are refused one by one: partially failed.
    assert ok.exit_code in (0, 1), ok.output
    assert len(fake.shop.products) == 200
    assert len(xero.org.items) == 200 and xero.org.contacts and xero.org.invoices
    assert status.exit_code == 0, status.output
    assert f"xero:{xero.tenant_id}" in status.output and "API usage" in status.output
