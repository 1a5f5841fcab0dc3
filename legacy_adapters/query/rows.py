"""Turn fetched legacy rows into API dicts through each field's codec.

A value that cannot be decoded (a stored 20230231, an unknown status letter) is
served as null and logged with table, key and column, so one dirty row never
hides the others and never goes unnoticed.

This is the per-row hot path of every list and export: the plan is built once per
query, each field's codec is specialised once (``FieldCodec.api_decoder``), and the
loop does no attribute or length look-ups per value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from legacy_adapters.transforms import Undecodable

if TYPE_CHECKING:
    import sqlalchemy as sa

    from legacy_adapters.query.resource import BoundField, Resource

__all__ = ("RowDecoder", "WarningThrottle")

log = structlog.get_logger("bridgehead.rows")

WARN_INTERVAL_S = 300.0


class WarningThrottle:
    """Say once per interval that a stored value cannot be decoded, not on every read of its row.

    A dirty row on a busy first page would otherwise log on every request (a fifth of
    that page's time when profiled) and drown the log; the count of repeats is kept.
    """

    def __init__(self, interval_s: float = WARN_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.suppressed = 0
        self._last: dict[tuple[Any, ...], float] = {}

    def allow(self, key: tuple[Any, ...]) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self.suppressed += 1
            return False
        if len(self._last) >= 10_000:  # bounded: a table full of dirt must not grow memory
            self._last.clear()
        self._last[key] = now
        return True


_Step = tuple[str, Callable[[Any], Any], int, tuple[int, ...] | None]
"""(field name, decoder, column position, all positions for a multi-column field else None)."""


@dataclass(frozen=True, slots=True)
class RowDecoder:
    """Decodes rows whose columns come in the order of ``columns``."""

    resource: Resource
    fields: tuple[BoundField, ...]
    columns: tuple[str, ...]
    _key_index: tuple[int, ...]
    _steps: tuple[_Step, ...]
    _fast: Callable[[Sequence[Any]], dict[str, Any]]

    @classmethod
    def for_columns(
        cls, resource: Resource, fields: Sequence[BoundField], columns: Sequence[sa.Column[Any]]
    ) -> RowDecoder:
        names = tuple(c.name for c in columns)
        index = {name: i for i, name in enumerate(names)}
        plan = tuple((f.name, f.codec, tuple(index[c.name] for c in f.columns)) for f in fields)
        steps = tuple(
            (name, codec.api_decoder(), positions[0], positions if len(positions) > 1 else None)
            for name, codec, positions in plan
        )
        key_index = tuple(index[c.name] for k in resource.key for c in k.columns if c.name in index)
        return cls(resource, tuple(fields), names, key_index, steps, _generated(steps))

    def decode(self, row: Sequence[Any]) -> dict[str, Any]:
        """One API dict; undecodable values become None and are logged."""
        try:
            return self._fast(row)
        except Undecodable:  # a dirty value: the loop below serves it as null and says where it is
            return self._checked(row)

    def _checked(self, row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, decode, position, positions in self._steps:
            raw = row[position] if positions is None else tuple(row[i] for i in positions)
            try:
                out[name] = decode(raw)
            except Undecodable as exc:
                out[name] = None
                key = [row[i] for i in self._key_index]
                if self.resource.warnings.allow((name, *key)):
                    log.warning(
                        "undecodable value served as null",
                        table=self.resource.spec.table,
                        key=key,
                        column=self.columns[position],
                        field=name,
                        reason=str(exc),
                    )
        return out

    def problems(self, row: Sequence[Any]) -> Iterator[tuple[str, str]]:
        """(field, reason) for each value of ``row`` that cannot be decoded; nothing is logged."""
        for name, _, reason in self.outcomes(row):
            if reason is not None:
                yield name, reason

    def outcomes(self, row: Sequence[Any]) -> Iterator[tuple[str, Any, str | None]]:
        """(field, API value, why it cannot be decoded or None) for every field of ``row``; nothing is logged."""
        for name, decode, position, positions in self._steps:
            try:
                yield name, decode(row[position] if positions is None else tuple(row[i] for i in positions)), None
            except Undecodable as exc:
                yield name, None, str(exc)

    def decode_all(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """``decode`` over many rows."""
        decode = self.decode
        return [decode(r) for r in rows]

    def raw(self, row: Sequence[Any], names: Sequence[str]) -> tuple[Any, ...]:
        """The stored values of the named columns, e.g. for a keyset cursor or an ETag."""
        return tuple(row[self.columns.index(n)] for n in names)


def _generated(steps: tuple[_Step, ...]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """The row decoder for one plan, as a single generated function: a dict display of decoder calls.

    ``{"job_number": d0(r[0]), "ordered_at": d4((r[4], r[5])), ...}`` does per row only what the
    plan says, with no loop, tuple unpacking or ``try`` per field: the hand-written decoder's
    cost. It raises ``Undecodable`` at the first dirty value; ``decode`` then takes the checked
    loop, which serves that value as null and logs it. Only the decoders and positions of the
    plan reach the source text (names go in as ``repr`` literals).
    """
    namespace: dict[str, Any] = {}
    items = []
    for k, (name, decode, position, positions) in enumerate(steps):
        step = getattr(decode, "step", None)  # "None for NULL, else one step": the test goes inline
        if step is not None and positions is None:
            namespace[f"d{k}"] = step
            items.append(f"{name!r}: None if (v := r[{position}]) is None else d{k}(v)")
            continue
        namespace[f"d{k}"] = decode
        argument = f"r[{position}]" if positions is None else "(" + "".join(f"r[{i}], " for i in positions) + ")"
        items.append(f"{name!r}: d{k}({argument})")
    source = "def decode(r):\n    return {" + ", ".join(items) + "}\n"
    exec(compile(source, "<row decoder>", "exec"), namespace)
    decoder: Callable[[Sequence[Any]], dict[str, Any]] = namespace["decode"]
    return decoder
