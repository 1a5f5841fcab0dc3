"""The Transform protocol: one two-way conversion between a stored value and its API form.

A field's conversion is a chain of transforms (sentinel -> named transform -> code
map -> implied decimals), built from its ``FieldSpec`` by ``chain.py``. Each link
knows how to decode a stored value for the API, encode an API value for storage
(writes and filter values alike), and whether it keeps order, which decides if
range filters and sorting on the stored column mean what the API user asked.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ("Transform", "Undecodable", "Unencodable")


class Undecodable(ValueError):
    """A stored value this transform cannot turn into an API value (e.g. DUEDT=20230231)."""


class Unencodable(ValueError):
    """An API value this transform cannot store (e.g. a date before 1900 in CYYMMDD)."""


@runtime_checkable
class Transform(Protocol):
    """Two-way conversion of one field's value.

    ``to_legacy(to_api(raw)) == raw`` for every canonical stored value, and
    ``to_api(to_legacy(v)) == v`` for every API value the transform accepts.
    """

    @property
    def order_preserving(self) -> bool:  # read-only: frozen dataclasses and computed properties both satisfy it
        """Stored order equals API order, so ``lt``/``gt`` and ``sort`` may run on the column."""
        ...

    def to_api(self, raw: Any) -> Any:
        """Decode a stored value; raise ``Undecodable`` when it cannot be."""
        ...

    def to_legacy(self, value: Any) -> Any:
        """Encode an API value for storage or comparison; raise ``Unencodable`` when it cannot be."""
        ...
