"""The Transform protocol: one two-way conversion between a stored value and its API form.

A field's conversion is a chain of transforms (sentinel -> named transform -> code
map -> implied decimals), built from its ``FieldSpec`` by ``chain.py``. Each link
knows how to decode a stored value for the API, encode an API value for storage
(writes and filter values alike), and whether it keeps order, which decides if
range filters and sorting on the stored column mean what the API user asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = ("DECODING_ERRORS", "NUMBER_TEST", "Inline", "Transform", "Undecodable", "Unencodable")

NUMBER_TEST = "(type(v) is int or type(v) is float or type(v) is {Decimal} and not v.is_snan())"
"""An ``Inline`` test that ``v`` is a plain stored number, fit for a hashed lookup: an exact type, so
bool (a BIT) never matches a numeric code or sentinel, and no signalling NaN, which cannot be hashed
(``Decimal`` must be among the expression's names)."""


class Undecodable(ValueError):
    """A stored value this transform cannot turn into an API value (e.g. DUEDT=20230231)."""


class Unencodable(ValueError):
    """An API value this transform cannot store (e.g. a date before 1900 in CYYMMDD)."""


DECODING_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError)
"""What decoding a stored value nobody planned for can raise (a signalling NaN compared, a malformed
pair indexed): ``Undecodable`` (a ``ValueError``) and its kin. A row decoder serves any of them as
null and logs it, as it does ``Undecodable``: one odd value never turns a page into a 500."""


class Inline(NamedTuple):
    """A link's decoding step (or a null test) as an expression a generated row decoder writes out.

    ``expression`` reads the stored value as ``v``, may bind ``x`` for a moment, and marks each
    constant it uses as ``{name}``, a key of ``names`` (a row decoder gives every constant a name
    of its own). ``function()`` is the same expression as a function: a link's ``api_decoder`` is
    it, so the step called and the step written out are one text and cannot drift apart.
    Only our own expressions become source text; configured values (codes, sentinels) stay
    objects in ``names``.
    """

    expression: str
    names: Mapping[str, Any]

    def written(self, prefix: str) -> tuple[str, dict[str, Any]]:
        """The expression with every constant renamed ``prefix + name``, and those constants."""
        renamed = {name: prefix + name for name in self.names}
        return self.expression.format(**renamed), {renamed[name]: value for name, value in self.names.items()}

    def function(self) -> Callable[[Any], Any]:
        source, namespace = self.written("")
        return eval(f"lambda v: {source}", namespace)  # type: ignore[no-any-return]


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
