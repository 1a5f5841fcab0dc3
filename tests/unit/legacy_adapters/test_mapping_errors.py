"""Mistakes in bridgehead.yaml: each is refused with the file, the dotted path and a plain sentence.

A consultant editing the mapping never sees ``$[...]``, a Python type name or a
secret; the message says where the mistake is and what to write instead.
"""

from __future__ import annotations

import pytest

from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping import Mapping, parse_mapping

SECRET = "a-secret-value-that-must-never-be-echoed"
ENV = {"DB_URL": "sqlite:///legacy.db", "JWT_SECRET": SECRET}

BASE = """\
database:
  url: ${DB_URL}
auth:
  issuer: bridgehead
  hs256_secret: ${JWT_SECRET}
versions:
  v1:
    resources:
      jobs:
        table: JOBMAST
        key: job_number
        where: "DELFLG <> 'Y'"
        fields:
          job_number: {column: JOBNO, type: string, transform: trim}
          customer_id: {column: CUSTNO, type: string, transform: trim}
          due_date: {column: DUEDT, type: date, transform: yyyymmdd, null_if: [0, 99999999]}
          quantity: {column: QTY, type: decimal, scale: 2}
        relations:
          operations: {resource: operations, "on": {job_number: job_number}, many: true}
      operations:
        table: JOBOPS
        key: [job_number, sequence]
        fields:
          job_number: {column: JOBNO, type: string, transform: trim}
          sequence: {column: OPSEQ, type: integer}
        relations:
          job: {resource: jobs, "on": {job_number: job_number}, many: false}
"""


def parse(text: str, environ: dict[str, str] | None = None) -> Mapping:
    return parse_mapping(text, source="bridgehead.yaml", environ=ENV if environ is None else environ)


def refused(text: str, environ: dict[str, str] | None = None) -> MappingError:
    with pytest.raises(MappingError) as caught:
        parse(text, environ)
    error = caught.value
    assert error.source == "bridgehead.yaml"
    assert str(error).startswith("bridgehead.yaml: ")
    assert SECRET not in str(error)
    assert "$" not in error.path and "[...]" not in str(error)
    return error


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_the_base_mapping_is_valid() -> None:
    mapping = parse(BASE)
    assert set(mapping.versions["v1"].resources) == {"jobs", "operations"}


def test_unknown_transform_lists_the_known_ones() -> None:
    error = refused(edit("transform: yyyymmdd", "transform: yyyymmd"))

    assert error.path == "versions.v1.resources.jobs.fields.due_date.transform"
    assert error.message.startswith("unknown transform 'yyyymmd' (known: ")
    assert "yyyymmdd" in error.message and "cyymmdd" in error.message and "yes_no" in error.message
    assert str(error) == f"bridgehead.yaml: {error.path}: {error.message}"


def test_a_typo_in_a_key_names_the_field_it_is_in() -> None:
    error = refused(edit("type: date, transform: yyyymmdd", "type: date, tranform: yyyymmdd"))

    assert error.path == "versions.v1.resources.jobs.fields.due_date"
    assert error.message == "unknown key 'tranform'"


def test_a_typo_in_a_resource_key_names_the_resource() -> None:
    error = refused(edit("        where:", "        wher:"))

    assert error.path == "versions.v1.resources.jobs"
    assert error.message == "unknown key 'wher'"


@pytest.mark.parametrize(
    ("old", "new", "path", "key"),
    [
        ("        key: job_number\n", "", "versions.v1.resources.jobs", "key"),
        ("        table: JOBOPS\n", "", "versions.v1.resources.operations", "table"),
        (
            "sequence: {column: OPSEQ, type: integer}",
            "sequence: {type: integer}",
            "versions.v1.resources.operations.fields.sequence",
            "column",
        ),
        ("  url: ${DB_URL}\n", "  statement_timeout_s: 5\n", "database", "url"),
    ],
)
def test_missing_required_key(old: str, new: str, path: str, key: str) -> None:
    error = refused(edit(old, new))

    assert error.path == path
    assert error.message == f"missing required key '{key}'"


def test_a_wrong_value_names_the_key_and_the_choices_in_yaml_terms() -> None:
    error = refused(edit("sequence: {column: OPSEQ, type: integer}", "sequence: {column: OPSEQ, type: int}"))

    assert error.path == "versions.v1.resources.operations.fields.sequence.type"
    assert error.message == "invalid enum value 'int'"


def test_a_field_left_empty_is_named() -> None:
    error = refused(edit("quantity: {column: QTY, type: decimal, scale: 2}", "quantity:"))

    assert error.path == "versions.v1.resources.jobs.fields.quantity"
    assert "got 'null'" in error.message


def test_relation_to_an_unknown_resource() -> None:
    error = refused(edit("{resource: operations,", "{resource: operation,"))

    assert error.path == "versions.v1.resources.jobs.relations.operations.resource"
    assert error.message == "relation to unknown resource 'operation' (resources: jobs, operations)"


def test_a_field_declared_twice_is_a_duplicate_key_with_its_line() -> None:
    text = edit(
        "          quantity: {column: QTY, type: decimal, scale: 2}\n",
        "          quantity: {column: QTY, type: decimal, scale: 2}\n"
        "          quantity: {column: QTY2, type: decimal, scale: 3}\n",
    )
    line = text.splitlines().index("          quantity: {column: QTY2, type: decimal, scale: 3}") + 1

    error = refused(text)
    assert error.message == f"line {line}: duplicate key 'quantity'"


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        (
            "key: job_number",
            "key: job_no",
            "versions.v1.resources.jobs.key",
            "key field 'job_no' is not a declared field (fields: job_number, customer_id, due_date, quantity)",
        ),
        (
            "key: [job_number, sequence]",
            "key: [job_number, seq]",
            "versions.v1.resources.operations.key",
            "key field 'seq' is not a declared field (fields: job_number, sequence)",
        ),
    ],
)
def test_key_naming_an_undeclared_field(old: str, new: str, path: str, message: str) -> None:
    error = refused(edit(old, new))

    assert (error.path, error.message) == (path, message)


def test_a_missing_environment_variable_is_named_and_no_value_is_shown() -> None:
    error = refused(BASE, {"DB_URL": "sqlite:///legacy.db"})

    assert error.path == "auth.hs256_secret"
    assert error.message == "environment variable JWT_SECRET is not set"


def test_a_default_covers_a_missing_variable() -> None:
    mapping = parse(edit("${DB_URL}", "${DB_URL:-sqlite:///fallback.db}"), {"JWT_SECRET": SECRET})
    assert mapping.database.url == "sqlite:///fallback.db"


def test_extends_an_unknown_version() -> None:
    error = refused(BASE + "  v2:\n    extends: v0\n")

    assert error.path == "versions.v2.extends"
    assert error.message == "extends unknown version 'v0' (known: v1, v2)"


def test_extends_must_name_a_version_not_a_list() -> None:
    error = refused(BASE + "  v2:\n    extends: [v1]\n")

    assert error.path == "versions.v2.extends"
    assert error.message.startswith("extends unknown version ['v1']")


@pytest.mark.parametrize(
    ("extra", "path", "cycle"),
    [
        ("  v2:\n    extends: v3\n  v3:\n    extends: v2\n", "versions.v3.extends", "v2 -> v3 -> v2"),
        ("  v2:\n    extends: v2\n", "versions.v2.extends", "v2 -> v2"),
        (
            "  v2:\n    extends: v3\n  v3:\n    extends: v4\n  v4:\n    extends: v2\n",
            "versions.v4.extends",
            "v2 -> v3 -> v4 -> v2",
        ),
    ],
)
def test_extends_in_a_cycle_shows_the_cycle(extra: str, path: str, cycle: str) -> None:
    error = refused(BASE + extra)

    assert error.path == path
    assert error.message == f"versions extend each other in a cycle: {cycle}"


def test_transform_contradicting_type() -> None:
    error = refused(edit("type: date, transform: yyyymmdd", "type: string, transform: yyyymmdd"))

    assert error.path == "versions.v1.resources.jobs.fields.due_date.type"
    assert error.message == "transform 'yyyymmdd' gives a date, but type is 'string' (set type: date)"


def test_scale_on_a_non_decimal() -> None:
    error = refused(
        edit("sequence: {column: OPSEQ, type: integer}", "sequence: {column: OPSEQ, type: integer, scale: 2}")
    )

    assert error.path == "versions.v1.resources.operations.fields.sequence.type"
    assert error.message == "'scale' needs type decimal, not 'integer'"


def test_anonymous_resource_with_a_row_filter() -> None:
    error = refused(
        edit(
            "        key: job_number\n",
            "        key: job_number\n        anonymous: true\n        row_filter: {customer_id: claims.customer_id}\n",
        )
    )

    assert error.path == "versions.v1.resources.jobs.row_filter"
    assert error.message == "an anonymous resource cannot have a row filter: it has no token"


def test_no_auth_section_while_resources_need_tokens() -> None:
    error = refused(edit("auth:\n  issuer: bridgehead\n  hs256_secret: ${JWT_SECRET}\n", ""))

    assert error.path == "auth"
    assert error.message == (
        "missing: versions.v1.resources.jobs needs tokens (mark it anonymous: true to serve it without)"
    )


def test_no_auth_section_is_fine_when_everything_is_anonymous() -> None:
    text = edit("auth:\n  issuer: bridgehead\n  hs256_secret: ${JWT_SECRET}\n", "")
    text = text.replace("        table: JOBMAST\n", "        table: JOBMAST\n        anonymous: true\n")
    text = text.replace("        table: JOBOPS\n", "        table: JOBOPS\n        anonymous: true\n")
    assert parse(text).auth is None


def test_a_short_hs256_secret_is_refused_without_showing_it() -> None:
    short = "only-31-bytes-of-secret-text-xx"
    assert len(short) == 31
    error = refused(BASE, {"DB_URL": "sqlite:///legacy.db", "JWT_SECRET": short})

    assert error.path == "auth.hs256_secret"
    assert error.message == "hs256_secret must be at least 32 bytes (RFC 7518 3.2)"
    assert short not in str(error)


def test_a_row_filter_through_a_to_many_relation() -> None:
    error = refused(
        edit(
            "        key: job_number\n",
            "        key: job_number\n        row_filter: {operations.sequence: claims.seq}\n",
        )
    )

    assert error.path == "versions.v1.resources.jobs.row_filter.operations.sequence"
    assert error.message == "'operations' is not a to-one relation of this resource"


def test_a_row_filter_through_a_to_one_relation_is_accepted() -> None:
    text = edit(
        "        key: [job_number, sequence]\n",
        "        key: [job_number, sequence]\n        row_filter: {job.customer_id: claims.customer_id}\n",
    )
    resource = parse(text).versions["v1"].resources["operations"]
    assert resource.row_filter == {"job.customer_id": "claims.customer_id"}


def test_invalid_yaml_gives_the_line() -> None:
    text = edit("        table: JOBOPS\n", "        table: [JOBOPS\n")
    line = text.splitlines().index("        table: [JOBOPS") + 2  # the parser notices on the next line

    error = refused(text)
    assert error.path == ""
    assert error.message.startswith(f"line {line}: ")


def test_a_tab_indent_is_invalid_yaml_with_a_line() -> None:
    error = refused(BASE.replace("        where:", "\twhere:"))

    assert error.message.startswith("line 12: ")


@pytest.mark.parametrize("text", ["- database\n- versions\n", "just some text\n", "", "42\n"])
def test_not_a_mapping_at_all(text: str) -> None:
    error = refused(text)

    assert error.message == "the mapping must be a YAML mapping with 'database' and 'versions'"


def test_yes_no_on_off_stay_text_in_code_maps() -> None:
    text = edit(
        "          quantity: {column: QTY, type: decimal, scale: 2}\n",
        "          quantity: {column: QTY, type: decimal, scale: 2}\n"
        "          stage:\n"
        "            column: STAGE\n"
        "            map: {on: on_order, off: off_hold, yes: approved, no: refused, Y: y}\n",
    )
    stage = parse(text).versions["v1"].resources["jobs"].fields["stage"]

    assert stage.map == {"on": "on_order", "off": "off_hold", "yes": "approved", "no": "refused", "Y": "y"}


def test_codes_with_leading_zeros_or_colons_stay_text_in_code_maps() -> None:
    text = edit(
        "          quantity: {column: QTY, type: decimal, scale: 2}\n",
        "          quantity: {column: QTY, type: decimal, scale: 2}\n"
        "          shift: {column: SHIFT, map: {01: early, 010: late, 0x1: hex, 12:30: lunch, 7: seven}}\n",
    )
    shift = parse(text).versions["v1"].resources["jobs"].fields["shift"]

    assert shift.map == {"01": "early", "010": "late", "0x1": "hex", "12:30": "lunch", 7: "seven"}


def test_true_and_false_are_still_booleans() -> None:
    mapping = parse(edit("  url: ${DB_URL}\n", "  url: ${DB_URL}\n  read_only: true\n  pool_size: 12\n"))
    assert mapping.database.read_only is True
    assert mapping.database.pool_size == 12


EXTENDED = (
    BASE
    + """\
  v2:
    extends: v1
    deprecated: false
    resources:
      jobs:
        fields:
          due_date: {column: DUEDT2}
        relations:
          operations: null
      operations: null
"""
)


def test_extends_merges_overrides_and_removes_while_v1_stays_unchanged() -> None:
    mapping = parse(EXTENDED)
    v1, v2 = mapping.versions["v1"], mapping.versions["v2"]

    assert set(v1.resources) == {"jobs", "operations"}
    assert set(v2.resources) == {"jobs"}
    # The override changes one key of one field and keeps the rest of it.
    due = v2.resources["jobs"].fields["due_date"]
    assert (due.column, due.type, due.transform, due.null_if) == ("DUEDT2", "date", "yyyymmdd", [0, 99999999])
    assert v1.resources["jobs"].fields["due_date"].column == "DUEDT"
    assert v2.resources["jobs"].fields["quantity"] == v1.resources["jobs"].fields["quantity"]
    assert v2.resources["jobs"].where == v1.resources["jobs"].where == "DELFLG <> 'Y'"
    assert set(v2.resources["jobs"].relations) == set() and set(v1.resources["jobs"].relations) == {"operations"}
    assert mapping == parse(EXTENDED)  # parsing twice gives the same result: nothing shared was mutated
    assert parse(BASE).versions["v1"] == v1


def test_a_child_that_removes_a_relation_target_is_refused_at_its_own_path() -> None:
    # v2 drops operations but inherits jobs' relation to it: v2 is the version at fault, not v1.
    error = refused(BASE + "  v2:\n    extends: v1\n    resources:\n      operations: null\n")

    assert error.path == "versions.v2.resources.jobs.relations.operations.resource"
    assert error.message == "relation to unknown resource 'operations' (resources: jobs)"


def test_a_deprecated_parent_does_not_make_its_child_deprecated() -> None:
    text = BASE.replace(
        "  v1:\n",
        "  v1:\n    deprecated: 2026-01-01\n    sunset: Wed, 01 Jul 2026 00:00:00 GMT\n    successor: v2\n",
        1,
    )
    mapping = parse(text + "  v2:\n    extends: v1\n")

    assert mapping.versions["v1"].deprecated_at == 1767225600  # 2026-01-01T00:00:00Z
    assert mapping.versions["v1"].successor == "v2"
    v2 = mapping.versions["v2"]
    assert (v2.deprecated, v2.deprecated_at, v2.sunset, v2.successor) == (False, None, None, None)


@pytest.mark.parametrize(
    ("lifecycle", "path", "message"),
    [
        ("deprecated: true", "versions.v1.deprecated", "give the date it was deprecated"),
        ("deprecated: soon", "versions.v1.deprecated", "'soon' is neither an ISO date (2026-12-01) nor an HTTP date"),
        ("sunset: 2027-06-01", "versions.v1.sunset", "is not an HTTP date"),
        ("sunset: Tue, 01 Jun 2027 00:00:00 +0200", "versions.v1.sunset", "is not an HTTP date"),
        ("successor: v3", "versions.v1.successor", "successor 'v3' is not another version (versions: v2)"),
        ("successor: v1", "versions.v1.successor", "successor 'v1' is not another version (versions: v2)"),
    ],
)
def test_lifecycle_mistakes_name_the_key(lifecycle: str, path: str, message: str) -> None:
    error = refused(BASE.replace("  v1:\n", f"  v1:\n    {lifecycle}\n", 1) + "  v2:\n    extends: v1\n")

    assert error.path == path
    assert message in error.message


def test_a_deprecation_date_may_be_an_http_date() -> None:
    mapping = parse(BASE.replace("  v1:\n", "  v1:\n    deprecated: Thu, 01 Jan 2026 00:00:00 GMT\n", 1))
    assert mapping.versions["v1"].deprecated_at == 1767225600


def test_as_string_needs_a_decimal() -> None:
    error = refused(edit("job_number: {column: JOBNO", "job_number: {as_string: true, column: JOBNO"))
    assert error.path.endswith(".as_string")
    assert "set type: decimal" in error.message


@pytest.mark.parametrize(
    ("field", "path", "message"),
    [
        ("{column: D, type: date, date: yyyymmd}", "date", "unknown date codec 'yyyymmd'"),
        ("{column: D, type: time, time: hhmmsss}", "time", "unknown time codec 'hhmmsss'"),
        ("{column: D, type: datetime, date: cyymmdd, time: hhmm, time_column: T}", "timezone", "needs 'timezone'"),
        (
            "{column: D, type: datetime, date: cyymmdd, time: hhmm, time_column: T, timezone: Mars/Base}",
            "timezone",
            "unknown time zone 'Mars/Base'",
        ),
        ("{column: D, type: date, date: cyymmdd, pivot_year: 1950}", "pivot_year", "two-digit years"),
        ("{column: D, type: date, transform: yyyyddd}", "transform", "write 'date: yyyyddd'"),
        ("{column: D, unmapped: raw}", "unmapped", "this field has no map"),
    ],
)
def test_codec_errors_name_the_key_to_fix(field: str, path: str, message: str) -> None:
    text = f"""
database: {{url: "sqlite://"}}
versions:
  v1:
    resources:
      o:
        table: T
        key: id
        anonymous: true
        fields:
          id: {{column: ID, type: integer}}
          f: {field}
"""
    with pytest.raises(MappingError) as caught:
        parse_mapping(text)
    assert caught.value.path == f"versions.v1.resources.o.fields.f.{path}"
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("database:\n  export_pool_size: 0", "database.export_pool_size"),  # every export would be refused
        ("database:\n  request_timeout_s: 0", "database.request_timeout_s"),  # every request would time out
        ("api:\n  export_idle_timeout_s: -1", "api.export_idle_timeout_s"),
    ],
)
def test_export_and_deadline_settings_must_be_positive(extra: str, path: str) -> None:
    section, setting = extra.split("\n")
    if section == "database:":
        text = BASE.replace("  url: ${DB_URL}\n", f"  url: ${{DB_URL}}\n{setting}\n", 1)
    else:
        text = f"{BASE}{section}\n{setting}\n"
    assert refused(text).path == path
