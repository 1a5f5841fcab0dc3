"""From a legacy row to the destination values to send: field expressions and per-field ownership.

``render`` evaluates a sync's field map over one row in API form. ``decide``
then drops what the legacy side may not overwrite: ``destination`` fields go out
on create only; a ``newest`` field is sent unless the shop changed it since our
last send, in which case the later change wins when both times are known, the
shop wins when the legacy change time is unknown (a snapshot diff cannot date
it), and every such clash is returned as a ``Conflict`` to be recorded.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sync.config import FieldMap
from sync.numbers import CURRENCY_DECIMALS, Rounded, evaluate, expression_names, to_destination

__all__ = ("Conflict", "changed", "decide", "preview", "referenced_fields", "render", "same")

RefLookup = Callable[[str, str, str], Any]
"""(sync, encoded key, attr) -> the remote id or extra of that sync's record, or None."""


@dataclass(frozen=True, slots=True)
class Conflict:
    field: str
    legacy: Any
    remote: Any
    winner: str


def referenced_fields(fields: dict[str, FieldMap]) -> set[str]:
    """API fields a sync reads: named fields, every ``{name}`` in templates, the names in expressions."""
    names: set[str] = set()
    for fmap in fields.values():
        if fmap.field:
            names.add(fmap.field)
        if fmap.expression:
            names.update(expression_names(fmap.expression))
        if fmap.template:
            names.update(n.split(".")[0].split("[")[0] for _, n, _, _ in string.Formatter().parse(fmap.template) if n)
    return names


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def render(
    fields: dict[str, FieldMap],
    row: dict[str, Any],
    ref: RefLookup,
    rounded: dict[str, Rounded] | None = None,
) -> dict[str, Any]:
    """Destination field -> value for one row; values that had to be rounded are noted in ``rounded``."""
    from sync.changes.base import encode_key

    out: dict[str, Any] = {}
    for target, fmap in fields.items():
        if fmap.ref is not None:
            out[target] = ref(fmap.ref.sync, encode_key([row.get(fmap.field or "")]), fmap.ref.attr)
            continue
        if fmap.template is not None:
            out[target] = fmap.template.format_map({k: "" if v is None else v for k, v in row.items()}).strip()
            continue
        if fmap.expression is not None:
            value = evaluate(fmap.expression, row)
        elif fmap.field is not None:
            value = row.get(fmap.field)
            value = fmap.lookup.get(_text(value), value) if fmap.lookup and value is not None else value
        else:
            value = fmap.value
        decimals = fmap.currency_decimals
        if decimals is None and fmap.currency is not None:
            decimals = CURRENCY_DECIMALS[fmap.currency]
        out[target], note = to_destination(value, rounding=fmap.rounding, decimals=decimals)
        if note is not None and rounded is not None:
            rounded[target] = note
    return out


def decide(
    fields: dict[str, FieldMap],
    values: dict[str, Any],
    *,
    creating: bool,
    sent: dict[str, Any],
    remote: dict[str, Any] | None,
    legacy_changed_at: dt.datetime | None,
) -> tuple[dict[str, Any], list[Conflict]]:
    """The subset of ``values`` to send, and the conflicts found on ``newest`` fields."""
    if creating:
        return dict(values), []
    out: dict[str, Any] = {}
    conflicts: list[Conflict] = []
    for target, value in values.items():
        owner = fields[target].owner if target in fields else "legacy"
        if owner == "destination":
            continue
        if (
            owner == "newest"
            and remote is not None
            and target in remote
            and not same(remote[target], sent.get(target, remote[target]))
        ):
            # The shop changed it since our last send.
            if same(value, sent.get(target)):
                continue  # legacy did not change it: nothing to decide, the shop's value stands
            remote_at = _parse(remote.get("updatedAt"))
            legacy_wins = legacy_changed_at is not None and remote_at is not None and legacy_changed_at > remote_at
            conflicts.append(Conflict(target, value, remote[target], "legacy" if legacy_wins else "destination"))
            if not legacy_wins:
                continue
        out[target] = value
    return out, conflicts


def _parse(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return Decimal(str(value))
    if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


_NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
"""Decimal text as JSON stores a Decimal ('4136.3548', '1E+3'); 'NaN', 'inf' or '' never compare as numbers."""


def same(a: Any, b: Any) -> bool:
    """Whether two destination values are equal once stored: the comparison dry-run diffs use.

    The id map keeps what was sent as JSON, so a price sent as ``Decimal('4136.3548')``
    comes back as the string ``'4136.3548'``; comparing raw values reported such fields as
    changed on every dry run. A number equals its decimal text; two texts compare as text
    (SKU ``'0012'`` is not ``'12'``); lists element by element.
    """
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    left, right = _number(a), _number(b)
    if left is not None and right is not None:
        return left == right
    return bool(a == b)


def changed(values: dict[str, Any], sent: dict[str, Any], keys: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """Field -> (last sent, new) for a dry-run sample diff, compared with ``same``."""
    return {k: (sent.get(k), values.get(k)) for k in keys if not same(sent.get(k), values.get(k))}


def preview(
    fields: dict[str, FieldMap], row: dict[str, Any], sent: dict[str, Any] | None, ref: RefLookup
) -> tuple[dict[str, tuple[Any, Any]], dict[str, Rounded]]:
    """What a dry run shows for one planned record: the fields the shop would see change, and roundings.

    Ownership applies as in a real push: ``destination`` fields only on create; ``newest``
    fields are shown (the shop's side is not read in a dry run, so a newer shop value may still win).
    """
    rounded: dict[str, Rounded] = {}
    values = render(fields, row, ref, rounded)
    send, _ = decide(fields, values, creating=sent is None, sent=sent or {}, remote=None, legacy_changed_at=None)
    return changed(send, sent or {}, send), {f: r for f, r in rounded.items() if f in send}
