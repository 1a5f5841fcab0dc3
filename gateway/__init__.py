"""The HTTP face of Bridgehead: a Litestar app generated from a mapping."""

from __future__ import annotations

from gateway.app import create_app

__all__ = ("create_app",)
