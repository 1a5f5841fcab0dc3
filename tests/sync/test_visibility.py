"""Seeing what happened (issue 12, item 11): history with errors and conflicts, per-record listings,
and a dry run that records nothing, shows only real changes and honours field ownership."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from legacy_adapters.demo import DEMO_MAPPING_PATH
from sync.cli import sync_group
from sync.connectors.shopify.fake import FakeShopify
from sync.plan import changed, same
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ
from tests.sync.test_demo_e2e import legacy


@pytest.fixture
def cli(writable_db: Path, tmp_path: Path) -> Any:
    """``bridgehead sync …`` on the demo mapping over the test's database and state store."""
    env = {**demo_environ(writable_db), "BRIDGEHEAD_SHOPIFY_URL": "http://127.0.0.1:9"}  # nothing listens there
    state = f"sqlite:///{tmp_path / 'state.db'}"

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(sync_group, [*args, "-c", str(DEMO_MAPPING_PATH), "--state-url", state], env=env)

    return invoke


def test_history_shows_the_error_text_and_conflict_counts(
    make_engine: Any, fake: FakeShopify, writable_db: Path, cli: Any
) -> None:
    engine = make_engine()
    engine.run_all(only="customers")
    custno = legacy(writable_db, "SELECT CUSTNO FROM CUSTMAST WHERE EMAIL LIKE '%@%' AND DELFLG = 'N' LIMIT 1")[0][0]
    customer = next(c for c in fake.shop.customers.values()
                    if c["metafields"][("bridgehead", "legacy_key")] == f'["{custno.strip()}"]')  # fmt: skip
    customer["email"], customer["updatedAt"] = "typed.in.shop@example.com", "2999-01-01T00:00:00+00:00"
    legacy(writable_db, "UPDATE CUSTMAST SET EMAIL = 'nightly@example.com' WHERE CUSTNO = ?", custno)
    (conflicted,) = engine.run_all(only="customers")
    fake.token = "rotated"
    legacy(writable_db, "UPDATE CUSTMAST SET CUSTNM = 'RENAMED' WHERE CUSTNO = ?", custno)
    (failed,) = engine.run_all(only="customers")
    result = cli("history", "--sync", "customers")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    failed_line = next(i for i, line in enumerate(lines) if line.startswith(f"#{failed.run_id} "))
    assert "failed" in lines[failed_line] and "HTTP 401" in lines[failed_line + 1]
    assert "conflicts 1" in next(line for line in lines if line.startswith(f"#{conflicted.run_id} "))
    listed = cli("conflicts", "--sync", "customers", "--key", custno.strip())
    assert "email" in listed.output and "typed.in.shop@example.com" in listed.output
    assert "1 conflict(s)" in listed.output
    assert "0 conflict(s)" in cli("conflicts", "--run", str(failed.run_id)).output


def test_per_record_errors_are_listed_by_sync_run_and_key(
    make_engine: Any, writable_db: Path, store: SyncStore, cli: Any
) -> None:
    bad, good = (r[0] for r in legacy(writable_db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 2"))
    legacy(writable_db, "UPDATE ITEMMAST SET PRICE = -10000 WHERE ITEMNO = ?", bad)  # the shop refuses it
    (report,) = make_engine().run_all(only="items")
    assert report.failed == 1
    by_key = cli("errors", "--sync", "items", "--key", bad.strip())
    assert by_key.exit_code == 0 and "INVALID" in by_key.output and "1 error(s)" in by_key.output
    assert "1 error(s)" in cli("errors", "--run", str(report.run_id)).output
    assert "0 error(s)" in cli("errors", "--key", good.strip()).output
    assert "0 error(s)" in cli("errors", "--run", str(report.run_id + 1)).output


def test_dry_run_records_nothing_shows_real_changes_only_and_honours_ownership(
    make_engine: Any, writable_db: Path, store: SyncStore, cli: Any
) -> None:
    make_engine().run_all(only="items")
    runs = len(store.runs(limit=1000))
    itemno = legacy(writable_db, "SELECT ITEMNO FROM ITEMMAST ORDER BY ITEMNO LIMIT 1")[0][0]
    legacy(writable_db, "UPDATE ITEMMAST SET DESCR = 'RENAMED BRACKET' WHERE ITEMNO = ?", itemno)
    result = cli("run", "--dry-run", "--only", "items")
    assert result.exit_code == 0, result.output
    assert "would send 0 creates, 1 updates, 0 deletes" in result.output
    sample, _, rounded = next(line for line in result.output.splitlines() if itemno.strip() in line).partition(
        "  rounded: "
    )
    assert "variant.price" in rounded and "(round_half_even)" in rounded, "the cents rounding is shown"
    assert "title:" in sample and "'RENAMED BRACKET'" in sample
    assert "price" not in sample, "an unchanged price is not a change because it was stored as text"
    assert "descriptionHtml" not in sample, "the shop owns the description after create"
    assert len(store.runs(limit=1000)) == runs, "a dry run writes no history"
    assert store.pending("items") == 0, "nor anything to send"
    assert "1 updates" in cli("run", "--dry-run", "--only", "items").output, "and moves no cursor"


def test_dry_run_of_stock_shows_the_rounding(make_engine: Any, writable_db: Path, cli: Any) -> None:
    make_engine().run_all(only="items")
    result = cli("run", "--dry-run", "--only", "stock")
    assert result.exit_code == 0, result.output
    assert "rounded: quantity" in result.output and "(floor)" in result.output


def test_values_compare_as_stored() -> None:
    assert same("4136.3548", Decimal("4136.3548")) and same(7, "7.000") and same(["a", 1], ["a", Decimal(1)])
    assert not same("0012", "12"), "two texts compare as text: SKUs keep their zeros"
    assert not same("NaN", Decimal("NaN")) and not same(None, 0)
    assert changed({"price": Decimal("4136.3548")}, {"price": "4136.3548"}, ["price"]) == {}
