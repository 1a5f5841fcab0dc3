"""Seeded generator of a second legacy schema: an AS/400 / JD Edwards style wholesale distributor.

Unlike the demo job shop, every date and time is a NUMERIC column (pyodbc
returns ``Decimal`` for them), in a different encoding per table, and the names
are the ones that break naive SQL: a table called ``ORDER``, columns called
``USER`` and ``DESC``, and names with spaces (``ITEM MASTER``, ``SHIP DATE``).

=============  ==========================================================================
table          what is legacy about it
=============  ==========================================================================
CUSTOMERS      primary key CUSNO NUMERIC(8,0); CRTDT CYYMMDD NUMERIC(7,0); ACTIVE 'T'/'F';
               CRLIMIT DECIMAL(11,2); EMAIL with real NULLs; REGION nullable, never NULL
ITEM MASTER    primary key ITEMNO CHAR(15); "DESC" CHAR(30); LRCVDT CYYDDD NUMERIC(6,0)
               (0 = never received); LRCVTM HHMMSS NUMERIC(6,0); DISCONT 'Y'/'N'
ORDER          primary key ORDNO NUMERIC(8,0); ORDDT YYYYDDD NUMERIC(7,0); ORDTM HHMM
               NUMERIC(4,0); STATUS CHAR(2) codes, '??' on some rows; RUSH 'T'/'F';
               "SHIP DATE" CYYMMDD, NULL until shipped; TOTAL DECIMAL(11,2)
ORDLINES       no key at all: (ORDNO, LINE) is unique by convention, both columns
               declared NULL-able and never NULL; "DUE DT" YYMMDD NUMERIC(6,0);
               PROMDT YYYYMMDD NUMERIC(8,0); "LINE AMT" DECIMAL(11,2); BACKORD 'Y'/'N'
SHIPLOG        no key at all: (BRANCH, CARRIER, SEQ) is unique, (BRANCH, CARRIER) is
               NOT (only a plain index covers it); SHPDT CYYMMDD + SHPTM HHMM is one
               moment; "USER" CHAR(10); NOTE mostly NULL
=============  ==========================================================================

``create_distributor(url, rows=..., seed=...)`` writes ``rows`` orders and tables
scaled from it into any SQLAlchemy URL (SQLite, PostgreSQL, MariaDB, SQL Server),
dropping its tables first. The same ``(rows, seed)`` always gives the same rows;
``distributor_rows`` returns them without a database, so tests can decode the
stored values independently of the gateway.

    python -m legacy_adapters.samples.distributor sqlite:///distributor.db --rows 1000
"""

from __future__ import annotations

import argparse
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

import legacy_adapters.dialects  # noqa: F401 - registers postgresql+pyodbc and sqlite+pyodbc

__all__ = (
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DISTRIBUTOR_TABLES",
    "STATUS_CODES",
    "UNKNOWN_STATUS",
    "create_distributor",
    "distributor_metadata",
    "distributor_rows",
)

DEFAULT_ROWS = 1000
"""Orders by default: about 4,000 rows in all (customers, items, lines, shipments)."""
DEFAULT_SEED = 400
DISTRIBUTOR_TABLES = ("CUSTOMERS", "ITEM MASTER", "ORDER", "ORDLINES", "SHIPLOG")
STATUS_CODES = {"OP": "open", "PK": "picking", "SH": "shipped", "IN": "invoiced", "CN": "cancelled"}
"""ORDER.STATUS codes and what they mean."""
UNKNOWN_STATUS = "??"
"""Written by a 1990s conversion program on orders it could not classify (about 1 in 25)."""

_BRANCHES = ("ATL", "CHI", "DAL", "DEN", "SEA")
_CARRIERS = ("UPS ", "FDX ", "LTL1", "OWN ")
_USERS = ("QPGMR", "JSMITH", "MDAVIS", "OPS01", "NIGHTJOB")
_REGIONS = ("NE ", "SE ", "MW ", "SW ", "W  ")
_NAMES = ("Acme", "Blue Ridge", "Cardinal", "Delta", "Evergreen", "Frontier", "Granite", "Harbor", "Iron", "Juniper")
_TRADES = ("Supply", "Hardware", "Builders", "Plumbing", "Electric", "Farm & Home")
_PRODUCTS = ("BOLT", "NUT", "WASHER", "PIPE", "VALVE", "HINGE", "BRACKET", "FUSE", "CABLE", "TAPE")
_NOTES = ("LEFT AT DOCK", "SIGNED BY GUARD", "REFUSED 1 CTN")
_FIRST_DAY = date(2024, 1, 2)
_DAYS = 3 * 365
_MAX_PARAMETERS = 900
"""Bound values per INSERT: under SQLite's historical 999 and SQL Server's 2,100."""


def distributor_metadata(schema: str | None = None) -> sa.MetaData:
    """The five tables, in each engine's spelling of the same legacy types."""
    metadata = sa.MetaData(schema=schema)

    def col(name: str, type_: Any, *, nullable: bool = False, primary_key: bool = False) -> sa.Column[Any]:
        return sa.Column(name, type_, nullable=nullable, primary_key=primary_key, quote=True, autoincrement=False)

    sa.Table(
        "CUSTOMERS",
        metadata,
        col("CUSNO", sa.Numeric(8, 0), primary_key=True),
        col("CUSNAME", sa.CHAR(30)),
        col("REGION", sa.CHAR(3), nullable=True),
        col("ACTIVE", sa.CHAR(1)),
        col("CRLIMIT", sa.DECIMAL(11, 2)),
        col("CRTDT", sa.Numeric(7, 0)),
        col("EMAIL", sa.VARCHAR(60), nullable=True),
        col("USER", sa.CHAR(10)),
        quote=True,
    )
    sa.Table(
        "ITEM MASTER",
        metadata,
        col("ITEMNO", sa.CHAR(15), primary_key=True),
        col("DESC", sa.CHAR(30)),
        col("UOM", sa.CHAR(2)),
        col("LIST PRICE", sa.DECIMAL(11, 2)),
        col("LRCVDT", sa.Numeric(6, 0)),
        col("LRCVTM", sa.Numeric(6, 0)),
        col("DISCONT", sa.CHAR(1)),
        quote=True,
    )
    sa.Table(
        "ORDER",
        metadata,
        col("ORDNO", sa.Numeric(8, 0), primary_key=True),
        col("CUSNO", sa.Numeric(8, 0)),
        col("ORDDT", sa.Numeric(7, 0)),
        col("ORDTM", sa.Numeric(4, 0)),
        col("STATUS", sa.CHAR(2)),
        col("RUSH", sa.CHAR(1)),
        col("TOTAL", sa.DECIMAL(11, 2)),
        col("SHIP DATE", sa.Numeric(7, 0), nullable=True),
        col("USER", sa.CHAR(10)),
        quote=True,
    )
    # Keyless: every column NULL-able, as a file created by CRTPF without UNIQUE usually is.
    sa.Table(
        "ORDLINES",
        metadata,
        col("ORDNO", sa.Numeric(8, 0), nullable=True),
        col("LINE", sa.Numeric(3, 0), nullable=True),
        col("ITEMNO", sa.CHAR(15), nullable=True),
        col("QTY", sa.Numeric(7, 0), nullable=True),
        col("LINE AMT", sa.DECIMAL(11, 2), nullable=True),
        col("DUE DT", sa.Numeric(6, 0), nullable=True),
        col("PROMDT", sa.Numeric(8, 0), nullable=True),
        col("BACKORD", sa.CHAR(1), nullable=True),
        sa.Index("ORDLINES_ORD", "ORDNO"),
        quote=True,
    )
    sa.Table(
        "SHIPLOG",
        metadata,
        col("BRANCH", sa.CHAR(3), nullable=True),
        col("CARRIER", sa.CHAR(4), nullable=True),
        col("SEQ", sa.Numeric(5, 0), nullable=True),
        col("ORDNO", sa.Numeric(8, 0), nullable=True),
        col("SHPDT", sa.Numeric(7, 0), nullable=True),
        col("SHPTM", sa.Numeric(4, 0), nullable=True),
        col("WEIGHT", sa.DECIMAL(9, 2), nullable=True),
        col("SIGNED", sa.CHAR(1), nullable=True),
        col("USER", sa.CHAR(10), nullable=True),
        col("NOTE", sa.VARCHAR(40), nullable=True),
        # The index a DBA made for the branch report; it is not unique and must not be taken for a key.
        sa.Index("SHIPLOG_BRCAR", "BRANCH", "CARRIER"),
        quote=True,
    )
    return metadata


def _pad(value: str, width: int) -> str:
    return value[:width].ljust(width)


def cyymmdd(day: date) -> int:
    """2026-12-01 -> 1261201 (C = centuries past 1900)."""
    return (day.year - 1900) * 10000 + day.month * 100 + day.day


def yyyyddd(day: date) -> int:
    """2026-12-01 -> 2026335."""
    return day.year * 1000 + day.timetuple().tm_yday


def cyyddd(day: date) -> int:
    """2026-12-01 -> 126335."""
    return (day.year - 1900) * 1000 + day.timetuple().tm_yday


def yymmdd(day: date) -> int:
    """2026-12-01 -> 261201."""
    return day.year % 100 * 10000 + day.month * 100 + day.day


def yyyymmdd(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


@dataclass(frozen=True)
class _Sizes:
    customers: int
    items: int
    orders: int


def _sizes(rows: int) -> _Sizes:
    return _Sizes(customers=max(20, rows // 10), items=max(30, rows // 20), orders=rows)


def distributor_rows(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, column name -> stored value, as ``create_distributor`` writes them."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}")
    sizes = _sizes(rows)
    rng = random.Random(f"distributor/{seed}")
    day: Callable[[], date] = lambda: _FIRST_DAY + timedelta(days=rng.randrange(_DAYS))  # noqa: E731
    customers = []
    for n in range(sizes.customers):
        created = _FIRST_DAY - timedelta(days=rng.randrange(20 * 365))
        customers.append(
            {
                "CUSNO": 10000 + n * 7,
                "CUSNAME": _pad(f"{rng.choice(_NAMES)} {rng.choice(_TRADES)} #{n}", 30),
                "REGION": rng.choice(_REGIONS),
                "ACTIVE": "F" if n % 9 == 4 else "T",
                "CRLIMIT": Decimal(rng.randrange(0, 5_000_000)) / 100,
                "CRTDT": cyymmdd(created),
                "EMAIL": None if n % 4 == 1 else f"ap{n}@{rng.choice(_NAMES).lower().replace(' ', '')}.example",
                "USER": _pad(rng.choice(_USERS), 10),
            }
        )
    items = []
    for n in range(sizes.items):
        received = n % 6 != 5
        items.append(
            {
                "ITEMNO": _pad(f"{_PRODUCTS[n % len(_PRODUCTS)]}-{n:05d}", 15),
                "DESC": _pad(f"{_PRODUCTS[n % len(_PRODUCTS)].title()} size {n % 13 + 1}", 30),
                "UOM": rng.choice(("EA", "BX", "CS", "FT")),
                "LIST PRICE": Decimal(rng.randrange(5, 250_000)) / 100,
                "LRCVDT": cyyddd(day()) if received else 0,
                "LRCVTM": rng.randrange(6, 20) * 10000 + rng.randrange(60) * 100 + rng.randrange(60) if received else 0,
                "DISCONT": "Y" if n % 11 == 3 else "N",
            }
        )
    orders, lines, shipments = [], [], []
    seq: dict[tuple[str, str], int] = {}
    for n in range(sizes.orders):
        ordered = day()
        status = UNKNOWN_STATUS if n % 25 == 7 else rng.choice(("OP", "PK", "SH", "SH", "IN", "IN", "IN", "CN"))
        shipped = status in ("SH", "IN") or (status == UNKNOWN_STATUS and n % 2 == 0)
        ship_day = ordered + timedelta(days=rng.randrange(0, 6))
        order_no = 500000 + n
        amounts = []
        for line in range(1, rng.randrange(2, 6)):
            item = items[rng.randrange(len(items))]
            qty = rng.randrange(1, 50)
            amount = item["LIST PRICE"] * qty
            amounts.append(amount)
            lines.append(
                {
                    "ORDNO": order_no,
                    "LINE": line,
                    "ITEMNO": item["ITEMNO"],
                    "QTY": qty,
                    "LINE AMT": amount,
                    "DUE DT": yymmdd(ordered + timedelta(days=rng.randrange(1, 30))),
                    "PROMDT": yyyymmdd(ordered + timedelta(days=rng.randrange(1, 45))),
                    "BACKORD": "Y" if rng.random() < 0.1 else "N",
                }
            )
        orders.append(
            {
                "ORDNO": order_no,
                "CUSNO": customers[rng.randrange(len(customers))]["CUSNO"],
                "ORDDT": yyyyddd(ordered),
                "ORDTM": rng.randrange(7, 19) * 100 + rng.randrange(60),
                "STATUS": status,
                "RUSH": "T" if rng.random() < 0.15 else "F",
                "TOTAL": sum(amounts, Decimal("0.00")),
                "SHIP DATE": cyymmdd(ship_day) if shipped else None,
                "USER": _pad(rng.choice(_USERS), 10),
            }
        )
        # Shipped orders leave one to three cartons in the log, from one branch and carrier.
        for _ in range(rng.randrange(1, 4) if shipped else 0):
            where = (rng.choice(_BRANCHES), rng.choice(_CARRIERS))
            seq[where] = seq.get(where, 0) + 1
            shipments.append(
                {
                    "BRANCH": where[0],
                    "CARRIER": where[1],
                    "SEQ": seq[where],
                    "ORDNO": order_no,
                    "SHPDT": cyymmdd(ship_day),
                    "SHPTM": rng.randrange(6, 22) * 100 + rng.randrange(60),
                    "WEIGHT": Decimal(rng.randrange(10, 400_00)) / 100,
                    "SIGNED": "T" if rng.random() < 0.7 else "F",
                    "USER": _pad(rng.choice(_USERS), 10),
                    "NOTE": rng.choice(_NOTES) if rng.random() < 0.1 else None,
                }
            )
    return {"CUSTOMERS": customers, "ITEM MASTER": items, "ORDER": orders, "ORDLINES": lines, "SHIPLOG": shipments}


def create_distributor(
    url: str | sa.URL,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    schema: str | None = None,
    engine: sa.Engine | None = None,
) -> dict[str, int]:
    """Drop and recreate the distributor tables in ``url`` and fill them; returns rows written per table."""
    data = distributor_rows(rows, seed)
    target = engine or sa.create_engine(url)
    metadata = distributor_metadata(schema)
    try:
        with target.begin() as conn:
            metadata.drop_all(conn, checkfirst=True)
            metadata.create_all(conn)
        with target.begin() as conn, warnings.catch_warnings():
            # SQLite stores DECIMAL as its own numeric affinity; SQLAlchemy warns about that once per column.
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            for name in DISTRIBUTOR_TABLES:
                table = metadata.tables[f"{schema}.{name}" if schema else name]
                batch = max(1, _MAX_PARAMETERS // len(table.columns))
                table_rows = data[name]
                for start in range(0, len(table_rows), batch):
                    conn.execute(table.insert().values(table_rows[start : start + batch]))
    finally:
        if engine is None:
            target.dispose()
    return {name: len(data[name]) for name in DISTRIBUTOR_TABLES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="SQLAlchemy URL of a scratch database (its distributor tables are replaced)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="orders to write (the other tables scale)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--schema", default=None)
    args = parser.parse_args(argv)
    counts = create_distributor(args.url, rows=args.rows, seed=args.seed, schema=args.schema)
    print("wrote " + ", ".join(f"{t} {n}" for t, n in counts.items()))


if __name__ == "__main__":
    main()
