"""Destination connectors and their registry (STYLE C4: named by a string, errors list the known names)."""

from __future__ import annotations

from sync.connectors.base import Connector, OutRecord, PushResult

__all__ = ("Connector", "OutRecord", "PushResult")
