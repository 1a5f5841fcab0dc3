"""``databases:`` and ``migration:`` in the mapping, the clean table's DDL per dialect, and the resumable copy.

The copy here runs SQLite -> SQLite (no server needed); tests/db/test_migration_*.py run
it against PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import mssql, postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from legacy_adapters.database import Database
from legacy_adapters.demo import MIGRATION_MAPPING_PATH, create_demo_database
from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping import Mapping, load_mapping, parse_mapping
from legacy_adapters.migration.copy import copy_rows, verify_rows
from legacy_adapters.migration.routing import RoutedReader, open_databases, translate_position
from legacy_adapters.query.resource import bind_version
from legacy_adapters.reader import ReadQuery

SECRET = "a-secret-value-that-must-never-be-echoed-32b"
ENV = {"JWT_SECRET": SECRET}

BASE = """\
databases:
  legacy: {url: "sqlite:///legacy.db"}
  core: {url: "sqlite:///core.db"}
auth: {hs256_secret: "${JWT_SECRET}"}
versions:
  v1:
    resources:
      jobs:
        database: legacy
        table: JOBMAST
        key: job_number
        migration: {to: core, phase: shadow}
        fields:
          job_number: {column: JOBNO, type: string, transform: trim, length: 10}
          status: {column: JSTAT, type: string, transform: trim, map: {R: released, H: on_hold}}
"""


def parse(text: str) -> Mapping:
    return parse_mapping(text, source="bridgehead.yaml", environ=ENV)


def test_several_databases_fill_the_default_one() -> None:
    mapping = parse(BASE)
    assert mapping.database.url == "sqlite:///legacy.db" and set(mapping.databases) == {"legacy", "core"}
    assert mapping.versions["v1"].resources["jobs"].phase == "shadow"
    single = parse(BASE.replace("databases:\n  legacy: {url: \"sqlite:///legacy.db\"}\n  core: {url: \"sqlite:///core.db\"}\n",
                                "database: {url: \"sqlite:///one.db\"}\n").replace("        database: legacy\n", "")
                   .replace("        migration: {to: core, phase: shadow}\n", ""))  # fmt: skip
    assert single.database.url == "sqlite:///one.db" and single.databases == {}


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (("databases:", "database: {url: x}\ndatabases:"), "databases", "not both"),
        (("database: legacy", "database: archive"), "versions.v1.resources.jobs.database",
         "unknown database 'archive'"),
        (("{to: core, phase: shadow}", "{to: nowhere}"), "versions.v1.resources.jobs.migration.to", "unknown database"),
        (("{to: core, phase: shadow}", "{to: legacy}"), "versions.v1.resources.jobs.migration.to", "already lives"),
        (("{to: core, phase: shadow}", "{to: core, phase: cut_over}"), "versions.v1.resources.jobs.migration",
         "'cut_over' is not one of legacy, shadow, dual_write, cutover"),
        (("{to: core, phase: shadow}", "{to: core, shadow_sample: 2}"),
         "versions.v1.resources.jobs.migration.shadow_sample", "<= 1"),
        (("{to: core, phase: shadow}", "{to: core, actions: {close: {sql: x}}}"),
         "versions.v1.resources.jobs.migration.actions.close", "no action 'close'"),
        (("{to: core, phase: shadow}", "{to: core, tabel: x}"), "versions.v1.resources.jobs.migration", "tabel"),
    ],
)  # fmt: skip
def test_config_errors_name_file_and_path(change: tuple[str, str], path: str, words: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse(BASE.replace(*change))
    message = str(caught.value)
    assert message.startswith("bridgehead.yaml: ") and path in message and words in message, message
    assert SECRET not in message


def test_cutover_needs_every_action_restated_for_the_clean_table() -> None:
    release = "{sql: \"UPDATE JOBMAST SET JSTAT = 'R' WHERE JOBNO = :j\", params: {j: job_number}}"
    text = BASE.replace("phase: shadow", "phase: cutover") + f"        actions:\n          release: {release}\n"
    with pytest.raises(MappingError, match=r"migration\.actions.*release.*before cutover"):
        parse(text)
    clean = "{release: {sql: \"UPDATE jobs SET status = 'released'\"}}"
    fixed = text.replace("{to: core, phase: cutover}", f"{{to: core, phase: cutover, actions: {clean}}}")
    assert parse(fixed).versions["v1"].resources["jobs"].phase == "cutover"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    tmp = tmp_path_factory.mktemp("migration-unit")
    create_demo_database(tmp / "demo.db", rows=150)
    environ = {
        "BRIDGEHEAD_JWT_SECRET": SECRET,
        "BRIDGEHEAD_DB_URL": f"sqlite:///{tmp / 'demo.db'}",
        "BRIDGEHEAD_CORE_URL": f"sqlite:///{tmp / 'core.db'}",
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
    }
    return load_mapping(MIGRATION_MAPPING_PATH, environ)


@pytest.fixture(scope="module")
def demo_reader(demo: Mapping) -> Iterator[RoutedReader]:
    reader = _reader(demo)
    yield reader
    reader.dispose()
    reader.database.dispose()


def _reader(mapping: Mapping) -> RoutedReader:
    return RoutedReader(
        mapping, open_databases(mapping, Database(mapping.database)), {"v1": bind_version(mapping, "v1")}
    )


def test_clean_table_ddl_compiles_for_tsql_and_postgresql(demo: Mapping) -> None:
    reader = _reader(demo)
    table = reader.routes["v1.jobs"].twin.table
    tsql = str(CreateTable(table).compile(dialect=mssql.dialect()))
    pg = str(CreateTable(table).compile(dialect=postgresql.dialect()))
    assert "job_number NVARCHAR(10) NOT NULL" in tsql and "PRIMARY KEY (job_number)" in tsql
    assert "bh_hidden BIT NOT NULL DEFAULT 0" in tsql and "bh_hidden BOOLEAN DEFAULT false NOT NULL" in pg
    assert "notes NVARCHAR(max) NULL" in tsql
    assert "ordered_at DATETIMEOFFSET" in tsql and "quantity NUMERIC(28, 2)" in tsql and "rush BIT" in tsql
    assert "status NVARCHAR(8)" in tsql  # the longest served code name, not the CHAR(1) code
    assert "due_date DATE" in pg and "ordered_at TIMESTAMP WITH TIME ZONE" in pg and "rush BOOLEAN" in pg
    indexes = {str(CreateIndex(i).compile(dialect=mssql.dialect())) for i in table.indexes}
    assert indexes == {"CREATE INDEX ix_jobs_customer_id ON jobs (customer_id)"}  # row filter and relation


def test_copy_resumes_after_a_kill_and_lists_undecodable_rows(demo: Mapping) -> None:
    reader = _reader(demo)
    route = reader.routes["v1.jobs"]
    source, target = reader.database_of("legacy"), reader.database_of("core")
    batches = 0

    def killed(n: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C (or kill) after two committed batches

    with pytest.raises(KeyboardInterrupt):
        copy_rows(route, source, target, batch_size=40, restart=True, progress=killed)
    report = copy_rows(route, source, target, batch_size=40)
    stored = int(source.scalar(sa.text("SELECT count(*) FROM JOBMAST")))  # soft-deleted rows too
    assert report.resumed_at == 80 and report.copied == stored - 80 > 0 and report.skipped == 0
    assert stored > report.source_rows  # the demo's soft-deleted jobs, copied as hidden rows
    checked = verify_rows(route, source, target)
    assert checked.ok and checked.compared == report.source_rows
    reasons = {(p.field, p.copied) for p in report.problems}
    assert ("status", True) in reasons and ("due_date", True) in reasons  # dirty rows: copied as null, listed
    assert len({p.key for p in report.problems}) == len(report.problems) >= 2
    # Running it again copies nothing twice.
    again = copy_rows(route, source, target, batch_size=40)
    assert again.copied == 0 and verify_rows(route, source, target).ok


def test_verify_names_the_rows_and_fields_that_differ(demo: Mapping) -> None:
    reader = _reader(demo)
    route = reader.routes["v1.customers"]
    source, target = reader.database_of("legacy"), reader.database_of("core")
    copy_rows(route, source, target, restart=True)
    with target.engine.begin() as conn:
        conn.execute(sa.text("UPDATE customers SET active = NOT active WHERE customer_id = 'C0001'"))
    checked = verify_rows(route, source, target)
    assert not checked.ok and checked.differences == [("C0001", ("active",))]


@given(st.lists(st.sampled_from(["-quantity", "ordered_at", "customer_id", "-job_number", "notes", "due_date"]),
                max_size=3, unique=True))  # fmt: skip
def test_cursor_positions_survive_the_trip_to_the_twin_and_back(demo_reader: RoutedReader, sort: list[str]) -> None:
    reader = demo_reader
    route = reader.routes["v1.jobs"]
    pairs = [(s.lstrip("-"), s.startswith("-")) for s in sort]
    pairs = [p for i, p in enumerate(pairs) if p[0] not in {q[0] for q in pairs[:i]}]
    legacy = route.legacy
    query = ReadQuery(legacy, tuple(legacy.fields.values()), sort=tuple((legacy.fields[n], d) for n, d in pairs))
    page = reader.page(query)
    assert page.last is not None
    there = translate_position(legacy, route.twin, pairs, page.last)
    back: Any = translate_position(route.twin, legacy, pairs, there)
    assert back == page.last


def test_migrate_cli_copies_verifies_and_replays(demo: Mapping, tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from click.testing import CliRunner

    from gateway.cli import main

    for name, url in (("BRIDGEHEAD_DB_URL", demo.database.url), ("BRIDGEHEAD_CORE_URL", demo.databases["core"].url)):
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("BRIDGEHEAD_JWT_SECRET", SECRET)
    monkeypatch.setenv("BRIDGEHEAD_STATE_URL", f"sqlite:///{tmp_path_factory.mktemp('cli') / 'state.db'}")
    runner = CliRunner()
    config = ["-c", str(MIGRATION_MAPPING_PATH)]
    copied = runner.invoke(main, ["migrate", "copy", "customers", "--to", "core", "--restart", *config])
    assert copied.exit_code == 0, copied.output
    assert "verify rows: legacy 23, clean 23, compared 23, differing 0: identical" in copied.output
    wrong = runner.invoke(main, ["migrate", "copy", "customers", "--to", "elsewhere", *config])
    assert wrong.exit_code == 2 and "migrates to 'core', not 'elsewhere'" in wrong.output
    unknown = runner.invoke(main, ["migrate", "copy", "items", *config])
    assert unknown.exit_code == 2 and "v1.items has no migration" in unknown.output
    requests = tmp_path_factory.mktemp("requests") / "requests.txt"
    requests.write_text("# recorded\n/v1/customers\n/v1/customers?sort=-credit_limit&limit=5\n/v1/customers/C0001\n")
    replayed = runner.invoke(main, ["migrate", "verify", "customers", "--requests", str(requests), *config])
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 3 requests on legacy and core: 3 identical, 0 different" in replayed.output
    with sa.create_engine(demo.databases["core"].url).begin() as conn:  # the copy goes stale
        conn.execute(sa.text("UPDATE customers SET credit_limit = credit_limit + 1 WHERE customer_id = 'C0001'"))
    stale = runner.invoke(main, ["migrate", "verify", "customers", *config])
    assert stale.exit_code == 1
    assert (
        "key C0001: credit_limit" in stale.output
        and "GET /v1/customers/C0001: body differs; etag differs" in stale.output
    )
    status = runner.invoke(main, ["migrate", "status", *config])
    assert "v1.jobs: legacy (legacy -> core, table jobs)" in status.output


def test_shadow_queue_is_bounded_and_never_waits() -> None:
    import threading

    from legacy_adapters.migration.shadow import MigrationStats, ShadowComparer

    mapping = parse(BASE.replace("phase: shadow", "phase: shadow, shadow_queue: 2"))
    resources = bind_version(mapping, "v1")
    reader = RoutedReader(mapping, open_databases(mapping, Database(mapping.database)), {"v1": resources})
    route = reader.routes["v1.jobs"]
    stats = MigrationStats()
    shadow = ShadowComparer(stats)
    release = threading.Event()

    def slow() -> int:
        release.wait(5)
        return 1

    for _ in range(10):  # one being compared, two queued, the rest dropped at once
        shadow.offer(route, "count", 1, slow)
    release.set()
    shadow.drain()
    counts = stats.of("v1.jobs")
    assert (
        counts["compared"] + counts["dropped"] == 10
        and counts["dropped"] >= 7
        and counts["matched"] == counts["compared"]
    )
    shadow.offer(route, "count", 1, lambda: 2)  # a difference is counted and kept without values
    shadow.offer(route, "count", 1, lambda: 1 / 0)  # a failing twin is counted, never raised
    shadow.drain()
    shadow.stop()
    counts = stats.of("v1.jobs")
    assert counts["differed"] == 1 and counts["failed"] == 1
    assert list(stats.recent) == [{"resource": "v1.jobs", "kind": "count", "key": "count", "fields": ["count"]}]


def test_shadow_compare_names_rows_fields_and_order(demo_reader: RoutedReader) -> None:
    from legacy_adapters.migration.shadow import compare
    from legacy_adapters.reader import Page

    route = demo_reader.routes["v1.jobs"]
    a, b = {"job_number": "J1", "status": "released"}, {"job_number": "J2", "status": "planned"}
    assert compare(route, "list", Page([a, b], None), Page([a, b], None)) == []
    assert compare(route, "list", Page([a, b], None), Page([b, a], None)) == [("order", ("rows in another order",))]
    changed = compare(route, "list", Page([a, b], ("x",)), Page([a, {**b, "status": None}], None))
    assert changed == [("J2", ("status",)), ("next_cursor", ("next_cursor",))]
    assert compare(route, "list", Page([a], None), Page([b], None)) == [
        ("J1", ("not in the new database's answer",)),
        ("J2", ("only in the new database's answer",)),
    ]
    assert compare(route, "get", (a, "e1"), (a, "e2")) == [("J1", ("etag",))]
    assert compare(route, "get", (a, "e1"), None) == [("J1", ("job_number", "status"))]
