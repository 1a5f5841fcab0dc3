"""The ``sync.alert`` section is checked when the mapping loads (file and key named), and ``sync status``
shows the alerts; the webhook signature holds for any body and secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from sync.alerts.delivery import signature, verify_signature
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ

DEMO_ALERT = """  alert:
    after_failures: 3          # failing runs in a row"""


def _mapping_with(tmp_path: Path, alert: str) -> Path:
    text = DEMO_MAPPING_PATH.read_text()
    start = text.index(DEMO_ALERT)
    end = text.index("  destinations:", start)
    path = tmp_path / "bridgehead.yaml"
    path.write_text(text[:start] + alert + text[end:])
    return path


@pytest.mark.parametrize(
    ("alert", "error"),
    [
        ("  alert: {webhook_url: 'https://hooks.example/x'}\n",
         "sync.alert.webhook_secret: a webhook needs a signing secret"),
        ("  alert: {webhook_url: 'ftp://hooks.example/x', webhook_secret: s}\n",
         "sync.alert.webhook_url: an http:// or https:// URL"),
        ("  alert: {email: {host: smtp.example.com, sender: a@example.com}}\n",
         "sync.alert.email.to: at least one recipient"),
        ("  alert: {email: {host: smtp.example.com, sender: a@example.com, to: ['ops']}}\n",
         "sync.alert.email.to[0]: not an e-mail address: 'ops'"),
        ("  alert: {email: {host: smtp.example.com, sender: a@example.com, to: [o@x.io], username: u}}\n",
         "sync.alert.email.username: give both username and password, or neither"),
        ("  alert: {email: {host: smtp.example.com, port: 70000, sender: a@example.com, to: [o@x.io]}}\n",
         "sync.alert.email.port: a TCP port"),
        ("  alert: {after_failures: 0}\n", "sync.alert.after_failures: must be 1 or more"),
        ("  alert: {dlq_threshold: -1}\n", "sync.alert.dlq_threshold: must be 0 or more"),
        ("  alert: {count_history: 2}\n", "sync.alert.count_history: at least 3 runs"),
        ("  alert: {after_failure: 3}\n", "sync.alert: Object contains unknown field 'after_failure'"),
        ("  alert: {tick_s: 0}\n", "sync.alert.tick_s: must be above 0"),
    ],
)  # fmt: skip
def test_a_bad_alert_section_names_the_file_and_the_key(
    tmp_path: Path, demo_db_path: Path, alert: str, error: str
) -> None:
    path = _mapping_with(tmp_path, alert)
    result = CliRunner().invoke(main, ["sync", "status", "-c", str(path)], env=demo_environ(demo_db_path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"bridgehead: invalid mapping: {path}: {error}" in result.output


def test_a_per_sync_mute_of_an_unknown_kind_is_refused(tmp_path: Path, demo_db_path: Path) -> None:
    text = DEMO_MAPPING_PATH.read_text().replace(
        "      latency_target_s: 60\n", "      latency_target_s: 60\n      alert: {mute: [lagg]}\n"
    )
    path = tmp_path / "bridgehead.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["sync", "status", "-c", str(path)], env=demo_environ(demo_db_path))
    assert result.exit_code == 2 and f"{path}: sync.syncs.stock.alert.mute[0]" in result.output


def test_empty_channel_variables_turn_the_channels_off(tmp_path: Path, demo_db_path: Path) -> None:
    env = {**demo_environ(demo_db_path), "BRIDGEHEAD_ALERT_WEBHOOK_URL": "https://hooks.example/x"}
    refused = CliRunner().invoke(main, ["sync", "status", "-c", str(DEMO_MAPPING_PATH)], env=env)
    assert refused.exit_code == 2 and "sync.alert.webhook_secret" in refused.output, "a URL without its secret"
    env["BRIDGEHEAD_ALERT_WEBHOOK_SECRET"] = "s3cret"
    assert CliRunner().invoke(main, ["sync", "status", "-c", str(DEMO_MAPPING_PATH)], env=env).exit_code == 0


def test_sync_status_shows_the_active_alerts_and_a_destination_to_reconnect(tmp_path: Path, demo_db_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = SyncStore.from_url(url)
    store.set_grant("shop", "reconnect_needed", "token revoked")
    store.transition_alert("reconnect_needed", "shop", True, destination="shop", sync="items",
                           message="shop: must be reconnected (token revoked)")  # fmt: skip
    store.transition_alert("lag", "stock", True, sync="stock", message="stock: last successful run started 75 s ago")
    store.db.dispose()
    result = CliRunner().invoke(main, ["sync", "status", "-c", str(DEMO_MAPPING_PATH), "--state-url", url],
                                env=demo_environ(demo_db_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert next(line for line in lines if line.startswith("stock ")).split()[1] == "reconnect"
    assert "2 active alert(s):" in lines
    assert any(line.split()[:2] == ["lag", "stock"] and "75 s ago" in line for line in lines)
    assert any(line.split()[:2] == ["reconnect_needed", "shop"] for line in lines)


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=200), flip=st.integers(0, 10_000))
def test_a_signature_verifies_its_body_only(secret: str, body: bytes, flip: int) -> None:
    header = signature(secret, body, 1_700_000_000)
    assert verify_signature(secret, body, header, now=1_700_000_000)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not verify_signature(secret, changed, header, now=1_700_000_000)
    assert not verify_signature(secret + "x", body, header, now=1_700_000_000)
