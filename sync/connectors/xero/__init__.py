"""Xero (Accounting API): the local fake the tests and ``bridgehead sandbox`` use."""

from sync.connectors.xero.fake import XERO_FAULTS, FakeXero, XeroFaults
from sync.connectors.xero.fake_org import FakeOrganisation, xero_date

__all__ = ("XERO_FAULTS", "FakeOrganisation", "FakeXero", "XeroFaults", "xero_date")
