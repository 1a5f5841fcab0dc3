"""The organisation behind the fake Xero: contacts, items and invoices with Xero's own rules.

Only what the connector uses, but with the rules the real Accounting API enforces, because a
fake that accepts what Xero refuses proves nothing: ContactNumber (at most 50 characters) and
Name (among active contacts) are unique, an Item Code has at most 30 characters and is unique,
an ACCREC InvoiceNumber is unique and its contact must exist; POST creates or updates (matched
by id, then by the natural key), PUT only creates. Dates go out as ``/Date(ms+0000)/``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

__all__ = ("FakeOrganisation", "xero_date")


def xero_date(value: dt.date | dt.datetime) -> str:
    """Xero's JSON date form: ``/Date(1573755038314+0000)/`` (milliseconds since the epoch, UTC)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    millis = int(value.astimezone(dt.UTC).timestamp() * 1000)
    return f"/Date({millis}+0000)/"


def _parse_date(value: Any) -> str | None:
    """A date Xero accepts on input (``2026-12-01`` or ``/Date(...)/``), in its output form."""
    if value is None:
        return None
    text = str(value)
    if text.startswith("/Date("):
        return text
    try:
        return xero_date(dt.date.fromisoformat(text[:10]))
    except ValueError:
        raise ValueError(f"'{text}' is not a valid date") from None


class FakeOrganisation:
    """One tenant's books. Every method validates all, then applies (or reports per element)."""

    def __init__(self, name: str = "Demo Company (Global)") -> None:
        self.name = name
        self.contacts: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.writes = 0
        """Elements created or updated: a test counts duplicates with it."""

    # -- contacts ---------------------------------------------------------------------------------

    def contact_errors(self, contact: dict[str, Any], *, create_only: bool) -> tuple[str | None, list[str]]:
        """(id it would update or None to create, validation errors)."""
        errors: list[str] = []
        target = self._match(self.contacts, contact, "ContactID", "ContactNumber")
        if create_only and target is not None:
            errors.append("A contact with this ContactNumber already exists")
        name = contact.get("Name", self.contacts[target]["Name"] if target else None)
        if not name:
            errors.append("The contact name must be specified")
        elif len(name) > 255:
            errors.append("The contact name must not be more than 255 characters long")
        number = contact.get("ContactNumber")
        if number is not None and len(str(number)) > 50:
            errors.append("The ContactNumber must not be more than 50 characters long")
        for other_id, other in self.contacts.items():
            if other_id != target and other["ContactStatus"] == "ACTIVE" and name and other["Name"] == name:
                errors.append(f"The contact name {name} is already assigned to another contact. "
                              "The contact name must be unique across all active contacts.")  # fmt: skip
        return target, errors

    def save_contact(self, contact: dict[str, Any], target: str | None) -> dict[str, Any]:
        stored = self.contacts.get(target) if target else None
        if stored is None:
            stored = {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE"}
            self.contacts[stored["ContactID"]] = stored
        for key in ("Name", "ContactNumber", "EmailAddress", "FirstName", "LastName", "IsCustomer", "ContactStatus"):
            if key in contact:
                stored[key] = contact[key]
        stored["UpdatedDateUTC"] = xero_date(dt.datetime.now(dt.UTC))
        self.writes += 1
        return dict(stored)

    # -- items ------------------------------------------------------------------------------------

    def item_errors(self, item: dict[str, Any], *, create_only: bool) -> tuple[str | None, list[str]]:
        errors: list[str] = []
        target = self._match(self.items, item, "ItemID", "Code")
        code = item.get("Code", self.items[target]["Code"] if target else None)
        if create_only and target is not None:
            errors.append(f"Item code '{code}' already exists")
        if not code:
            errors.append("Item code must be specified")
        elif len(str(code)) > 30:
            errors.append("The Code field must not be more than 30 characters long")
        for key in ("SalesDetails", "PurchaseDetails"):
            price = (item.get(key) or {}).get("UnitPrice")
            if price is not None:
                try:
                    decimal.Decimal(str(price))
                except decimal.InvalidOperation:
                    errors.append(f"{key}.UnitPrice must be a number")
        return target, errors

    def save_item(self, item: dict[str, Any], target: str | None) -> dict[str, Any]:
        stored = self.items.get(target) if target else None
        if stored is None:
            stored = {"ItemID": str(uuid.uuid4())}
            self.items[stored["ItemID"]] = stored
        for key in ("Code", "Name", "Description", "SalesDetails", "PurchaseDetails", "IsSold", "IsPurchased"):
            if key in item:
                stored[key] = item[key]
        stored["UpdatedDateUTC"] = xero_date(dt.datetime.now(dt.UTC))
        self.writes += 1
        return dict(stored)

    # -- invoices ---------------------------------------------------------------------------------

    def invoice_errors(self, invoice: dict[str, Any], *, create_only: bool) -> tuple[str | None, list[str]]:
        errors: list[str] = []
        target = self._match(self.invoices, invoice, "InvoiceID", "InvoiceNumber")
        if create_only and target is not None:
            errors.append("Invoice # must be unique.")
        if invoice.get("Type", "ACCREC" if target else None) not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be specified")
        contact = invoice.get("Contact") or {}
        known = self._match(self.contacts, contact, "ContactID", "ContactNumber") is not None or contact.get("Name")
        if (target is None or "Contact" in invoice) and not known:
            errors.append("The Contact does not exist or is not valid")
        for n, line in enumerate(invoice.get("LineItems") or (), 1):
            for key in ("Quantity", "UnitAmount"):
                if key in line:
                    try:
                        decimal.Decimal(str(line[key]))
                    except decimal.InvalidOperation:
                        errors.append(f"Line {n}: {key} must be a number")
            code = line.get("ItemCode")
            if code is not None and not any(i.get("Code") == code for i in self.items.values()):
                errors.append(f"Item code '{code}' is not valid")
        for key in ("Date", "DueDate"):
            try:
                _parse_date(invoice.get(key))
            except ValueError as exc:
                errors.append(f"{key}: {exc}")
        return target, errors

    def save_invoice(self, invoice: dict[str, Any], target: str | None) -> dict[str, Any]:
        stored = self.invoices.get(target) if target else None
        if stored is None:
            stored = {"InvoiceID": str(uuid.uuid4()), "Status": "DRAFT", "AmountPaid": "0.00"}
            self.invoices[stored["InvoiceID"]] = stored
        for key in ("Type", "InvoiceNumber", "Reference", "Status", "LineAmountTypes", "CurrencyCode"):
            if key in invoice:
                stored[key] = invoice[key]
        for key in ("Date", "DueDate"):
            if key in invoice:
                stored[key] = _parse_date(invoice[key])
        if "Contact" in invoice:
            contact_id = self._match(self.contacts, invoice["Contact"], "ContactID", "ContactNumber")
            if contact_id is None:  # Xero creates a contact named in an invoice on the fly
                contact_id = self.save_contact({"Name": invoice["Contact"]["Name"]}, None)["ContactID"]
            stored["Contact"] = {"ContactID": contact_id, "Name": self.contacts[contact_id]["Name"]}
        if "LineItems" in invoice:
            lines, total = [], decimal.Decimal(0)
            for line in invoice["LineItems"]:
                amount = decimal.Decimal(str(line.get("Quantity", 1))) * decimal.Decimal(str(line.get("UnitAmount", 0)))
                total += amount
                lines.append({**line, "LineAmount": str(amount.quantize(decimal.Decimal("0.01")))})
            stored["LineItems"], stored["Total"] = lines, str(total.quantize(decimal.Decimal("0.01")))
        stored["UpdatedDateUTC"] = xero_date(dt.datetime.now(dt.UTC))
        self.writes += 1
        return dict(stored)

    def pay(self, invoice_id: str, amount: decimal.Decimal) -> dict[str, Any]:
        """Record a payment (what a bookkeeper does in Xero; tests drive it to make webhooks real)."""
        stored = self.invoices[invoice_id]
        paid = decimal.Decimal(stored.get("AmountPaid", "0")) + amount
        stored["AmountPaid"] = str(paid.quantize(decimal.Decimal("0.01")))
        if paid >= decimal.Decimal(stored.get("Total", "0")):
            stored["Status"] = "PAID"
            stored["FullyPaidOnDate"] = xero_date(dt.datetime.now(dt.UTC))
        stored["UpdatedDateUTC"] = xero_date(dt.datetime.now(dt.UTC))
        return dict(stored)

    def record_payment(self, invoice_id: str, amount: decimal.Decimal) -> dict[str, Any]:
        """A payment as ``PUT Payments`` makes it: applied to the invoice, kept with its own id."""
        invoice = self.pay(invoice_id, amount)
        payment: dict[str, Any] = {
            "PaymentID": str(uuid.uuid4()), "Amount": str(amount.quantize(decimal.Decimal("0.01"))),
            "Date": xero_date(dt.datetime.now(dt.UTC)), "Status": "AUTHORISED",
            "Invoice": {"InvoiceID": invoice_id, "InvoiceNumber": invoice.get("InvoiceNumber")},
        }  # fmt: skip
        self.payments[payment["PaymentID"]] = payment
        return dict(payment)

    @staticmethod
    def _match(table: dict[str, dict[str, Any]], given: dict[str, Any], id_key: str, natural: str) -> str | None:
        if given.get(id_key):
            return str(given[id_key]) if given[id_key] in table else None
        value = given.get(natural)
        if value is None:
            return None
        return next((k for k, v in table.items() if v.get(natural) == value), None)
