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

from legacy_adapters.query.plan_cache import PlanCache
from legacy_adapters.transforms.base import DECODING_ERRORS, Inline
from legacy_adapters.transforms.chain import called, pair_date_is_none, plan_decoder

if TYPE_CHECKING:
    import sqlalchemy as sa

    from legacy_adapters.query.resource import BoundField, Resource
    from legacy_adapters.transforms.chain import Step

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


_DECODERS: PlanCache[RowDecoder] = PlanCache(256)
"""Decoders by shape, bounded like every plan cache: a client can make up new ``fields`` subsets."""

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
    _fast_all: Callable[[Sequence[Sequence[Any]], Callable[[Sequence[Any]], dict[str, Any]]], list[dict[str, Any]]]

    @classmethod
    def for_columns(
        cls, resource: Resource, fields: Sequence[BoundField], columns: Sequence[sa.Column[Any]]
    ) -> RowDecoder:
        """The decoder of ``fields`` from rows of ``columns``: generated once, then shared.

        A write reads its row back, an export and a page plan each ask for theirs: the same few
        shapes, asked again and again. The key is the identity of the resource and the fields
        (a decoder holds both, so neither id can be reused while it is cached) and the columns' names.
        """
        fields = tuple(fields)
        names = tuple(c.name for c in columns)
        key = (id(resource), tuple(map(id, fields)), names)
        return _DECODERS.get(key, lambda: cls._generate(resource, fields, names))

    @classmethod
    def _generate(cls, resource: Resource, fields: tuple[BoundField, ...], names: tuple[str, ...]) -> RowDecoder:
        index = {name: i for i, name in enumerate(names)}
        plan = tuple((f.name, f.codec, tuple(index[c.name] for c in f.columns)) for f in fields)
        plans = tuple(_plan_of(codec) for _, codec, _ in plan)  # once: the steps' functions come from it too
        steps = tuple(
            (
                name,
                codec.api_decoder() if codec_plan is None else plan_decoder(codec_plan),
                positions[0],
                positions if len(positions) > 1 else None,
            )
            for (name, codec, positions), codec_plan in zip(plan, plans, strict=True)
        )
        key_index = tuple(index[c.name] for k in resource.key for c in k.columns if c.name in index)
        fast, fast_all = _generated(steps, plans)
        return cls(resource, fields, names, key_index, steps, fast, fast_all)

    def decode(self, row: Sequence[Any]) -> dict[str, Any]:
        """One API dict; undecodable values become None and are logged."""
        try:
            return self._fast(row)
        except DECODING_ERRORS:  # a dirty value: the loop below serves it as null and says where it is
            return self._checked(row)

    def _checked(self, row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, decode, position, positions in self._steps:
            raw = row[position] if positions is None else tuple(row[i] for i in positions)
            try:
                out[name] = decode(raw)
            except DECODING_ERRORS as exc:
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
            except DECODING_ERRORS as exc:
                yield name, None, str(exc)

    def decode_all(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """``decode`` over many rows: one generated loop, the checked path only for a dirty row."""
        return self._fast_all(rows, self._checked)

    def raw(self, row: Sequence[Any], names: Sequence[str]) -> tuple[Any, ...]:
        """The stored values of the named columns, e.g. for a keyset cursor or an ETag."""
        return tuple(row[self.columns.index(n)] for n in names)


_Plan = tuple["Step | None", tuple["Step", ...]]
"""A codec's null test (None: SQL NULL only) and its steps (``FieldCodec.api_plan``)."""


def _plan_of(codec: Any) -> _Plan | None:
    plan = getattr(codec, "api_plan", None)
    return plan() if plan is not None else None


def _generated(
    steps: tuple[_Step, ...], plans: tuple[_Plan | None, ...]
) -> tuple[Callable[[Sequence[Any]], dict[str, Any]], Any]:
    """The row decoder for one plan, as generated functions: each field's null test and steps written out.

    A dict display, ``{"job_number": None if (v := r[0]) is None else (v.rstrip(" ") if type(v) is
    str else c0_0_slow(v)), ...}``: a step with an ``Inline`` form is its expression (no call), any
    other one call, and a field of several steps is worked out before the display, one statement a
    step. There is no loop over the steps and no ``try`` per field: the hand-written decoder's cost.
    It raises ``Undecodable`` (or a kin: ``DECODING_ERRORS``) at the first dirty value; the row then
    takes the checked loop, which serves that value as null and logs it. ``decode_all`` is the same
    code in one loop over a batch (no call per row). Only our own expressions and the plan's
    positions reach the source text (field names go in as ``repr`` literals, configured values as
    named constants).
    """
    namespace: dict[str, Any] = {"DECODING_ERRORS": DECODING_ERRORS}
    body: list[str] = []  # the statements of the fields worked out before the display
    items = []

    def written(step: Step, name: str, argument: str = "v") -> str:
        if isinstance(step, Inline) and argument == "v":
            source, constants = step.written(f"{name}_")
            namespace.update(constants)
            return f"({source})"
        namespace[name] = called(step)
        return f"{name}({argument})"

    for k, ((name, decode, position, positions), plan) in enumerate(zip(steps, plans, strict=True)):
        argument = f"r[{position}]" if positions is None else "(" + "".join(f"r[{i}], " for i in positions) + ")"
        if plan is None:  # a codec without a plan: its decoder as one call
            namespace[f"d{k}"] = decode
            items.append(f"{name!r}: d{k}({argument})")
            continue
        null, chain = plan
        if null is pair_date_is_none and positions is not None:  # the test written out: no call
            test, value = f"r[{positions[0]}] is None", argument
        else:
            # SQL NULL is null under every test; the walrus binds ``v`` before the test reads it.
            test = f"(v := {argument}) is None" + ("" if null is None else f" or {written(null, f'n{k}')}")
            value = "v"
        if len(chain) == 1:
            items.append(f"{name!r}: None if {test} else {written(chain[0], f'c{k}_0', value)}")
            continue
        body += [f"if {test}:", f"    f{k} = None", "else:"] + ([f"    v = {value}"] if value != "v" else [])
        body += [f"    v = {written(step, f'c{k}_{j}')}" for j, step in enumerate(chain)]
        body.append(f"    f{k} = v")
        items.append(f"{name!r}: f{k}")
    display = "{" + ", ".join(items) + "}"
    one = "".join(f"    {line}\n" for line in body)
    each = "".join(f"            {line}\n" for line in body)
    source = (
        f"def decode(r):\n{one}    return {display}\n"
        "def decode_all(rows, checked):\n"
        "    out = []\n"
        "    append = out.append\n"
        "    for r in rows:\n"
        "        try:\n"
        f"{each}"
        f"            append({display})\n"
        "        except DECODING_ERRORS:\n"
        "            append(checked(r))\n"
        "    return out\n"
    )
    exec(compile(source, "<row decoder>", "exec"), namespace)
    return namespace["decode"], namespace["decode_all"]
