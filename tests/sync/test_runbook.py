"""``bridgehead runbook``: the demo's pages have every section, name only real commands and no secret.

Every ``bridgehead …`` command a page tells the reader to run is walked through the
real click command tree: its subcommands must exist, its options must be options of
that command, and its positional arguments must fit.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from sync.config import load_sync_config
from sync.runbook import SECTIONS, env_references
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ

TOKEN_VALUE = "shpat-runbook-must-never-show-this"
_COMMAND = re.compile(r"`(bridgehead [^`]+)`")


def check_command(line: str) -> None:
    """Raise AssertionError unless ``line`` is a command the CLI accepts (placeholders allowed as values)."""
    words = shlex.split(line)
    assert words[0] == "bridgehead", line
    command: click.Command = main
    rest = words[1:]
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        assert rest[0] in command.commands, f"{line}: no command {rest[0]!r} under {command.name!r}"
        command, rest = command.commands[rest[0]], rest[1:]
    assert not isinstance(command, click.Group), f"{line}: {command.name!r} needs a subcommand"
    options = {name: p for p in command.params if isinstance(p, click.Option) for name in (*p.opts, *p.secondary_opts)}
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    positional = 0
    while rest:
        word, rest = rest[0], rest[1:]
        if word.startswith("-"):
            assert word in options, f"{line}: {command.name!r} has no option {word} (it has {sorted(options)})"
            if not options[word].is_flag:
                assert rest, f"{line}: {word} needs a value"
                rest = rest[1:]
        else:
            positional += 1
    wanted = sum(1 for a in arguments if a.required)
    assert wanted <= positional <= len(arguments), f"{line}: {positional} arguments, {command.name!r} takes {wanted}"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, demo_db_path: Path) -> dict[str, str]:
    """The demo's runbook, as CI generates it: `bridgehead runbook -c <demo mapping> -o DIR`."""
    folder = tmp_path_factory.mktemp("runbook")
    state = folder / "state.db"
    store = SyncStore.from_url(f"sqlite:///{state}")
    store.set_paused("customers", True)
    store.transition_alert("dlq_growth", "stock", True, sync="stock", message="stock: 4 dead-lettered records")
    store.db.dispose()
    env = {**demo_environ(demo_db_path), "BRIDGEHEAD_SHOPIFY_TOKEN": TOKEN_VALUE}
    result = CliRunner().invoke(
        main, ["runbook", "-c", str(DEMO_MAPPING_PATH), "-o", str(folder / "pages"), "--state-url", f"sqlite:///{state}"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(Path(line) for line in result.output.split())
    assert {"customers.md", "items.md", "stock.md"} <= {p.name for p in written}
    assert len(written) == len(load_sync_config(load_mapping(DEMO_MAPPING_PATH, env).sync).syncs)
    return {p.stem: p.read_text(encoding="utf-8") for p in written}


def test_every_page_has_every_section_in_order(pages: dict[str, str]) -> None:
    for name, text in pages.items():
        titles = re.findall(r"^## (.+)$", text, flags=re.M)
        assert titles == list(SECTIONS), f"{name}.md: sections {titles}"
        assert text.startswith(f"# Runbook: {name}\n")
        for section in re.split(r"^## .+$", text, flags=re.M)[1:]:
            assert section.strip(), f"{name}.md has an empty section"


def test_every_command_a_page_names_is_a_real_cli_command(pages: dict[str, str]) -> None:
    seen = set()
    for text in pages.values():
        for line in _COMMAND.findall(text):
            check_command(line)
            seen.add(" ".join(w for w in shlex.split(line)[1:3] if not w.startswith("-")))
    # What the issue asks each page to explain, each through its real command.
    for verb in ("sync pause", "sync resume", "sync dlq", "sync approve", "sync reject", "sync run", "sync history",
                 "sync status", "sync errors", "sync show", "sync approvals"):  # fmt: skip
        assert verb in seen, f"no page says how to use {verb}"


@pytest.mark.parametrize(
    "line",
    ["bridgehead sync frobnicate", "bridgehead sync pause", "bridgehead sync pause a b",
     "bridgehead sync run --only", "bridgehead sync run --colour red", "bridgehead sync dlq"],
)  # fmt: skip
def test_the_checker_refuses_commands_that_do_not_exist(line: str) -> None:
    with pytest.raises(AssertionError):
        check_command(line)


def test_the_stock_page_says_what_flows_where_field_by_field(pages: dict[str, str]) -> None:
    stock = pages["stock"]
    assert "One direction: **legacy `stock` → Shopify `inventory`**" in stock
    assert "| `quantity` | expression `on_hand - allocated`, rounded `floor` | `ONHAND`, `ALLOC` | legacy:" in stock
    assert "`inventory_item_id` of sync `items`'s record for `item_number` | `ITEMNO`" in stock
    assert "Runs every **30 s**" in stock and "Latency target: **60 s**" in stock
    assert (
        "/admin#/runbook/stock" in stock
        and "/admin#/dlq" in stock
        and "bridgehead_sync_lag_seconds" in stock
        and "`sync run finished`" in stock
    )
    items = pages["items"]
    assert "| `descriptionHtml` |" in items and "destination: sent when the record is created" in items
    assert "Records the run deleted come back" in items, "a mirror sync's rollback says what happens to deletes"


def test_credentials_are_named_never_shown(pages: dict[str, str]) -> None:
    for text in pages.values():
        assert TOKEN_VALUE not in text and "sandbox-token" not in text and "sandbox-client-secret" not in text
        assert "| `BRIDGEHEAD_DB_URL` | the legacy database | `database.url` |" in text
    for name in ("items", "stock", "customers"):
        assert "| `BRIDGEHEAD_SHOPIFY_TOKEN` | destination `shop` | `sync.destinations.shop.token` |" in pages[name]
        assert "BRIDGEHEAD_XERO_CLIENT_SECRET" not in pages[name], "another destination's credentials"
    xero = pages["xero_contacts"]
    assert "| `BRIDGEHEAD_XERO_CLIENT_SECRET` | destination `books` | `sync.destinations.books.client_secret` |" in xero
    assert "put them in `BRIDGEHEAD_XERO_CLIENT_SECRET`" in xero and "BRIDGEHEAD_SHOPIFY_TOKEN" not in xero
    refs = env_references(DEMO_MAPPING_PATH)
    assert refs["sync.destinations.shop.token"] == ["BRIDGEHEAD_SHOPIFY_TOKEN"]


def test_the_state_section_reads_the_store(pages: dict[str, str]) -> None:
    assert "- Paused: yes" in pages["customers"] and "- Paused: no" in pages["stock"]
    assert "Active alert `dlq_growth`" in pages["stock"] and "stock: 4 dead-lettered records" in pages["stock"]
    assert "- Active alerts: none" in pages["items"]


def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path, demo_db_path: Path) -> None:
    env: dict[str, Any] = demo_environ(demo_db_path)
    runner = CliRunner()
    unknown = runner.invoke(main, ["runbook", "-c", str(DEMO_MAPPING_PATH), "--sync", "nope", "-o", str(tmp_path)],
                            env=env)  # fmt: skip
    assert unknown.exit_code == 2 and "unknown sync 'nope'" in unknown.output
    bad = tmp_path / "bad.yaml"
    text = DEMO_MAPPING_PATH.read_text().replace("latency_target_s: 60", "latency_target_s: 5")
    bad.write_text(text)
    refused = runner.invoke(main, ["runbook", "-c", str(bad), "-o", str(tmp_path / "out")], env=env)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert f"{bad}: sync.syncs.stock.latency_target_s: 5 s is below interval_s (30 s)" in refused.output


def test_the_loop_serves_the_metrics_the_runbook_names(demo_db_path: Path) -> None:
    import socket

    import httpx

    from sync.cli import _serve_metrics
    from sync.metrics import SYNC_METRICS, observe_run

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        busy = CliRunner().invoke(main, ["sync", "run", "--loop", "--metrics-port", str(port), "-c",
                                         str(DEMO_MAPPING_PATH)], env=demo_environ(demo_db_path))  # fmt: skip
        assert busy.exit_code == 2 and f"cannot serve metrics on 127.0.0.1:{port}" in busy.output
    from sync.engine import RunReport

    observe_run(RunReport(1, "stock", status="succeeded"))
    server = _serve_metrics("127.0.0.1", 0)
    try:
        text = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics").text
    finally:
        server.shutdown()
        server.server_close()
    assert 'bridgehead_sync_runs_total{status="succeeded",sync="stock"}' in text
    for metric, _ in SYNC_METRICS:  # every name the runbook lists is one the loop serves
        assert f"# HELP {metric} " in text


def test_the_console_pages_a_runbook_names_are_the_consoles_own_routes() -> None:
    from sync.runbook import CONSOLE_PAGES

    static = Path(__file__).parents[2] / "gateway" / "console" / "static"
    tabs = set(re.findall(r'href="#/(\w+)"', (static / "console.html").read_text()))
    routes = tabs | set(re.findall(r'tab === "(\w+)"', (static / "console.js").read_text()))
    assert {"syncs", "dlq", "runs", "runbook"} <= routes
    for page in CONSOLE_PAGES.values():
        path, _, fragment = page.partition("#/")
        assert path == "/admin" and fragment.split("/")[0] in routes, f"{page}: not a console page"
