"""``RedactedText``: a text column that never stores a secret.

Errors, reasons and alert messages quote what destinations, drivers and HTTP clients
said, and those words can carry a token (a destination echoing the credential it
refused, an HTTP error naming a URL with its password). Redacting in the column type
covers every write path, present and future, of every store backend; the console,
the CLI and alert channels read these columns and so show only redacted text.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from legacy_adapters.redaction import redact_text

__all__ = ("RedactedText",)


class RedactedText(sa.types.TypeDecorator[str]):
    """``sa.Text`` whose values pass through ``redact_text`` on the way in."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else redact_text(str(value))
