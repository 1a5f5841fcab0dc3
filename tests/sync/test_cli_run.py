"""``bridgehead sync run``: one failing sync never hides the others, and the exit code says it failed."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from sync.connectors.shopify.fake import CostBucket, FakeShopify
from sync.sandbox import SandboxServer
from tests.conftest import demo_environ


def test_a_one_off_run_reports_every_sync_and_exits_1_when_one_failed(writable_db: Path, tmp_path: Path) -> None:
    fake = FakeShopify(bucket=CostBucket(maximum=1e9, restore_rate=1e9))
    with SandboxServer(fake) as server:
        env = {**demo_environ(writable_db), "BRIDGEHEAD_SHOPIFY_URL": server.url}
        state = ["--state-url", f"sqlite:///{tmp_path / 'state.db'}", "-c", str(DEMO_MAPPING_PATH)]
        fake.token = "rotated-by-the-merchant"  # every request is refused: each sync fails on its own
        failed = CliRunner().invoke(main, ["sync", "run", *state], env=env)
        assert failed.exit_code == 1, failed.output
        lines = [line for line in failed.output.splitlines() if " run " in line]
        assert [line.split(":")[0] for line in lines] == ["items", "stock", "customers"]
        items, stock, customers = lines
        assert " failed" in items and " failed" in customers and "Traceback" not in failed.output, failed.output
        assert "508 waiting on another sync" in stock  # its products never got there: it waits, no request
        fake.token = "sandbox-token"
        ok = CliRunner().invoke(main, ["sync", "run", *state], env=env)
    assert ok.exit_code == 0, ok.output
    assert len(fake.shop.products) == 200
