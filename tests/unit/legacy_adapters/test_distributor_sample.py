"""The distributor sample schema: deterministic, sized by ``rows``, and legacy in the ways it promises."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from legacy_adapters.samples.distributor import (
    DISTRIBUTOR_TABLES,
    STATUS_CODES,
    UNKNOWN_STATUS,
    create_distributor,
    distributor_rows,
)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    assert distributor_rows(200, seed=1) == distributor_rows(200, seed=1)
    assert distributor_rows(200, seed=1) != distributor_rows(200, seed=2)


def test_sized_by_rows() -> None:
    small, large = distributor_rows(100), distributor_rows(1000)
    assert len(small["ORDER"]) == 100 and len(large["ORDER"]) == 1000
    assert len(large["ORDLINES"]) > 2 * len(large["ORDER"])
    with pytest.raises(ValueError, match="at least 1"):
        distributor_rows(0)


def test_natural_keys_unique_but_branch_carrier_is_not() -> None:
    data = distributor_rows()
    lines = Counter((r["ORDNO"], r["LINE"]) for r in data["ORDLINES"])
    assert max(lines.values()) == 1
    ship = Counter((r["BRANCH"], r["CARRIER"], r["SEQ"]) for r in data["SHIPLOG"])
    assert max(ship.values()) == 1
    assert max(Counter((r["BRANCH"], r["CARRIER"]) for r in data["SHIPLOG"]).values()) > 1


def test_encodings_and_dirt_are_present() -> None:
    data = distributor_rows()
    statuses = Counter(r["STATUS"] for r in data["ORDER"])
    assert statuses[UNKNOWN_STATUS] > 0 and set(statuses) == {*STATUS_CODES, UNKNOWN_STATUS}
    assert {r["RUSH"] for r in data["ORDER"]} == {"T", "F"}
    assert all(r["ORDTM"] < 2400 and r["ORDTM"] % 100 < 60 for r in data["ORDER"])  # HHMM
    assert all(1_900_001 <= r["ORDDT"] <= 2_199_366 for r in data["ORDER"])  # YYYYDDD
    assert any(r["SHIP DATE"] is None for r in data["ORDER"])  # real NULLs
    assert all(r["REGION"] is not None for r in data["CUSTOMERS"])  # nullable, never NULL
    assert any(r["LRCVDT"] == 0 for r in data["ITEM MASTER"])  # "never received"


def test_written_to_sqlite_with_quoted_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    counts = create_distributor(url, rows=50)
    assert tuple(counts) == DISTRIBUTOR_TABLES
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        assert set(inspector.get_table_names()) == set(DISTRIBUTOR_TABLES)
        assert inspector.get_pk_constraint("ORDLINES")["constrained_columns"] == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql('SELECT COUNT(*) FROM "ORDER"').scalar() == 50
            padded = conn.exec_driver_sql('SELECT "USER" FROM "SHIPLOG" LIMIT 1').scalar()
        assert len(padded) == 10
        # Writing again replaces the tables instead of failing or doubling them.
        assert create_distributor(url, rows=50) == counts
    finally:
        engine.dispose()
