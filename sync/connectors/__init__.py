"""Destination connectors and their registry (STYLE C4: named by a string, errors list the known names)."""

from __future__ import annotations

from sync.connectors.base import Connector, Outcome, OutRecord, PushResult

__all__ = ("Connector", "OutRecord", "Outcome", "PushResult")
