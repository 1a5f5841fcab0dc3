"""The batch digests and key encoder of the snapshot diff are the per-row definitions, byte for byte.

Stored fingerprints outlive an upgrade: a digest that changed would make every row of every
synced table look changed once, and send the whole catalogue again.
"""

from __future__ import annotations

import datetime as dt
import decimal

from hypothesis import given
from hypothesis import strategies as st

from sync.changes.base import encode_key, fingerprint, fingerprints, key_encoder, keys_encoder

NAMES = st.sampled_from(["job_number", "due_date", "a", "B", "b", "price", "é", "notes"])
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.dates(), st.datetimes(timezones=st.just(dt.UTC)),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip
ROW = st.dictionaries(NAMES, VALUES, min_size=1)


@given(st.lists(ROW, max_size=6))
def test_batch_fingerprints_are_the_row_fingerprints(rows: list[dict[str, object]]) -> None:
    assert fingerprints(rows) == [fingerprint(r) for r in rows]


@given(st.fixed_dictionaries({n: VALUES for n in ("job_number", "due_date", "price")}), st.integers(1, 4))
def test_rows_of_one_shape_in_any_field_order(row: dict[str, object], times: int) -> None:
    shuffled = [dict(reversed(list(row.items())))] + [dict(row) for _ in range(times)]
    assert fingerprints(shuffled) == [fingerprint(row)] * (times + 1)


def test_a_batch_with_the_same_count_of_other_names_takes_the_row_digest() -> None:
    rows = [{"a": 1, "b": 2}, {"a": 1, "c": 2}, {"b": 2, "a": 1}]
    assert fingerprints(rows) == [fingerprint(r) for r in rows]
    assert fingerprints(rows)[0] == fingerprints(rows)[2] != fingerprints(rows)[1]


def test_a_known_digest_does_not_move() -> None:
    row = {"job_number": "J0001", "price": decimal.Decimal("12.50"), "due_date": dt.date(2026, 1, 31), "n": None}
    assert fingerprint(row) == fingerprints([row])[0] == "132c1791b9fc9a7457b8425bd30a1ae2"


@given(st.lists(st.lists(VALUES, min_size=1, max_size=3), min_size=1, max_size=4))
def test_the_key_encoder_is_encode_key(keys: list[list[object]]) -> None:
    width = len(keys[0])
    names = [f"k{i}" for i in range(width)]
    encode, encode_all = key_encoder(names), keys_encoder(names)
    rows = [dict(zip(names, values, strict=True)) for values in keys if len(values) == width]
    for row, values in zip(rows, (k for k in keys if len(k) == width), strict=True):
        assert encode(row) == encode_key(values)
    assert encode_all(rows) == [encode_key(list(row.values())) for row in rows]
