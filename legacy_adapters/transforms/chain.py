"""FieldCodec: one field's whole conversion, built from its ``FieldSpec``.

Reading runs the links in order: null sentinels, the named transform (or the date/time
codecs), the code map, implied decimals (or a DECIMAL column's scale). Writing (and
translating a filter value) runs them backwards and ends with a check that the stored
value is not a sentinel, which would read back as null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from .base import DECODING_ERRORS, Inline, Undecodable, Unencodable
from .dates import DateTimePair, date_codec, time_codec, timestamp
from .numbers import DecimalText, DecimalValue, ImpliedDecimal, NullIf, WholeNumber
from .text import CodeMap, Unmapped, code_map

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mapping.model import FieldSpec
    from .base import Transform

__all__ = ("FieldCodec", "Step", "build_codec", "called", "plan_decoder")


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """A field's conversion between its stored column(s) and its API value."""

    columns: tuple[str, ...]
    """The stored column, or the (date, time) columns of a ``date_time`` pair."""
    links: tuple[Transform, ...] = ()
    """Transforms in read order; empty means the stored value is served as it is."""
    null_if: NullIf | None = None

    @property
    def sentinels(self) -> tuple[str | int | float, ...]:
        """Stored values meaning null: SQL turns ``isnull`` into them and keeps them out of ranges.

        A text sentinel of a fixed-width column comes padded too: PostgreSQL and SQL Server
        compare CHAR values without their pad, but SQLite keeps ``'  '`` apart from ``''``.
        """
        if self.null_if is None:
            return ()
        values = self.null_if.values
        width = getattr(self.links[0], "length", None) if self.links else None
        if isinstance(width, int):
            padded = tuple(v.ljust(width) for v in values if isinstance(v, str) and len(v) < width)
            values = tuple(dict.fromkeys((*values, *padded)))
        return values

    @property
    def order_preserving(self) -> bool:
        """Stored order is API order, so range filters and sorting may run on the column(s)."""
        return all(link.order_preserving for link in self.links)

    @property
    def code_map(self) -> CodeMap | None:
        """The field's code map, whose unknown codes decide what filters on it must match."""
        return next((link for link in self.links if isinstance(link, CodeMap)), None)

    def stored_code(self, code: Any) -> Any:
        """A map's code as the column holds it: through the links before the map (a padded CHAR)."""
        links = self.links[: next(i for i, link in enumerate(self.links) if isinstance(link, CodeMap))]
        for link in reversed(links):
            code = link.to_legacy(code)
        return code

    @property
    def places(self) -> int | None:
        """Decimal places every API value has (implied decimals, a DECIMAL's scale), else None."""
        links = self.links[:-1] if self.links and isinstance(self.links[-1], DecimalText) else self.links
        last = links[-1] if links else None
        if isinstance(last, ImpliedDecimal):
            return last.scale
        return last.places if isinstance(last, DecimalValue) else None

    def _is_null(self, raw: Any) -> bool:
        # A pair is null when its date part is: a time of day without a date means nothing.
        if len(self.columns) == 2 and isinstance(raw, tuple | list):
            raw = raw[0]
        return self.null_if.is_null(raw) if self.null_if else raw is None

    def to_api(self, raw: Any) -> Any:
        """Decode a stored value (a tuple for a pair of columns) into its API value.

        Raises:
            Undecodable: a link cannot decode it, e.g. DUEDT=20230231.
        """
        try:
            if self._is_null(raw):
                return None
            value = raw
            for link in self.links:
                value = link.to_api(value)
            return value
        except Undecodable:
            raise
        except DECODING_ERRORS as exc:  # a value no link was written for: dirty like any other
            raise Undecodable(f"cannot decode {_shown(raw)}: {type(exc).__name__}: {exc}") from exc

    def api_plan(self) -> tuple[Step | None, tuple[Step, ...]]:
        """``to_api`` taken apart for a generated row decoder: the null test and the steps after it.

        The test is ``None`` when only SQL NULL is null (``pair_date_is_none`` for a pair of columns);
        each step is a link's ``Inline`` form when it has one, else its ``api_decoder`` (its ``to_api``
        without either). ``api_decoder`` is the steps called in turn; a row decoder writes the
        ``Inline`` ones out instead of calling them (``query/rows.py``).
        """
        steps = tuple(_step_of(link) for link in self.links)
        if self.null_if is None:
            # A pair is null when its date part is (``to_api``): a time of day without a date means nothing.
            return (pair_date_is_none if len(self.columns) == 2 else None), steps
        if len(self.columns) == 2:
            date_is_null = self.null_if.tester()

            def null(raw: Any) -> bool:
                return date_is_null(raw[0] if isinstance(raw, tuple | list) else raw)

            return null, steps
        return self.null_if.inline_test(), steps

    def api_decoder(self) -> Callable[[Any], Any]:
        """``to_api`` specialised once per field, for loops over many rows.

        Same results and the same ``Undecodable`` errors as ``to_api``; each link contributes
        its own ``api_decoder`` when it has one (its ``to_api`` otherwise), and the null test
        and the chain are closed over instead of looked up per value.
        """
        return plan_decoder(self.api_plan())

    def to_legacy(self, value: Any) -> Any:
        """Encode an API value for storage or for comparison with the column(s).

        ``None`` becomes the first sentinel (SQL NULL without sentinels); for a pair, the time
        column then gets 0 when the schema uses sentinels, as such columns are NOT NULL.

        Raises:
            Unencodable: a link refuses the value, or it would be stored as a sentinel.
        """
        pair = len(self.columns) == 2
        if value is None:
            null = self.null_if.written_as if self.null_if else None
            return (null, None if null is None else 0) if pair else null
        raw = value
        for link in reversed(self.links):
            raw = link.to_legacy(raw)
        if self.null_if and self._is_null(raw):
            raise Unencodable(f"{value!r} would be stored as {raw!r}, which reads back as null")
        return raw


def _is_none(raw: Any) -> bool:
    return raw is None


Step: TypeAlias = "Callable[[Any], Any] | Inline"
"""One step of a field's plan (or its null test): a function, or an expression to write out (``Inline``)."""


def _step_of(link: Transform) -> Step:
    inline = getattr(link, "api_inline", None)
    if inline is not None:
        return inline()  # type: ignore[no-any-return]
    decoder = getattr(link, "api_decoder", None)
    return decoder() if decoder is not None else link.to_api


def called(step: Step) -> Callable[[Any], Any]:
    """A plan's step as a function: an ``Inline`` one compiled."""
    return step.function() if isinstance(step, Inline) else step


def plan_decoder(plan: tuple[Step | None, tuple[Step, ...]]) -> Callable[[Any], Any]:
    """A field's ``api_plan`` as one function (``FieldCodec.api_decoder``): for a caller that has the
    plan already (a row decoder, which also writes it out), so it is not made twice."""
    plan_null, plan_steps = plan
    null, steps = called(plan_null) if plan_null is not None else None, tuple(map(called, plan_steps))
    if len(steps) == 1:
        (only,) = steps
        if null is None:
            return _NoneOrStep(only)
        return lambda raw: None if null(raw) else only(raw)

    is_null = null if null is not None else _is_none

    def decode(raw: Any) -> Any:
        if is_null(raw):
            return None
        for step in steps:
            raw = step(raw)
        return raw

    return decode


def _shown(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def pair_date_is_none(raw: Any) -> bool:
    """The null test of a (date, time) pair without sentinels: its date part is SQL NULL."""
    return (raw[0] if isinstance(raw, tuple | list) else raw) is None


class _NoneOrStep:
    """``None`` for SQL NULL, else the field's one step; ``step`` is public so a generated row
    decoder can inline the NULL test and call the step directly (``query/rows.py``)."""

    __slots__ = ("step",)

    def __init__(self, step: Callable[[Any], Any]) -> None:
        self.step = step

    def __call__(self, raw: Any) -> Any:
        return None if raw is None else self.step(raw)


def build_codec(spec: FieldSpec) -> FieldCodec:
    """Build the codec for one field.

    Args:
        spec: The field as written in the mapping file.

    Returns:
        The field's codec; identity when it names no transform, codec, map or scale.

    Raises:
        UnknownTransform: ``spec.transform`` is not a registered name.
        ValueError: an option the transform needs is missing or invalid, in a plain sentence.
    """
    # The registry lives in the package __init__, which imports this module first.
    from . import get_transform

    links: list[Transform] = []
    if spec.transform is not None:
        if spec.date is not None or spec.time is not None:
            raise ValueError("give either 'transform' or 'date'/'time', not both")
        links.append(get_transform(spec.transform)(spec))
    elif spec.date is not None or spec.time is not None:
        links.append(_calendar(spec))
    elif spec.pivot_year is not None:
        raise ValueError("'pivot_year' goes with a date codec such as date: yymmdd")
    if spec.map is not None:
        links.append(code_map(spec.map, _unmapped(spec)))
    elif spec.unmapped is not None:
        raise ValueError("'unmapped' says what codes missing from a 'map' become; this field has no map")
    if spec.scale is not None:
        if spec.decimals is not None:
            raise ValueError(
                "'scale' is for integers holding implied decimals, 'decimals' for DECIMAL columns: not both"
            )
        links.append(ImpliedDecimal(spec.scale))
    elif spec.type == "decimal" and not links:
        links.append(DecimalValue(spec.decimals))
    elif spec.type == "integer" and not links:
        links.append(WholeNumber())
    elif spec.decimals is not None:
        raise ValueError("'decimals' is the scale of a DECIMAL column served as type: decimal")
    if spec.as_string:
        if spec.type != "decimal":
            raise ValueError("'as_string' serves a decimal as text: it needs type: decimal")
        if not links:
            links.append(DecimalValue(spec.decimals))
        links.append(DecimalText())
    if isinstance(links[0] if links else None, DateTimePair):
        assert spec.time_column is not None  # the pair's factory has checked it
        columns: tuple[str, ...] = (spec.column, spec.time_column)
    elif spec.time_column is not None:
        raise ValueError("'time_column' is only used for a datetime from two columns (type: datetime)")
    else:
        columns = (spec.column,)
    return FieldCodec(columns, tuple(links), NullIf(tuple(spec.null_if)) if spec.null_if else None)


def _calendar(spec: FieldSpec) -> Transform:
    """The link for ``date:``/``time:``: a date, a time, or both joined into a timestamp."""
    if spec.type == "datetime":
        return timestamp(spec)
    if spec.type == "date" and spec.time is None:
        assert spec.date is not None
        return date_codec(spec.date, spec.pivot_year)
    if spec.type == "time" and spec.date is None:
        assert spec.time is not None
        if spec.pivot_year is not None:
            raise ValueError("'pivot_year' goes with a date codec, not a time")
        return time_codec(spec.time)
    given = " and ".join(f"{k}: {getattr(spec, k)}" for k in ("date", "time") if getattr(spec, k) is not None)
    raise ValueError(f"{given} needs type: date, time or datetime to match (it is {spec.type!r})")


def _unmapped(spec: FieldSpec) -> Unmapped:
    unmapped = spec.unmapped
    if unmapped is None or unmapped == "null":
        return "null"
    if unmapped == "raw":
        return "raw"
    return ("default", unmapped.default)
