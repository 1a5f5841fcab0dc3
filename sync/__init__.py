"""Reverse ETL and shared state. Blocking code; imports legacy_adapters, never litestar or gateway."""

from __future__ import annotations

from sync.state import StateDatabase

__all__ = ("StateDatabase",)
