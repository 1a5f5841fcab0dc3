"""Connectors are found by kind through the entry-point group; config errors name file and path."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.exceptions import MappingError
from sync.config import load_sync_config
from sync.connectors.registry import ENTRY_POINT_GROUP, UnknownKind, known_kinds, plugin
from tests.conftest import demo_environ


def test_shopify_and_xero_are_entry_points_with_their_own_outcome_tables() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared == {
        "shopify": "sync.connectors.shopify.plugin:PLUGIN",
        "xero": "sync.connectors.xero.plugin:PLUGIN",
    }
    assert {"shopify", "xero"} <= set(known_kinds())
    assert plugin("xero").outcomes["429:day"] == "pause" and plugin("xero").outcomes["element:ERROR"] == "dead_letter"
    assert plugin("shopify").outcomes["THROTTLED"] == "retry"
    with pytest.raises(UnknownKind, match="known: shopify, xero"):
        plugin("netsuite")


def _raw(kind: str, **extra: object) -> dict[str, object]:
    return {"destinations": {"erp": {"kind": kind, **extra}},
            "syncs": {"s": {"resource": "items", "destination": "erp", "object": "contact", "fields": {}}}}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        (_raw("netsuite"), "sync.destinations.erp.kind", "unknown destination kind 'netsuite' (known: shopify, xero)"),
        (_raw("xero", colour="blue"), "sync.destinations.erp", "colour"),
        (_raw("shopify", url="http://s", token="t"), "sync.syncs.s.object", "writes customer, inventory, product"),
    ],
)
def test_a_wrong_destination_names_file_and_path(raw: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        load_sync_config(raw, source="shop.yaml")
    assert caught.value.source == "shop.yaml" and caught.value.path.startswith(path)
    assert message in str(caught.value)


def test_the_cli_refuses_an_unknown_kind_with_file_and_path(writable_db: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(DEMO_MAPPING_PATH.read_text())
    raw["sync"]["destinations"]["books"]["kind"] = "quickbooks"
    mapping = tmp_path / "bridgehead.yaml"
    mapping.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = CliRunner().invoke(main, ["sync", "status", "-c", str(mapping)], env=demo_environ(writable_db))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{mapping}: sync.destinations.books.kind: unknown destination kind 'quickbooks'" in result.output
