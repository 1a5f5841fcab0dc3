"""Legacy records -> Xero Contacts, Items and ACCREC Invoices, in batches of at most 50.

A sync's field map names Xero's JSON with dotted paths (``SalesDetails.UnitPrice``,
``Contact.ContactID``, ``LineItems.0.Quantity``); the connector nests them, turns dates into
Xero's ``/Date(ms+0000)/`` form, and sends each batch as one ``POST`` (create or update) with
``summarizeErrors=false``, so every element comes back with its own ``StatusAttributeString`` and
``ValidationErrors``: one refused contact dead-letters alone and the rest are delivered.

Records are matched by their natural key before their Xero id is known (POST matches a contact by
``ContactNumber``, an item by ``Code``, an invoice by ``InvoiceNumber``), and every batch carries an
``Idempotency-Key`` made from the records' send ids and the exact body: a retry after a timeout that
had in fact been applied is replayed by Xero instead of applied again. Prices and quantities go out
with 4 decimals (``unitdp=4``), as the legacy implied decimals give them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
from typing import TYPE_CHECKING, Any

import msgspec

from sync.connectors.base import OutRecord, PushResult
from sync.connectors.xero.errors import element_error
from sync.connectors.xero.fake_org import xero_date
from sync.exceptions import Fatal, Skippable, SyncError

if TYPE_CHECKING:
    from sync.connectors.xero.client import XeroClient

__all__ = ("COLLECTIONS", "MAX_BATCH", "XeroConnector", "nest", "parse_xero_date")

MAX_BATCH = 50
"""Xero's recommended ceiling of elements per write."""
COLLECTIONS = {
    # object -> (collection, id field, natural key field, its maximum length)
    "contact": ("Contacts", "ContactID", "ContactNumber", 50),
    "item": ("Items", "ItemID", "Code", 30),
    "invoice": ("Invoices", "InvoiceID", "InvoiceNumber", 255),
}
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_NUMBERS = frozenset({"UnitAmount", "Quantity", "UnitPrice", "DiscountRate", "LineAmount", "TaxAmount"})
_DATE_RE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


class XeroConnector:
    def __init__(self, client: XeroClient, kind: str) -> None:
        if kind not in COLLECTIONS:
            raise Fatal(f"Xero writes {', '.join(COLLECTIONS)}, not {kind!r}")
        self.client, self.kind = client, kind
        self.collection, self.id_field, self.natural, self.natural_max = COLLECTIONS[kind]
        self.max_batch = MAX_BATCH

    # -- writes --------------------------------------------------------------------------------

    def push(self, records: list[OutRecord]) -> list[PushResult]:
        results: dict[str, PushResult] = {}
        for start in range(0, len(records), MAX_BATCH):
            results.update(self._push_batch(records[start : start + MAX_BATCH]))
        return [results[r.key] for r in records]

    def _push_batch(self, records: list[OutRecord]) -> dict[str, PushResult]:
        results: dict[str, PushResult] = {}
        sending: list[tuple[OutRecord, dict[str, Any]]] = []
        for rec in records:
            try:
                sending.append((rec, self._element(rec)))
            except Skippable as exc:
                results[rec.key] = PushResult(rec.key, error=exc)
        if not sending:
            return results
        body = {self.collection: [element for _, element in sending]}
        raw = _ENCODER.encode(body)
        sends = sorted(rec.send_id or rec.key for rec, _ in sending)
        key = f"bh-{self.kind}-" + hashlib.sha256(_ENCODER.encode([sends]) + raw).hexdigest()[:48]
        answer = self.client.request("POST", f"/{self.collection}", params={"summarizeErrors": "false", "unitdp": "4"},
                                     body=msgspec.json.decode(raw), idempotency_key=key)  # fmt: skip
        elements = (answer or {}).get(self.collection) if isinstance(answer, dict) else None
        if not isinstance(elements, list) or len(elements) != len(sending):
            raise Fatal(f"Xero answered {self.collection} with {len(elements or [])} elements for {len(sending)} sent")
        for (rec, _), element in zip(sending, elements, strict=True):
            results[rec.key] = self._result(rec, element)
        return results

    def _element(self, rec: OutRecord) -> dict[str, Any]:
        element = nest({k: _xero_value(k, v) for k, v in rec.values.items() if v is not None})
        if rec.remote_id:
            element[self.id_field] = rec.remote_id
        if self.kind == "contact" and rec.op != "delete":
            element.setdefault("ContactNumber", _legacy_key(rec.key))
        if self.kind == "invoice":
            element.setdefault("Type", "ACCREC")
        if rec.op == "delete":
            return self._removal(rec, element)
        natural = element.get(self.natural)
        if natural is None and rec.remote_id is None:
            raise Skippable(f"{self.natural} is empty: Xero needs it to match the record", code="MISSING_KEY")
        if natural is not None and len(str(natural)) > self.natural_max:
            raise Skippable(f"{self.natural} {str(natural)!r} has {len(str(natural))} characters; Xero allows "
                            f"{self.natural_max}", code="TOO_LONG")  # fmt: skip
        return element

    def _removal(self, rec: OutRecord, element: dict[str, Any]) -> dict[str, Any]:
        """Xero keeps history: a contact is archived, an invoice voided; items are not removed."""
        if rec.remote_id is None:
            raise Skippable("nothing to remove: the record never reached Xero", code="NOT_FOUND")
        if self.kind == "contact":
            return {"ContactID": rec.remote_id, "ContactStatus": "ARCHIVED"}
        if self.kind == "invoice":
            return {"InvoiceID": rec.remote_id, "Status": "VOIDED"}
        raise Skippable("Xero items are not deleted by a sync: use mode upsert for items", code="NOT_REMOVABLE")

    def _result(self, rec: OutRecord, element: dict[str, Any]) -> PushResult:
        status = str(element.get("StatusAttributeString") or "OK").upper()
        messages = [str(e.get("Message")) for e in element.get("ValidationErrors") or () if e.get("Message")]
        if status == "ERROR":
            error: SyncError = element_error(status, messages)
            return PushResult(rec.key, error=error)
        remote = element.get(self.id_field) or rec.remote_id
        extra: dict[str, Any] = {self.natural: element.get(self.natural)}
        warnings = [str(w.get("Message")) for w in element.get("Warnings") or () if w.get("Message")]
        if warnings or status == "WARNING":
            extra["warnings"] = warnings or messages
        if self.kind == "invoice":
            extra.update({k: element[k] for k in ("Status", "Total") if k in element})
        return PushResult(rec.key, remote_id=str(remote) if remote else None, extra=extra)

    # -- reads (``owner: newest``) ---------------------------------------------------------------

    def fetch(self, remote_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(remote_ids), MAX_BATCH):
            chunk = remote_ids[start : start + MAX_BATCH]
            answer = self.client.request("GET", f"/{self.collection}", params={"IDs": ",".join(chunk), "unitdp": "4"})
            for element in (answer or {}).get(self.collection) or ():
                flat = flatten(element)
                updated = parse_xero_date(element.get("UpdatedDateUTC"))
                flat["updatedAt"] = updated.isoformat() if updated else None
                found[str(element.get(self.id_field))] = flat
        return found


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """``{"LineItems.0.Quantity": 2, "Contact.ContactID": "x"}`` -> Xero's nested JSON (digits index lists)."""
    out: dict[str, Any] = {}
    for path, value in values.items():
        parts = path.split(".")
        node: Any = out
        for part, after in zip(parts, [*parts[1:], None], strict=True):
            if after is None:
                _put(node, part, value)
                break
            child = _get(node, part)
            if child is None:
                child = [] if after.isdigit() else {}
                _put(node, part, child)
            node = child
    return out


def _get(node: Any, part: str) -> Any:
    if isinstance(node, list):
        index = int(part)
        return node[index] if index < len(node) else None
    return node.get(part)


def _put(node: Any, part: str, value: Any) -> None:
    if isinstance(node, list):
        index = int(part)
        while len(node) <= index:
            node.append({})
        node[index] = value
    else:
        node[part] = value


def flatten(element: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in element.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for n, item in enumerate(value):
                out.update(flatten(item, f"{path}.{n}."))
        else:
            out[path] = value
    return out


def parse_xero_date(value: Any) -> dt.datetime | None:
    match = _DATE_RE.fullmatch(str(value or ""))
    if match is None:
        return None
    return dt.datetime.fromtimestamp(int(match.group(1)) / 1000, dt.UTC)


def _xero_value(path: str, value: Any) -> Any:
    """Dates in Xero's form (``Date``, ``DueDate`` and any date value); numbers as JSON numbers."""
    if isinstance(value, dt.datetime) and path.rsplit(".", 1)[-1].endswith("Date"):
        return xero_date(value.date())  # an invoice's Date is a day: the legacy local date, not an instant
    if isinstance(value, dt.datetime | dt.date):
        return xero_date(value)
    if isinstance(value, str) and path.rsplit(".", 1)[-1].endswith("Date"):
        try:
            return xero_date(dt.date.fromisoformat(value[:10]))
        except ValueError:
            raise Skippable(f"{path}: {value!r} is not a date", code="INVALID_DATE") from None
    if isinstance(value, float):
        return decimal.Decimal(str(value))
    if isinstance(value, str) and path.rsplit(".", 1)[-1] in _NUMBERS:
        # A price taken from another sync's delivered values (stored as JSON text): a number again.
        try:
            return decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise Skippable(f"{path}: {value!r} is not a number", code="INVALID_NUMBER") from None
    return value


def _legacy_key(key: str) -> str:
    """The legacy key as a contact number: ``["C0042"]`` -> ``C0042`` (composite keys joined by ``|``)."""
    try:
        parts = msgspec.json.decode(key)
    except msgspec.DecodeError:
        return key
    return "|".join(str(p) for p in parts) if isinstance(parts, list) else str(parts)
