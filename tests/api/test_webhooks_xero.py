"""Xero invoice webhooks mark the job's invoice paid in JOBMAST, read from the fake Xero over HTTP.

The gateway reads the invoice an event names from the fake (served by uvicorn, as in the
sandbox) with the destination's sealed OAuth grant, writes PAIDFL/PAIDDT through the mapping's
``job_invoices`` resource, and audits the write with the webhook as its trigger.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from legacy_adapters.demo import DEMO_MAPPING_PATH
from legacy_adapters.mapping import load_mapping
from sync.connectors.xero.fake import FakeXero
from sync.connectors.xero.oauth import TokenSet
from sync.sandbox import SandboxServer
from sync.state import StateDatabase
from sync.state.oauth_grants import GrantStore
from sync.state.sealing import KEYS_ENV, Sealer
from sync.webhooks import WebhookQueue
from sync.webhooks.signatures import sign
from tests.conftest import MINTED_TOKENS, demo_environ

XERO_KEY = "xero-webhook-key-for-the-write-back-tests-0123"
CLIENT_SECRET = "xero-client-secret-write-back-tests"
SEAL_KEY = Fernet.generate_key().decode()
MINTED_TOKENS.update({XERO_KEY, CLIENT_SECRET, SEAL_KEY})


@pytest.fixture(scope="module")
def xero() -> Iterator[tuple[FakeXero, str]]:
    fake = FakeXero(client_secret=CLIENT_SECRET)
    with SandboxServer(fake, port=0) as server:  # type: ignore[arg-type]
        yield fake, server.url
    MINTED_TOKENS.update(fake.access, fake.refresh)


def _mapping_file(folder: Path, xero_url: str) -> Path:
    """The demo mapping with a Xero destination and the paid write-back switched on."""
    raw = yaml.safe_load(DEMO_MAPPING_PATH.read_text())
    raw["sync"]["destinations"]["books"] = {
        "kind": "xero", "url": xero_url, "identity_url": xero_url, "auth": "oauth", "client_id": "sandbox-client",
        "client_secret": "${TEST_XERO_CLIENT_SECRET}",
    }  # fmt: skip
    raw["webhooks"]["xero"]["mark_paid"] = {
        "destination": "books", "resource": "job_invoices", "paid_field": "paid", "paid_on_field": "paid_on",
    }  # fmt: skip
    path = folder / "bridgehead.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def books(
    writable_db: Path, tmp_path: Path, xero: tuple[FakeXero, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient[Any], Path, FakeXero]]:
    from gateway import create_app

    fake, url = xero
    monkeypatch.setenv(KEYS_ENV, SEAL_KEY)
    environ = {**demo_environ(writable_db), "BRIDGEHEAD_XERO_WEBHOOK_KEY": XERO_KEY,
               "TEST_XERO_CLIENT_SECRET": CLIENT_SECRET}  # fmt: skip
    state = StateDatabase(environ["BRIDGEHEAD_STATE_URL"])
    state.migrate()
    _connect(fake, url, GrantStore(state, Sealer([SEAL_KEY])))
    mapping = load_mapping(_mapping_file(tmp_path, url), environ)
    with TestClient(create_app(mapping)) as client:
        yield client, writable_db, fake
    state.dispose()


def _connect(fake: FakeXero, url: str, store: GrantStore) -> None:
    """What `bridgehead xero connect` leaves behind: a sealed grant for the destination."""
    answer = httpx.post(f"{url}/connect/token", auth=("sandbox-client", CLIENT_SECRET),
                        data={"grant_type": "authorization_code", "code": fake.consent()})  # fmt: skip
    body = answer.json()
    tokens = TokenSet(body["access_token"], body["refresh_token"], time.time() + body["expires_in"], body["scope"])
    store.save("books", tokens, tenant_id=fake.tenant_id, tenant_name=fake.org.name)


def _job(db: Path, offset: int = 0) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT TRIM(JOBNO) FROM JOBMAST WHERE JSTAT = 'C' AND DELFLG <> 'Y' ORDER BY JOBNO")
        return [r[0] for r in rows][offset]


def _paid(db: Path, job: str) -> tuple[str, int]:
    """The oracle: JOBMAST's paid columns as stored."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT PAIDFL, PAIDDT FROM JOBMAST WHERE JOBNO = ?", (job.ljust(10),)).fetchone()


def _invoice(fake: FakeXero, job: str, *, paid: bool) -> str:
    contact = fake.org.save_contact({"Name": f"Customer of {job}", "ContactNumber": f"C-{job}"}, None)
    invoice = fake.org.save_invoice(
        {"Type": "ACCREC", "InvoiceNumber": job, "Contact": {"ContactID": contact["ContactID"]},
         "Status": "AUTHORISED", "LineItems": [{"Quantity": 2, "UnitAmount": "12.50"}]},
        None,
    )  # fmt: skip
    if paid:
        fake.org.pay(invoice["InvoiceID"], decimal.Decimal("25.00"))
    return str(invoice["InvoiceID"])


def _event(fake: FakeXero, invoice_id: str, at: str, *, tenant: str | None = None) -> dict[str, Any]:
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}", "resourceId": invoice_id,
            "eventDateUtc": at, "eventType": "UPDATE", "eventCategory": "INVOICE",
            "tenantId": tenant or fake.tenant_id, "tenantType": "ORGANISATION"}  # fmt: skip


def _deliver(client: TestClient[Any], *events: dict[str, Any], body: bytes | None = None) -> Any:
    raw = json.dumps({"events": list(events), "firstEventSequence": 1, "lastEventSequence": len(events),
                      "entropy": "QWERTY"}).encode()  # fmt: skip
    return client.post("/webhooks/xero", content=body if body is not None else raw,
                       headers={"x-xero-signature": sign(XERO_KEY, raw)})  # fmt: skip


def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the webhook was not applied in time")
        time.sleep(0.05)


def _queue(db: Path) -> WebhookQueue:
    return WebhookQueue(StateDatabase(demo_environ(db)["BRIDGEHEAD_STATE_URL"]))


def test_a_paid_invoice_marks_its_job_paid_once_visible_through_rest_and_audit(
    books: tuple[TestClient[Any], Path, FakeXero], admin: dict[str, str]
) -> None:
    client, db, fake = books
    job = _job(db)
    assert _paid(db, job) == ("N", 0)
    jobs_before = client.get(f"/v1/jobs/{job}", headers=admin).json()
    invoice = _invoice(fake, job, paid=True)
    event = _event(fake, invoice, "2026-12-01T10:00:00.000")
    answer = _deliver(client, event)
    assert answer.status_code == 200 and answer.content == b""
    today = dt.datetime.now(dt.UTC).date()
    _until(lambda: _paid(db, job) == ("Y", int(today.strftime("%Y%m%d"))))
    assert _deliver(client, event).status_code == 200  # Xero delivers again: acknowledged, ignored
    time.sleep(0.3)
    served = client.get(f"/v1/job_invoices/{job}", headers=admin).json()
    assert served["paid"] is True and served["paid_on"] == today.isoformat()
    # The jobs representation is what it was: the paid state lives in its own resource.
    assert client.get(f"/v1/jobs/{job}", headers=admin).json() == jobs_before
    audit = client.get(f"/admin/audit?key={job}", headers=admin).json()["data"]
    entries = [e for e in audit if e["subject"] == "webhook:xero"]
    assert len(entries) == 1  # the redelivery wrote nothing
    assert entries[0]["resource"] == "job_invoices" and entries[0]["action"] == "webhook INVOICE.UPDATE"
    assert entries[0]["before"] == {"paid": False, "paid_on": None}
    assert entries[0]["after"] == {"paid": True, "paid_on": today.isoformat()}
    assert _queue(db).counts() == {("xero", "done"): 1}


def test_events_resolve_by_event_time_and_a_removed_payment_clears_the_flag(
    books: tuple[TestClient[Any], Path, FakeXero],
) -> None:
    client, db, fake = books
    job = _job(db, 1)
    invoice = _invoice(fake, job, paid=True)
    _deliver(client, _event(fake, invoice, "2026-12-01T10:05:00.000"))
    _until(lambda: _paid(db, job)[0] == "Y")
    # The bookkeeper removes the payment; Xero says so in a newer event...
    fake.org.invoices[invoice].update(Status="AUTHORISED", AmountPaid="0.00")
    fake.org.invoices[invoice].pop("FullyPaidOnDate")
    _deliver(client, _event(fake, invoice, "2026-12-01T10:09:00.000"))
    _until(lambda: _paid(db, job) == ("N", 0))
    # ...and a late copy of an event older than both changes nothing.
    fake.org.pay(invoice, decimal.Decimal("25.00"))
    _deliver(client, _event(fake, invoice, "2026-12-01T10:01:00.000"))
    _until(lambda: ("xero", "superseded") in _queue(db).counts())
    assert _paid(db, job) == ("N", 0)


def test_unappliable_events_are_dead_lettered_with_their_reason(
    books: tuple[TestClient[Any], Path, FakeXero],
) -> None:
    client, db, fake = books
    unknown = "00000000-0000-0000-0000-000000000000"
    not_a_job = _invoice(fake, "NOT-A-JOB", paid=True)
    other_tenant = _invoice(fake, _job(db, 2), paid=True)
    _deliver(
        client,
        _event(fake, unknown, "2026-12-01T11:00:00.000"),
        _event(fake, not_a_job, "2026-12-01T11:00:01.000"),
        _event(fake, other_tenant, "2026-12-01T11:00:02.000", tenant="someone-elses-organisation"),
    )
    _until(lambda: len(_queue(db).dead()) == 3)
    reasons = sorted(d["error"] for d in _queue(db).dead())
    assert any("Xero has no invoice" in r for r in reasons)
    assert any("NOT-A-JOB" in r and "job_invoices" in r for r in reasons)
    assert any("someone-elses-organisation" in r for r in reasons)
    assert _paid(db, _job(db, 2)) == ("N", 0)


def test_only_the_exact_signed_bytes_are_accepted(books: tuple[TestClient[Any], Path, FakeXero]) -> None:
    client, db, fake = books
    job = _job(db, 3)
    invoice = _invoice(fake, job, paid=True)
    event = _event(fake, invoice, "2026-12-01T12:00:00.000")
    signed = json.dumps({"events": [event], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "QWERTY"})
    reserialised = json.dumps(json.loads(signed), indent=2).encode()  # same JSON, other whitespace
    assert _deliver(client, event, body=reserialised).status_code == 401
    unsigned = client.post("/webhooks/xero", content=signed.encode())
    assert unsigned.status_code == 401 and unsigned.content == b""
    wrong = client.post("/webhooks/xero", content=signed.encode(), headers={"x-xero-signature": sign("x", b"y")})
    assert wrong.status_code == 401
    time.sleep(0.3)
    assert _queue(db).counts() == {} and _paid(db, job) == ("N", 0)


def test_a_revoked_grant_keeps_events_waiting_not_dead(books: tuple[TestClient[Any], Path, FakeXero]) -> None:
    client, db, fake = books
    job = _job(db, 4)
    invoice = _invoice(fake, job, paid=True)
    store = GrantStore(StateDatabase(demo_environ(db)["BRIDGEHEAD_STATE_URL"]), Sealer([SEAL_KEY]))
    grant = store.load("books")
    assert grant is not None
    # The access token ran out and the user disconnected the app in Xero.
    fake.access.pop(grant.access_token)
    fake.refresh.clear()
    refreshes = fake.requests
    _deliver(client, _event(fake, invoice, "2026-12-01T13:00:00.000"))
    _until(lambda: (store.load("books") or grant).status == "reconnect")
    time.sleep(0.3)
    queue = _queue(db)
    assert queue.dead() == [] and _paid(db, job) == ("N", 0)
    assert fake.requests - refreshes <= 2  # the refused read and the refused refresh; no storm


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_HOSTILE_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "resourceId": st.one_of(
            st.text(max_size=40),
            st.integers(),
            st.uuids().map(str),
            st.sampled_from(["../../connections", "%00", "x?where=1"]),
        ),
        "eventCategory": st.sampled_from(["INVOICE", "CONTACT", "", "invoice"]) | _JSONISH,
        "eventType": st.sampled_from(["UPDATE", "CREATE"]) | _JSONISH,
        "eventDateUtc": st.sampled_from(["2026-12-01T10:00:00.000", "not a date", "", "9999-99-99"]) | _JSONISH,
        "tenantId": _JSONISH,
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_HOSTILE_EVENT | _JSONISH, max_size=4))
def test_hostile_signed_batches_never_fail_the_route_nor_write(
    books: tuple[TestClient[Any], Path, FakeXero], events: list[Any]
) -> None:
    """Signed junk is still junk: 200 or 400, never 5xx, and nothing in JOBMAST moves."""
    client, db, _ = books
    raw = json.dumps({"events": events}).encode()
    answer = client.post("/webhooks/xero", content=raw, headers={"x-xero-signature": sign(XERO_KEY, raw)})
    assert answer.status_code in (200, 400), answer.text
    # Each event ends applied, ignored or dead-lettered; none is left retrying an unexpected error.
    try:
        _until(lambda: {s for _, s in _queue(db).counts()} <= {"done", "dead", "superseded"}, timeout=5)
    except AssertionError:
        import sqlalchemy as sa

        from sync.webhooks.queue import WEBHOOK_EVENTS

        with _queue(db).db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(WEBHOOK_EVENTS.c.status, WEBHOOK_EVENTS.c.error, WEBHOOK_EVENTS.c.payload).where(
                    WEBHOOK_EVENTS.c.status.not_in(["done", "dead", "superseded"])
                )
            ).all()
        raise AssertionError(f"left retrying: {rows}") from None
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM JOBMAST WHERE PAIDFL <> 'N' OR PAIDDT <> 0").fetchone() == (0,)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=200), signature=st.text(max_size=60))
def test_any_body_with_a_wrong_signature_is_401_and_empty(body: bytes, signature: str) -> None:
    from sync.webhooks.signatures import xero_signature_valid

    assert not xero_signature_valid(XERO_KEY, body, signature) or signature.strip() == sign(XERO_KEY, body)
