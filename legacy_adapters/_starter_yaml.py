"""The starter mapping as YAML text, with a comment beside every guess.

Written by hand rather than dumped with PyYAML because the comments are the
point: they carry each guess's reason, and PyYAML cannot write comments.
Scalars are quoted whenever a YAML 1.1 reader could take them for anything
but a string (``Y``, ``on``, ``01``, ``a: b``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legacy_adapters._guesses import FieldGuess
    from legacy_adapters.introspect import TableModel

__all__ = ("render_mapping", "scalar")

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none"})

_HEADER = """\
# Starter mapping written by `bridgehead introspect` from the live catalogue and at most
# {rows} sampled rows per table. Names, types, encodings, keys and relations are guesses:
# each says why in a comment. Review them, then run `bridgehead check -c <this file>`.

database:
  url: ${{BRIDGEHEAD_DB_URL}}
  statement_timeout_s: 5

auth:
  # Tokens must carry this issuer and audience (`bridgehead token issue` sets both).
  issuer: bridgehead
  audience: bridgehead
  hs256_secret: ${{BRIDGEHEAD_JWT_SECRET}}

# Idempotency keys and the audit trail; PostgreSQL when several gateway processes share them.
state:
  url: ${{BRIDGEHEAD_STATE_URL:-sqlite:///.bridgehead/state.db}}

versions:
  v1:
    resources:
"""


def scalar(value: Any) -> str:
    """A YAML scalar that reads back as exactly ``value`` under any YAML 1.1 or 1.2 loader."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML11_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return _flow(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    return scalar(value)


def _flow(items: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{scalar(key)}: {_value(value)}" for key, value in items.items()) + "}"


def _comment(text: str, indent: int) -> str:
    # Sampled values end up in comments: keep each comment on its one line.
    return " " * indent + "# " + re.sub(r"[\x00-\x1f\x7f]", "?", text) + "\n"


def _field(name: str, guess: FieldGuess) -> dict[str, Any]:
    spec: dict[str, Any] = {"column": guess.column, "type": guess.type}
    if guess.date:
        spec["date"] = guess.date
    if guess.time:
        spec["time"] = guess.time
    if guess.transform:
        spec["transform"] = guess.transform
    if guess.bool_values:
        spec["bool_values"] = list(guess.bool_values)
    if guess.decimals is not None:
        spec["decimals"] = guess.decimals
    if guess.length is not None:
        spec["length"] = guess.length
    if guess.null_if:
        spec["null_if"] = guess.null_if
    if guess.nullable:
        spec["nullable"] = True
    return spec


def _resource(model: TableModel) -> list[str]:
    """The resource's lines at 6 spaces, its own key lines at 8."""
    lines = [f"{model.resource}:\n", f"  table: {scalar(model.table)}\n"]
    key = [model.field_of(c) for c in model.key or ()]
    if key:
        lines.append(f"  key: {scalar(key[0]) if len(key) == 1 else '[' + ', '.join(key) + ']'}\n")
    else:
        lines.append("  key: <the field, or [fields], that address one row>\n")
    lines.append(f"  scopes: {_flow({'read': f'{model.resource}:read'})}\n")
    if model.where_hint:
        lines.append(_comment(f"where: {scalar(model.where_hint)}   (hide soft-deleted rows, if that is the flag)", 2))
    lines.append("  fields:\n")
    for name, guess in model.fields.items():
        if guess.skip:
            lines.append(_comment(f"{guess.column} not served: {guess.skip}", 4))
            continue
        lines.extend(_comment(why, 4) for why in guess.why)
        spec = _field(name, guess)
        if guess.hints:
            lines.append(f"    {name}:\n")
            lines.extend(f"      {k}: {_value(v)}\n" for k, v in spec.items())
            lines.extend(_comment(hint, 6) for hint in guess.hints)
        else:
            lines.append(f"    {name}: {_flow(spec)}\n")
    if model.relations:
        lines.append("  relations:\n")
        for rel_name, relation in model.relations.items():
            lines.append(_comment(relation.why, 4))
            spec = {"resource": relation.resource, "on": relation.on, "many": relation.many}
            lines.append(f"    {rel_name}: {_flow(spec)}\n")
    return lines


def render_mapping(models: list[TableModel], *, sample_rows: int) -> str:
    """The whole starter mapping for ``models`` (see ``introspect.introspect``)."""
    out = [_HEADER.format(rows=sample_rows)]
    for model in models:
        out.append("\n")
        scope = "the whole table" if model.whole_table else f"first {model.sampled} rows"
        out.append(_comment(f"{model.table}: {len(model.fields)} columns, {model.sampled} rows sampled ({scope})", 6))
        out.extend(_comment(note, 6) for note in [*model.notes, *(f"key: {why}" for why in model.key_why)])
        body = _resource(model)
        # A table without a key cannot be addressed: it is written commented out, ready to finish by hand.
        prefix = " " * 6 + ("# " if model.key is None else "")
        out.extend(prefix + line for line in body)
    return "".join(out)
