"""docs/mapping.md's encoding tables and examples say what the codecs do.

The tables are read from the document itself, so an example that drifts from the code
(or a codec added without a row) fails here instead of misleading a consultant.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import msgspec
import pytest
import yaml

from legacy_adapters.mapping.model import FieldSpec
from legacy_adapters.transforms import build_codec
from legacy_adapters.transforms.dates import DATE_CODECS, TIME_CODECS

DOC = (Path(__file__).parents[3] / "docs" / "mapping.md").read_text(encoding="utf-8")
# The section alone: later sections have YAML examples of their own.
ENCODINGS = DOC[DOC.index("## Encodings") :].split("\n## ", 1)[0]


def _section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n### ", start + 1)
    return DOC[start : end if end != -1 else None]


def _rows(title: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in _section(title).splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            stored = re.match(r"`([^`]*)`", cells[1])
            api = re.match(r"`([^`]*)`", cells[2])
            assert stored and api, line
            rows.append((cells[0].strip("`"), stored.group(1), api.group(1).strip('"')))
    return rows


DATE_ROWS = _rows("### Dates")
TIME_ROWS = _rows("### Times")


def test_every_codec_is_documented() -> None:
    assert {r[0] for r in DATE_ROWS} == set(DATE_CODECS)
    assert {r[0] for r in TIME_ROWS} == set(TIME_CODECS)


@pytest.mark.parametrize(("name", "stored", "api"), DATE_ROWS)
def test_date_rows(name: str, stored: str, api: str) -> None:
    codec = build_codec(FieldSpec(column="C", type="date", date=name))
    raw = stored.strip("'") if stored.startswith("'") else int(stored)
    assert codec.to_api(raw) == dt.date.fromisoformat(api)
    assert codec.to_legacy(dt.date.fromisoformat(api)) == (raw if isinstance(raw, str) else int(stored))


@pytest.mark.parametrize(("name", "stored", "api"), TIME_ROWS)
def test_time_rows(name: str, stored: str, api: str) -> None:
    codec = build_codec(FieldSpec(column="C", type="time", time=name))
    assert codec.to_api(int(stored)) == dt.time.fromisoformat(api)


def test_yaml_examples_build() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", ENCODINGS, re.DOTALL)
    fields = [line for block in blocks for line in block.splitlines() if re.match(r"^\w+: *\{", line)]
    assert len(fields) >= 8
    for line in fields:
        ((_, spec),) = yaml.safe_load(line.split("   #")[0]).items()
        build_codec(msgspec.convert(spec, FieldSpec))
