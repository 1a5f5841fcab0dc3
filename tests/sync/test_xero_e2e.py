"""Demo database -> the real engine -> the fake Xero, end to end (issue 14, items 1-3).

Contacts, items and invoices for completed jobs are created once; a batch whose answer was lost
after Xero applied it is replayed by its Idempotency-Key, not applied again; a spent day limit
pauses the syncs with a clear status and no retries; one refused contact dead-letters alone.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from gateway.cli import main
from legacy_adapters.demo import DEMO_MAPPING_PATH
from sync.config import SyncConfig
from sync.connectors.xero.fake import FakeXero
from sync.state.sync_store import SyncStore
from tests.conftest import demo_environ
from tests.sync.conftest import EngineFactory

XERO_SYNCS = ("xero_contacts", "xero_items", "xero_invoices")


def legacy(db: Path, sql: str, *params: Any) -> list[Any]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(sql, params).fetchall()
    conn.close()
    return rows


@pytest.fixture
def small_db(writable_db: Path) -> Path:
    """The demo with its first 150 jobs (still every kind of status), so a run takes a second."""
    legacy(writable_db, "DELETE FROM JOBMAST WHERE JOBNO > 'J000150'")
    return writable_db


def run_xero(engine: Any) -> dict[str, Any]:
    return {name: engine.run(name) for name in XERO_SYNCS}


def test_first_sync_creates_contacts_items_and_invoices_once(
    make_engine: EngineFactory, xero_config: SyncConfig, xero: FakeXero, small_db: Path, store: SyncStore
) -> None:
    engine = make_engine(config=xero_config)
    reports = run_xero(engine)
    org = xero.org
    customers = legacy(small_db, "SELECT TRIM(CUSTNO), TRIM(CUSTNM) FROM CUSTMAST WHERE DELFLG <> 'Y'")
    clashes = {r["key"] for r in store.errors("xero_contacts")}
    assert all("must be unique across all active contacts" in r["error"] for r in store.errors("xero_contacts"))
    by_number = {c["ContactNumber"]: c for c in org.contacts.values()}
    assert len(by_number) == len(org.contacts) == len(customers) - len(clashes)  # matched by the legacy key
    prices = {no.strip(): Decimal(p) / 10000 for no, p in legacy(small_db, "SELECT ITEMNO, PRICE FROM ITEMMAST")}
    assert reports["xero_items"].done["create"] == len(org.items) == len(prices)
    complete = {no.strip(): (cust.strip(), item.strip(), Decimal(qty) / 100) for no, cust, item, qty in legacy(
        small_db, "SELECT JOBNO, CUSTNO, ITEMNO, QTY FROM JOBMAST WHERE JSTAT = 'C' AND DELFLG <> 'Y'")}  # fmt: skip
    invoices = {i["InvoiceNumber"]: i for i in org.invoices.values()}
    assert len(invoices) == len(org.invoices) and invoices, "two invoices for one job"
    assert set(invoices) <= set(complete)  # only completed jobs are invoiced
    waiting = reports["xero_invoices"].deferred + reports["xero_invoices"].skipped
    assert len(invoices) + waiting == len(complete)  # the rest wait on a refused or deleted customer
    contact_ids = {c["ContactID"]: c["ContactNumber"] for c in org.contacts.values()}
    for number, invoice in invoices.items():
        customer, item, quantity = complete[number]
        assert invoice["Type"] == "ACCREC" and contact_ids[invoice["Contact"]["ContactID"]] == customer
        (line,) = invoice["LineItems"]
        assert line["ItemCode"] == item and Decimal(str(line["Quantity"])) == quantity
        # Four implied decimals survive (unitdp=4): the line is quantity x the legacy price, to the cent.
        assert Decimal(str(line["UnitAmount"])) == prices[item]
        assert Decimal(invoice["Total"]) == (quantity * prices[item]).quantize(Decimal("0.01"))
        assert invoice["Date"].startswith("/Date(") and invoice["Date"].endswith("+0000)/")
    writes, requests = org.writes, xero.requests
    again = run_xero(engine)
    assert org.writes == writes, "an unchanged source changes nothing"
    # Only the refused contacts go again (one request), until their attempts are spent.
    assert xero.requests - requests == (1 if clashes else 0)
    assert all(sum(r.planned.values()) == 0 and not r.done for r in again.values())
    # By account: rows sort by account name, and the tenant id (a fresh uuid4) sorts after "connections" at times.
    usage = {row["account"]: row for row in store.usage()}
    tenant = usage[f"xero:{xero.tenant_id}"]
    assert tenant["calls"] >= 3 and tenant["bytes_in"] > 0


def test_a_batch_retried_after_a_timeout_that_had_succeeded_creates_nothing_twice(
    make_engine: EngineFactory, xero_config: SyncConfig, xero: FakeXero, small_db: Path
) -> None:
    engine = make_engine(config=xero_config)
    engine.run("xero_contacts")
    engine.run("xero_items")
    xero.faults.queued.append("timeout_after_write")  # the first invoice batch is applied, its answer lost
    report = engine.run("xero_invoices")
    assert xero.faults.injected == {"timeout_after_write": 1}
    assert report.status == "succeeded" and report.failed == 0
    numbers = [i["InvoiceNumber"] for i in xero.org.invoices.values()]
    assert len(numbers) == len(set(numbers)) == report.done["create"]
    assert xero.org.writes - len(xero.org.contacts) - len(xero.org.items) == len(numbers)  # each applied once


def test_a_day_limit_pauses_the_syncs_until_the_reset_without_retrying(
    make_engine: EngineFactory, xero_config: SyncConfig, xero: FakeXero, small_db: Path, store: SyncStore
) -> None:
    xero.per_day = 4  # /connections and 3 writes, then the 5,000th call of the day
    engine = make_engine(config=xero_config)
    reports = run_xero(engine)
    stopped = [r for r in reports.values() if r.status == "cancelled"]
    assert stopped and "paused until" in str(stopped[0].error) and "day limit" in str(stopped[0].error)
    assert xero.rate_limited == 1, "the day limit was met once, not retried"
    hold = store.destination_hold("books")
    assert hold is not None and hold[0].hour == 0 and hold[0].minute == 0  # the fake resets at midnight UTC
    requests = xero.requests
    later = engine.run("xero_contacts")
    assert later.status == "cancelled" and "paused until" in str(later.error) and xero.requests == requests
    env = demo_environ(small_db)
    status = CliRunner().invoke(main, ["sync", "status", "-c", str(DEMO_MAPPING_PATH), "--state-url",
                                       str(store.db.engine.url)], env=env)  # fmt: skip
    assert status.exit_code == 0, status.output
    assert "destination books: paused until" in status.output and "day limit" in status.output
    assert "quota 00:00Z" in status.output


def test_a_batch_with_one_invalid_contact_delivers_the_rest_and_dead_letters_it(
    make_engine: EngineFactory, xero_config: SyncConfig, xero: FakeXero, small_db: Path, store: SyncStore
) -> None:
    legacy(small_db, "UPDATE CUSTMAST SET CUSTNM = '' WHERE CUSTNO = 'C0002   '")  # Xero needs a name
    spec = msgspec.structs.replace(xero_config.syncs["xero_contacts"], max_attempts=1)
    config = msgspec.structs.replace(xero_config, syncs={"xero_contacts": spec})
    report = make_engine(config=config).run("xero_contacts")
    assert report.status == "partially_failed"
    letters = {d["key"]: d["last_error"] for d in store.dlq("xero_contacts")}
    assert letters['["C0002"]'] == "The contact name must be specified"
    delivered = {c["ContactNumber"] for c in xero.org.contacts.values()}
    assert "C0002" not in delivered and {"C0001", "C0003"} <= delivered
    assert report.done["create"] == len(delivered) and report.dead_lettered == len(letters)
