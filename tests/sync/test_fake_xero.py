"""The fake Xero is as strict as Xero: OAuth rotation, limits and their headers, batches, idempotency."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import httpx
import pytest

from sync.connectors.xero import FakeXero, XeroFaults

CLIENT = "Basic " + base64.b64encode(b"sandbox-client:sandbox-client-secret").decode()


class Clock:
    def __init__(self, at: float = 1_796_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _client(fake: FakeXero) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(fake.handler), base_url="https://api.xero.test")


def _grant(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/connect/token", data=form, headers={"Authorization": CLIENT})


def _tokens(fake: FakeXero, http: httpx.Client) -> dict[str, Any]:
    answer = _grant(http, grant_type="authorization_code", code=fake.consent(), redirect_uri="http://localhost/cb")
    assert answer.status_code == 200
    return dict(answer.json())


def _api(fake: FakeXero, http: httpx.Client, access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}", "xero-tenant-id": fake.tenant_id, "Accept": "application/json"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeXero:
    return FakeXero(clock=clock)


def test_refresh_tokens_rotate_with_a_grace_period_then_invalid_grant(fake: FakeXero, clock: Clock) -> None:
    http = _client(fake)
    first = _tokens(fake, http)
    assert first["expires_in"] == 1800
    rotated = _grant(http, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert rotated["refresh_token"] != first["refresh_token"]
    clock.at += 10 * 60  # a worker that lost the race retries with the old token within the grace period
    assert _grant(http, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code == 200
    clock.at += 25 * 60  # past the 30-minute grace of the first use
    late = _grant(http, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}
    assert _grant(http, grant_type="refresh_token", refresh_token="never-issued").json()["error"] == "invalid_grant"
    wrong_client = http.post("/connect/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert wrong_client.status_code == 401
    clock.at += 61 * 24 * 3600  # an unused refresh token expires after 60 days
    assert _grant(http, grant_type="refresh_token", refresh_token=rotated["refresh_token"]).status_code == 400


def test_access_tokens_expire_and_every_call_needs_the_tenant(fake: FakeXero, clock: Clock) -> None:
    http = _client(fake)
    access = _tokens(fake, http)["access_token"]
    (connection,) = http.get("/connections", headers={"Authorization": f"Bearer {access}"}).json()
    assert connection["tenantId"] == fake.tenant_id and connection["tenantType"] == "ORGANISATION"
    no_tenant = http.get("/api.xro/2.0/Contacts", headers={"Authorization": f"Bearer {access}"})
    assert no_tenant.status_code == 403
    assert http.get("/api.xro/2.0/Contacts", headers=_api(fake, http, access)).status_code == 200
    clock.at += 31 * 60
    expired = http.get("/api.xro/2.0/Contacts", headers=_api(fake, http, access))
    assert expired.status_code == 401 and expired.json()["Detail"] == "TokenExpired"


def test_minute_and_day_limits_with_their_headers(clock: Clock) -> None:
    fake = FakeXero(clock=clock, per_minute=60, per_day=70)
    http = _client(fake)
    headers = _api(fake, http, _tokens(fake, http)["access_token"])
    answers = [http.get("/api.xro/2.0/Items", headers=headers) for _ in range(61)]
    assert [a.status_code for a in answers[:60]] == [200] * 60
    assert answers[0].headers["X-MinLimit-Remaining"] == "59" and answers[59].headers["X-MinLimit-Remaining"] == "0"
    assert answers[0].headers["X-DayLimit-Remaining"] == "69" and "X-AppMinLimit-Remaining" in answers[0].headers
    over = answers[60]
    assert over.status_code == 429 and over.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(over.headers["Retry-After"]) <= 61
    clock.at += 61
    for _ in range(10):
        assert http.get("/api.xro/2.0/Items", headers=headers).status_code == 200
    day = http.get("/api.xro/2.0/Items", headers=headers)
    assert day.status_code == 429 and day.headers["X-Rate-Limit-Problem"] == "day"
    assert int(day.headers["Retry-After"]) > 60  # until midnight UTC, not a minute


def test_more_than_five_calls_in_flight_are_refused() -> None:
    fake = FakeXero(latency_s=0.2, per_minute=1000)
    http = _client(fake)
    headers = _api(fake, http, _tokens(fake, http)["access_token"])
    statuses: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def call() -> None:
        answer = http.get("/api.xro/2.0/Items", headers=headers)
        with lock:
            statuses.append((answer.status_code, answer.headers.get("X-Rate-Limit-Problem")))

    threads = [threading.Thread(target=call) for _ in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for s, _ in statuses if s == 200) <= 5
    assert (429, "concurrent") in statuses


def test_batches_with_and_without_summarize_errors(fake: FakeXero) -> None:
    http = _client(fake)
    headers = _api(fake, http, _tokens(fake, http)["access_token"])
    good = {"Name": "Acme Tools", "ContactNumber": "C0001"}
    clash = {"Name": "Acme Tools", "ContactNumber": "C0002"}  # Name must be unique among active contacts
    long_number = {"Name": "Zeta", "ContactNumber": "C" * 51}
    strict = http.post("/api.xro/2.0/Contacts", json={"Contacts": [good, long_number]}, headers=headers)
    assert strict.status_code == 400 and strict.json()["Type"] == "ValidationException"
    assert fake.org.contacts == {}  # one bad element failed the whole batch, nothing was saved
    lenient = http.post(
        "/api.xro/2.0/Contacts?summarizeErrors=false", json={"Contacts": [good, clash, long_number]}, headers=headers
    )
    assert lenient.status_code == 200
    statuses = [(c["StatusAttributeString"], [e["Message"] for e in c.get("ValidationErrors", [])])
                for c in lenient.json()["Contacts"]]  # fmt: skip
    assert statuses[0] == ("OK", [])
    assert statuses[1][0] == "ERROR" and "must be unique across all active contacts" in statuses[1][1][0]
    assert statuses[2][0] == "ERROR" and "ContactNumber" in statuses[2][1][0]
    # POST updates by the natural key; PUT only creates.
    again = http.post("/api.xro/2.0/Contacts", json={"Contacts": [{**good, "EmailAddress": "a@acme.example"}]},
                      headers=headers)  # fmt: skip
    assert again.status_code == 200 and len(fake.org.contacts) == 1
    assert http.put("/api.xro/2.0/Contacts", json={"Contacts": [good]}, headers=headers).status_code == 400


def test_items_codes_and_invoices_follow_xeros_rules(fake: FakeXero) -> None:
    http = _client(fake)
    headers = _api(fake, http, _tokens(fake, http)["access_token"])
    items = {"Items": [{"Code": "BRKT-00011", "Name": "Bracket", "SalesDetails": {"UnitPrice": "12.50"}},
                       {"Code": "X" * 31, "Name": "Too long"}]}  # fmt: skip
    answer = http.post("/api.xro/2.0/Items?summarizeErrors=false", json=items, headers=headers).json()["Items"]
    assert [i["StatusAttributeString"] for i in answer] == ["OK", "ERROR"]
    assert "not be more than 30 characters" in answer[1]["ValidationErrors"][0]["Message"]
    http.post("/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Acme", "ContactNumber": "C1"}]}, headers=headers)
    invoice = {"Type": "ACCREC", "InvoiceNumber": "J000123", "Contact": {"ContactNumber": "C1"},
               "Date": "2026-12-01", "DueDate": "2026-12-31",
               "LineItems": [{"ItemCode": "BRKT-00011", "Description": "Bracket", "Quantity": "4",
                              "UnitAmount": "12.50"}]}  # fmt: skip
    made = http.put("/api.xro/2.0/Invoices", json={"Invoices": [invoice]}, headers=headers).json()["Invoices"][0]
    assert made["Total"] == "50.00" and made["Date"] == "/Date(1796083200000+0000)/"
    duplicate = http.put("/api.xro/2.0/Invoices?summarizeErrors=false", json={"Invoices": [invoice]}, headers=headers)
    assert duplicate.json()["Invoices"][0]["ValidationErrors"][0]["Message"] == "Invoice # must be unique."
    stranger = {**invoice, "InvoiceNumber": "J000124", "Contact": {"ContactNumber": "NOPE"}}
    refused = http.put("/api.xro/2.0/Invoices?summarizeErrors=false", json={"Invoices": [stranger]}, headers=headers)
    assert refused.json()["Invoices"][0]["StatusAttributeString"] == "ERROR"


def test_idempotency_key_replays_and_a_timeout_after_the_write_creates_nothing_twice(clock: Clock) -> None:
    fake = FakeXero(clock=clock, faults=XeroFaults(queued=[]))
    http = _client(fake)
    headers = _api(fake, http, _tokens(fake, http)["access_token"])
    body = {"Contacts": [{"Name": "Acme", "ContactNumber": "C1"}]}
    fake.faults.queued.append("timeout_after_write")
    with pytest.raises(httpx.ReadTimeout):
        http.post("/api.xro/2.0/Contacts", json=body, headers={**headers, "Idempotency-Key": "contact-C1-v1"})
    assert fake.org.writes == 1  # it was applied although the client never heard
    retry = http.post("/api.xro/2.0/Contacts", json=body, headers={**headers, "Idempotency-Key": "contact-C1-v1"})
    assert retry.status_code == 200 and fake.org.writes == 1 and len(fake.org.contacts) == 1
    other = http.post("/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Other"}]},
                      headers={**headers, "Idempotency-Key": "contact-C1-v1"})  # fmt: skip
    assert other.status_code == 400 and "different request" in other.json()["Message"]
    too_long = http.post("/api.xro/2.0/Contacts", json=body, headers={**headers, "Idempotency-Key": "k" * 129})
    assert too_long.status_code == 400
    assert fake.egress and sum(fake.egress.values()) > 0  # bytes sent back are metered


def test_injected_faults_apply_nothing(fake: FakeXero) -> None:
    http = _client(fake)
    headers = _api(fake, http, _tokens(fake, http)["access_token"])
    body = json.dumps({"Contacts": [{"Name": "Acme"}]})
    for kind, status in (("500", 500), ("503", 503), ("429", 429)):
        fake.faults.queued.append(kind)
        answer = http.post("/api.xro/2.0/Contacts", content=body, headers=headers)
        assert answer.status_code == status
    fake.faults.queued.append("timeout")
    with pytest.raises(httpx.ReadTimeout):
        http.post("/api.xro/2.0/Contacts", content=body, headers=headers)
    assert fake.org.contacts == {}


def test_client_credentials_unit_decimals_ids_and_429_bodies(clock: Clock) -> None:
    fake = FakeXero(clock=clock, per_minute=3)
    http = _client(fake)
    granted = _grant(http, grant_type="client_credentials")
    assert granted.status_code == 200 and "refresh_token" not in granted.json()  # a Custom Connection
    headers = _api(fake, http, granted.json()["access_token"])
    item = {"Code": "P1", "Name": "Pin", "SalesDetails": {"UnitPrice": 1.2345}}
    two = http.post("/api.xro/2.0/Items?summarizeErrors=false", json={"Items": [item]}, headers=headers).json()
    assert two["Items"][0]["SalesDetails"]["UnitPrice"] == "1.23"  # without unitdp=4, two decimals
    four = http.post("/api.xro/2.0/Items?unitdp=4", json={"Items": [{**item, "Code": "P2"}]}, headers=headers).json()
    assert four["Items"][0]["SalesDetails"]["UnitPrice"] == 1.2345
    wanted = four["Items"][0]["ItemID"]
    only = http.get("/api.xro/2.0/Items", params={"IDs": wanted}, headers=headers).json()["Items"]
    assert [i["ItemID"] for i in only] == [wanted]
    over = http.get("/api.xro/2.0/Items", headers=headers)
    assert over.status_code == 429 and over.json()["Status"] == 429 and "per minute" in over.json()["Detail"]
