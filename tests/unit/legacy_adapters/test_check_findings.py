"""``bridgehead check`` refuses what cannot be served honestly, and warns on decodes that only look right.

One small table holds each trap once: a codec that fails on every row, one that
fails on a few (dirty data: a warning, or an error past ``--max-undecodable``),
sentinel years, HHMM times read as HHMMSS (all before 00:24), a constant, and
a field not marked nullable whose column holds NULLs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from legacy_adapters.check import Finding, check_mapping
from legacy_adapters.database import Database
from legacy_adapters.mapping.load import parse_mapping
from tests.conftest import JWT_SECRET, MAPPING_PREAMBLE

ROWS = 100
MAPPING = (
    MAPPING_PREAMBLE
    + """\
versions:
  v1:
    resources:
      things:
        table: THINGS
        key: key
        scopes: {read: "things:read"}
        fields:
          key: {column: K, type: integer}
          created: {column: CRTDT, type: date, date: yymmdd}
          promised: {column: PROMDT, type: date, date: yyyymmdd}
          due: {column: DUEDT, type: date, date: yyyymmdd}
          far: {column: FARDT, type: date, date: cyymmdd}
          at: {column: ORDTM, type: time, time: hhmmss}
          company: {column: CO, type: string, transform: trim, length: 2}
          region: {column: REGION, type: string}
"""
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "things.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE THINGS (K INTEGER NOT NULL PRIMARY KEY, CRTDT NUMERIC(7,0) NOT NULL,"
            " PROMDT NUMERIC(8,0) NOT NULL, DUEDT NUMERIC(8,0) NOT NULL, FARDT NUMERIC(7,0) NOT NULL,"
            " ORDTM NUMERIC(4,0) NOT NULL, CO CHAR(2) NOT NULL, REGION VARCHAR(3))"
        )
        conn.executemany(
            "INSERT INTO THINGS VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    n,
                    1240101 + n,  # CYYMMDD mapped as YYMMDD: seven digits, never decodes
                    18000101 if n % 10 == 0 else 20250101 + n % 28,  # 1800-01-01: a sentinel nobody declared
                    20230231 if n in (3, 4, 5) else 20250101 + n % 28,  # 3% impossible: dirty data
                    2990101 + n % 28,  # C=2: January 2199, a wrong century digit or a wrong codec
                    700 + n % 60,  # HHMM read as HHMMSS: 00:07:00 .. 00:07:59
                    "01",  # one company in every row
                    None if n == 50 else "NE",  # one NULL in a field not marked nullable
                )
                for n in range(ROWS)
            ],
        )
    return path


def _environ(db: Path) -> dict[str, str]:
    return {
        "BRIDGEHEAD_DB_URL": f"sqlite:///{db}",
        "BRIDGEHEAD_JWT_SECRET": JWT_SECRET,
        "BRIDGEHEAD_STATE_URL": f"sqlite:///{db.with_name('state.db')}",
    }


def _findings(db: Path, **options: float) -> dict[str, list[Finding]]:
    mapping = parse_mapping(MAPPING, environ=_environ(db))
    database = Database(mapping.database)
    try:
        findings = check_mapping(mapping, database, **options)
    finally:
        database.dispose()
    by_field: dict[str, list[Finding]] = {}
    for finding in findings:
        by_field.setdefault(finding.path.rpartition(".")[2], []).append(finding)
    return by_field


def test_a_field_undecodable_in_every_row_is_an_error(db: Path) -> None:
    [finding] = _findings(db)["created"]
    assert finding.severity == "error"
    assert f"{ROWS} of {ROWS} sampled rows cannot be decoded" in finding.message
    assert "the field's encoding is wrong" in finding.message


def test_a_few_dirty_values_warn_and_the_threshold_is_configurable(db: Path) -> None:
    [finding] = _findings(db)["due"]
    assert finding.severity == "warning" and "3 of 100 sampled rows cannot be decoded" in finding.message
    [strict] = _findings(db, max_undecodable=0.01)["due"]
    assert strict.severity == "error" and "more than 1% of the rows" in strict.message


def test_plausible_looking_wrong_decodes_are_warned_about(db: Path) -> None:
    findings = _findings(db)
    assert [(f.severity, f.message) for f in findings["promised"]] == [
        ("warning", "10 sampled dates fall before 1900 (e.g. 1800-01-01): check the date codec")
    ]
    [far] = findings["far"]
    assert (
        far.severity == "warning" and f"{ROWS} sampled dates fall after" in far.message and "2199-01-28" in far.message
    )
    [times] = findings["at"]
    assert times.severity == "warning" and "every sampled time is before 00:24" in times.message
    assert "time: hhmm" in times.message
    [company] = findings["company"]
    assert company.severity == "warning" and f"every one of the {ROWS} sampled rows decodes to '01'" in company.message


def test_nulls_in_a_field_not_marked_nullable_are_an_error(db: Path) -> None:
    [finding] = _findings(db)["region"]
    assert finding.severity == "error"
    assert finding.message == "column 'REGION' holds 1 NULLs but the field is not nullable: add nullable: true"


def test_the_command_exits_non_zero_and_takes_the_threshold(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "things.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "-c", str(path)], env=_environ(db))
    assert result.exit_code == 1
    assert "error: versions.v1.resources.things.fields.created: 100 of 100 sampled rows" in result.output
    assert f"{path}: 2 error(s), 5 warning(s)" in result.output
    # Only the dirty-data finding moves with the threshold; a field failing on every row never passes.
    lenient = CliRunner().invoke(main, ["check", "-c", str(path), "--max-undecodable", "1"], env=_environ(db))
    assert f"{path}: 2 error(s), 5 warning(s)" in lenient.output
    strict = CliRunner().invoke(main, ["check", "-c", str(path), "--max-undecodable", "0"], env=_environ(db))
    assert f"{path}: 3 error(s), 4 warning(s)" in strict.output
    bad = CliRunner().invoke(main, ["check", "-c", str(path), "--max-undecodable", "2"], env=_environ(db))
    assert bad.exit_code == 2 and "--max-undecodable" in bad.output


REGIONS = """\
      regions:
        table: REGIONS
        key: [code, manager]
        scopes: {read: "regions:read"}
        fields:
          code: {column: CODE, type: string}
          manager: {column: MGR, type: string}
"""


def _relation_findings(db: Path, many: str) -> list[Finding]:
    relation = f'        relations:\n          home: {{resource: regions, "on": {{region: code}}, many: {many}}}\n'
    mapping = parse_mapping(
        MAPPING.replace("    resources:\n", "    resources:\n" + REGIONS) + relation, environ=_environ(db)
    )
    database = Database(mapping.database)
    try:
        return [f for f in check_mapping(mapping, database) if f.path.endswith(".relations.home")]
    finally:
        database.dispose()


def test_a_to_one_relation_matching_several_rows_is_an_error(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE REGIONS (CODE VARCHAR(3) NOT NULL, MGR VARCHAR(10) NOT NULL)")
        conn.executemany("INSERT INTO REGIONS VALUES (?, ?)", [("NE", "ann"), ("NE", "bob"), ("SW", "cy")])
    [finding] = _relation_findings(db, "false")
    assert finding.severity == "error"
    assert finding.message.startswith("many: false, but several regions rows share (code), e.g. ('NE',)")
    assert _relation_findings(db, "true") == []
