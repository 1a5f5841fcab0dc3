"""``bridgehead check`` and the pre-flight of ``bridgehead serve``, run as a user runs them.

Mappings and databases are private copies of the demo's, broken one way each.
``serve`` must refuse before it listens: uvicorn's ``run`` is replaced by a trap
that fails the test, so no server ever starts here.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from tests.conftest import JWT_SECRET

DEMO_YAML = DEMO_MAPPING_PATH.read_text(encoding="utf-8")


@pytest.fixture
def workdir(tmp_path: Path, demo_db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a copy of the demo database; commands run from it."""
    shutil.copyfile(demo_db_path, tmp_path / "legacy.db")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def trap(*args: Any, **kwargs: Any) -> None:
        pytest.fail("serve started a server although it should have refused")

    monkeypatch.setattr(uvicorn, "run", trap)
    monkeypatch.setattr(uvicorn.Server, "run", trap)


def run(workdir: Path, *args: str, mapping: str = DEMO_YAML, db_url: str | None = None) -> Result:
    (workdir / "bridgehead.yaml").write_text(mapping, encoding="utf-8")
    env = {
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_DB_URL": db_url or f"sqlite:///{workdir / 'legacy.db'}",
    }
    result = CliRunner().invoke(main, [*args, "-c", "bridgehead.yaml"], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def broken(old: str, new: str) -> str:
    assert DEMO_YAML.count(old) == 1, old
    return DEMO_YAML.replace(old, new)


def test_check_passes_the_demo_and_warns_about_dirty_rows(workdir: Path) -> None:
    result = run(workdir, "check")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    due = [line for line in lines if line.startswith("warning: versions.v1.resources.jobs.fields.due_date: ")]
    status = [line for line in lines if line.startswith("warning: versions.v1.resources.jobs.fields.status: ")]
    assert due and "sampled rows cannot be decoded (served as null)" in due[0] and "is not a YYYYMMDD date" in due[0]
    assert status and "unknown code 'X'" in status[0]
    assert not any(line.startswith("error:") for line in lines)
    assert lines[-1].startswith("bridgehead.yaml: 0 error(s), ")


def test_a_column_differing_only_by_case_says_did_you_mean(workdir: Path) -> None:
    result = run(workdir, "check", mapping=broken("column: DUEDT,", "column: DueDt,"))

    assert result.exit_code == 1
    assert (
        "error: versions.v1.resources.jobs.fields.due_date: column 'DueDt' is not in JOBMAST (did you mean 'DUEDT'?)"
        in result.stdout.splitlines()
    )
    # v2 inherits the field from v1 (extends), so the same column is wrong in both versions.
    assert "error: versions.v2.resources.jobs.fields.due_date: column 'DueDt'" in result.stdout
    assert "bridgehead.yaml: 2 error(s)" in result.stdout


def test_a_wrong_column_name_is_an_error_at_its_field(workdir: Path) -> None:
    result = run(workdir, "check", mapping=broken("rush: {column: RUSHFL,", "rush: {column: RUSHFLAG,"))

    assert result.exit_code == 1
    assert (
        "error: versions.v1.resources.jobs.fields.rush: column 'RUSHFLAG' is not in JOBMAST"
        in result.stdout.splitlines()
    )
    assert "did you mean" not in result.stdout


def test_a_missing_time_column_of_a_pair_is_named(workdir: Path) -> None:
    result = run(workdir, "check", mapping=broken("time_column: ORDTM", "time_column: ORDTIME"))

    assert result.exit_code == 1
    assert (
        "error: versions.v1.resources.jobs.fields.ordered_at: column 'ORDTIME' is not in JOBMAST"
        in result.stdout.splitlines()
    )


def test_a_missing_table_is_an_error(workdir: Path) -> None:
    result = run(workdir, "check", mapping=broken("table: JOBOPS", "table: JOBOPERATIONS"))

    assert result.exit_code == 1
    assert (
        "error: versions.v1.resources.operations.table: table 'JOBOPERATIONS' does not exist"
        in result.stdout.splitlines()
    )


def test_a_key_that_is_not_unique_names_the_repeated_value(workdir: Path) -> None:
    with sqlite3.connect(workdir / "legacy.db") as db:
        item, warehouse = db.execute("SELECT TRIM(ITEMNO), TRIM(WHSE) FROM STKBAL ORDER BY rowid LIMIT 1").fetchone()
        db.execute("INSERT INTO STKBAL SELECT * FROM STKBAL ORDER BY rowid LIMIT 1")

    result = run(workdir, "check")

    assert result.exit_code == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert line.startswith(
        "error: versions.v1.resources.stock.key: key (item_number,warehouse) is not unique; "
        f"repeated values include ({item!r}, {warehouse!r}): declare the fields that address one row"
    )
    # --quick checks only tables and columns, as serve does before it starts.
    assert run(workdir, "check", "--quick").exit_code == 0


def test_check_on_an_invalid_mapping_exits_2_with_the_path(workdir: Path) -> None:
    result = run(workdir, "check", mapping=broken("transform: yyyymmdd", "transform: yyyymmd"))

    assert result.exit_code == 2
    assert result.stderr.startswith(
        "bridgehead: invalid mapping: bridgehead.yaml: versions.v1.resources.jobs.fields.due_date.transform: "
        "unknown transform 'yyyymmd'"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("oracle://scott:Hunter2-secret@legacy-db/JOBSHOP", "cannot open database.url: unsupported database 'oracle'"),
        ("this is not a url", "cannot open database.url: Could not parse"),
        # No ODBC driver manager on this machine: still one line, and never the password.
        ("mssql+pyodbc://sa:Hunter2-secret@legacy-sql/JOBSHOP?driver=ODBC+Driver+18", ""),
    ],
)
def test_check_on_an_unusable_database_is_one_line_without_the_password(workdir: Path, url: str, reason: str) -> None:
    result = run(workdir, "check", db_url=url)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"bridgehead: {reason}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Hunter2" not in result.output


def test_serve_refuses_an_invalid_mapping(workdir: Path) -> None:
    result = run(workdir, "serve", mapping=broken("type: date, transform: yyyymmdd", "type: date, tranform: yyyymmdd"))

    assert result.exit_code == 2
    assert result.stderr == (
        "bridgehead: invalid mapping: bridgehead.yaml: versions.v1.resources.jobs.fields.due_date: "
        "unknown key 'tranform'\n"
    )


def test_serve_refuses_a_missing_environment_variable_without_starting(workdir: Path) -> None:
    (workdir / "bridgehead.yaml").write_text(DEMO_YAML, encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "-c", "bridgehead.yaml"], env={"BRIDGEHEAD_JWT_SECRET": None})

    assert result.exit_code == 2
    assert result.stderr == (
        "bridgehead: invalid mapping: bridgehead.yaml: auth.hs256_secret: "
        "environment variable BRIDGEHEAD_JWT_SECRET is not set\n"
    )


def test_serve_refuses_a_mapping_whose_column_is_missing(workdir: Path) -> None:
    result = run(workdir, "serve", mapping=broken("column: QTY,", "column: QUANTITY,"))

    assert result.exit_code == 2
    assert result.stderr.startswith("bridgehead: the mapping does not match the database:\n")
    assert "error: versions.v1.resources.jobs.fields.quantity: column 'QUANTITY' is not in JOBMAST" in result.stderr


def test_serve_starts_waiting_when_the_database_is_unreachable(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart during an outage must not crash-loop: serve listens and answers 503 until the database is back."""
    served: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, *_: served.append(server.config.app))

    result = run(workdir, "serve", db_url=f"sqlite:///{workdir / 'no-such-folder' / 'legacy.db'}")

    assert result.exit_code == 0, result.output
    assert "the database is not available; serving 503 until it answers" in result.stderr
    assert len(served) == 1
    assert served[0].state["ctx"].readiness.checked is False
