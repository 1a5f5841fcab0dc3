"""Query string -> filters, sort, fields, embeds and paging, checked against what the caller may see.

Every bad parameter is collected, not just the first, so one 400 tells the
client everything to fix: ``errors: [{parameter, detail}, …]``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.exceptions import BadRequest
from legacy_adapters.query.filters import OPERATORS, Comparison
from legacy_adapters.query.like import parse_like
from legacy_adapters.query.values import check_text, parse_value, shown

if TYPE_CHECKING:
    from gateway.auth.guards import Access
    from legacy_adapters.mapping.model import ApiConfig
    from legacy_adapters.query.resource import BoundField, Resource

__all__ = (
    "QUERY_NAMES",
    "Errors",
    "ListParams",
    "check_filters",
    "check_query_names",
    "known",
    "name_errors",
    "parse_fields",
    "parse_filters",
    "parse_flag",
    "parse_int",
    "parse_key",
    "parse_list_params",
    "parse_operand",
    "refuse_unknown_names",
    "split_escaped",
)

_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[([A-Za-z]+)\])?$")
_CONTROL = frozenset({"fields", "sort", "embed", "limit", "cursor", "offset", "count"})
MAX_IN_VALUES = 500
MAX_OFFSET = 2**31 - 1
"""Past this an offset is no page anyone reads (and OFFSET is an INT on some engines): use the cursor."""


@dataclass(frozen=True, slots=True)
class ListParams:
    filters: tuple[Comparison, ...]
    sort: tuple[tuple[BoundField, bool], ...]
    fields: tuple[BoundField, ...]
    embeds: tuple[str, ...]
    limit: int
    cursor: str | None
    offset: int | None
    count: bool
    fingerprint: str
    """Identifies filters and sort, so a cursor is only honoured on the query that issued it."""


class Errors:
    """Every bad parameter of one request, raised together as one 400."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, parameter: str, detail: str) -> None:
        self.items.append({"parameter": parameter, "detail": detail})

    def raise_if_any(self) -> None:
        if self.items:
            summary = self.items[0]["detail"] if len(self.items) == 1 else f"{len(self.items)} parameters are invalid"
            raise BadRequest(summary, errors=self.items)


def known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


_PATH_TYPE = re.compile(r":\w+}")
QUERY_NAMES = "query_names"
"""A route's ``opt`` key: the query parameters it takes (``check_query_names`` refuses any other).

Routes whose names follow the data (lists' filters, aggregates) parse and refuse on their own."""


def name_errors(items: Iterable[tuple[str, str]], names: Iterable[str], what: str) -> list[dict[str, Any]]:
    """An error for every query parameter ``what`` does not take, and for any it takes given twice.

    A parameter that does nothing is a trap: ``/v1/jobs/J1?status=held`` would answer the
    row whatever its status, ``POST …/run?full=true`` would run as usual.
    """
    taken, seen = frozenset(names), set[str]()
    errors = Errors()
    for name, _ in items:
        if name not in taken:
            offered = f"it takes {known(taken)}" if taken else "it takes none"
            errors.add(name, f"{what} has no parameter {shown(name)} ({offered})")
        elif name in seen:
            errors.add(name, "given more than once")
        seen.add(name)
    return errors.items


def parse_flag(raw: str | None, name: str, errors: list[dict[str, Any]]) -> bool:
    """``true`` or ``false`` (absent: false); anything else adds an error naming ``name`` to ``errors``."""
    if raw not in (None, "true", "false"):
        errors.append({"parameter": name, "detail": f"expected true or false, got {shown(raw or '')}"})
    return raw == "true"


def refuse_unknown_names(items: Iterable[tuple[str, str]], names: Iterable[str], what: str) -> None:
    """400 listing ``name_errors``, if there are any."""
    errors = Errors()
    errors.items = name_errors(items, names, what)
    errors.raise_if_any()


async def check_query_names(request: Any) -> None:
    """Litestar ``before_request`` (after authentication and guards): a route's query names, checked.

    A coroutine so that Litestar awaits it on the loop (a plain function would be a thread hop).
    """
    names = request.route_handler.opt.get(QUERY_NAMES)
    if names is not None and request.scope.get("query_string"):
        # The route's template without Litestar's types ({sync}, not {sync:str}), not the client's path.
        route = _PATH_TYPE.sub("}", next(iter(request.route_handler.paths), "this route"))
        refuse_unknown_names(request.query_params.multi_items(), names, f"{request.method} {route}")


def parse_fields(
    raw: str | None,
    access: Access,
    errors: Errors | None = None,
    embeds: Iterable[str] = (),
    relations: Iterable[str] = (),
) -> tuple[BoundField, ...]:
    """``fields=a,b`` -> those visible fields (all visible fields when absent).

    A relation named in ``embeds`` may be listed too (``fields=status,lines&embed=lines``):
    it is served because it is embedded, so it is accepted rather than called unknown.
    """
    own = errors or Errors()
    if not raw:
        return tuple(access.fields.values())
    chosen: list[BoundField] = []
    embedded = set(embeds)
    for name in (n.strip() for n in raw.split(",")):
        if name in access.fields:
            if access.fields[name] not in chosen:
                chosen.append(access.fields[name])
        elif name in embedded:
            continue
        elif name in set(relations):
            own.add("fields", f"{name!r} is a relation: add embed={name} to serve it")
        else:
            own.add("fields", f"unknown field {name!r} (fields: {known(access.fields)})")
    if errors is None:
        own.raise_if_any()
    return tuple(chosen)


def parse_list_params(
    query: Iterable[tuple[str, str]], resource: Resource, access: Access, api: ApiConfig
) -> ListParams:
    """Validate a list request's query string; raise ``BadRequest`` listing every problem."""
    errors = Errors()
    filters, control, identity = parse_filters(query, access, errors, _CONTROL)
    embeds = _parse_embed(control.get("embed"), resource, errors)
    fields = parse_fields(control.get("fields"), access, errors, embeds, resource.relations)
    sort = _parse_sort(control.get("sort"), resource, access, errors)
    limit = parse_int(control.get("limit"), "limit", api.default_limit, 1, api.max_limit, errors)
    offset = parse_int(control.get("offset"), "offset", 0, 0, MAX_OFFSET, errors) if "offset" in control else None
    cursor = control.get("cursor") or None
    if cursor is not None and offset is not None:
        errors.add("offset", "give either cursor or offset, not both")
    count = control.get("count")
    if count not in (None, "exact"):
        errors.add("count", "the only supported value is 'exact'")
    check_filters(filters, errors)
    errors.raise_if_any()

    signature = repr((resource.qualified_name, sorted(identity), control.get("sort") or ""))
    return ListParams(
        filters=tuple(filters),
        sort=sort,
        fields=fields,
        embeds=embeds,
        limit=limit,
        cursor=cursor,
        offset=offset,
        count=count == "exact",
        fingerprint=hashlib.sha256(signature.encode()).hexdigest()[:16],
    )


def parse_filters(
    query: Iterable[tuple[str, str]],
    access: Access,
    errors: Errors,
    control_names: Iterable[str] | Callable[[str], bool],
) -> tuple[list[Comparison], dict[str, str], list[tuple[str, str]]]:
    """Filters (``field[op]=value``) of a query string, and its other parameters by name.

    Lists and aggregates take the same filters; each has its own control parameters
    (``control_names``: names, or a test for names such as ``having.count[gt]``).

    Returns:
        (filters, control parameters, the filters as written, for a cursor's fingerprint)
    """
    is_control = control_names if callable(control_names) else frozenset(control_names).__contains__
    control: dict[str, str] = {}
    filters: list[Comparison] = []
    seen: set[str] = set()
    identity: list[tuple[str, str]] = []
    for name, value in query:
        if name in seen:
            errors.add(name, "given more than once; use [in] with a comma list for several values")
            continue
        seen.add(name)
        if is_control(name):
            control[name] = value
            continue
        match = _PARAM.match(name)
        if not match:
            errors.add(name, "not a field name or field[operator]")
            continue
        field_name, op = match.group(1), (match.group(2) or "eq")
        field = access.fields.get(field_name)
        if field is None:
            errors.add(name, f"unknown field {field_name!r} (fields: {known(access.fields)})")
            continue
        if op not in OPERATORS:
            errors.add(name, f"unknown operator {op!r} (operators: {', '.join(OPERATORS)})")
            continue
        parsed = parse_operand(field, op, value, name, errors)
        if parsed is not _INVALID:
            filters.append(Comparison(field, op, parsed, parameter=name))
            identity.append((name, value))
    return filters, control, identity


def check_filters(filters: Iterable[Comparison], errors: Errors) -> None:
    """An operator the field cannot honour is a client error: found here, before any SQL runs."""
    for f in filters:
        try:
            f.clause()
        except Exception as exc:  # QueryError carries the parameter
            errors.add(f.parameter, getattr(exc, "message", "invalid filter"))


_INVALID = object()


def parse_operand(field: BoundField, op: str, value: str, name: str, errors: Errors) -> Any:
    try:
        if op == "isnull":
            return parse_value("boolean", value)
        if op in ("like", "ilike"):
            check_text(value, field.bounds)
            return parse_like(value, insensitive=op == "ilike")
        if op == "in":
            # A comma or backslash inside a value is written with a backslash before it: SMITH\, J.
            items = split_escaped(value)
            if len(items) > MAX_IN_VALUES:
                errors.add(name, f"at most {MAX_IN_VALUES} values")
                return _INVALID
            return tuple(parse_value(field.spec.type, v, field.bounds) for v in items)
        return parse_value(field.spec.type, value, field.bounds)
    except ValueError as exc:
        errors.add(name, str(exc))
        return _INVALID


def _parse_sort(
    raw: str | None, resource: Resource, access: Access, errors: Errors
) -> tuple[tuple[BoundField, bool], ...]:
    spec = raw.split(",") if raw else list(resource.spec.default_sort or ())
    sort: list[tuple[BoundField, bool]] = []
    for item in (s.strip() for s in spec if s.strip()):
        descending = item.startswith("-")
        name = item.lstrip("-+")
        field = access.fields.get(name)
        if field is None:
            errors.add("sort", f"unknown field {name!r} (fields: {known(access.fields)})")
        elif not field.rangeable:
            errors.add("sort", f"{name} cannot be sorted: its stored values do not sort like its API values")
        else:
            sort.append((field, descending))
    return tuple(sort)


def _parse_embed(raw: str | None, resource: Resource, errors: Errors) -> tuple[str, ...]:
    if not raw:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    for name in names:
        if name not in resource.relations:
            errors.add("embed", f"unknown relation {name!r} (relations: {known(resource.relations) or 'none'})")
    return names


def parse_int(raw: str | None, name: str, default: int, low: int, high: int | None, errors: Errors) -> int:
    if raw is None:
        return default
    try:
        if len(raw) > 20:  # int() of a long digit string is slow; nothing that long is in range
            raise ValueError
        value = int(raw)
    except ValueError:
        errors.add(name, f"expected a whole number, got {shown(raw)}")
        return default
    if value < low or (high is not None and value > high):
        errors.add(name, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
        return default
    return value


def parse_key(raw: str, resource: Resource) -> tuple[Any, ...]:
    """A URL key into typed values: ``J000123``, or ``B01,000123`` for a composite key.

    Components are joined by commas in key order; a comma or backslash inside a
    value is written with a backslash before it (``A\\,B``).
    """
    parts = split_escaped(raw) if len(resource.key) > 1 else [raw]
    if len(parts) != len(resource.key):
        names = ",".join(f.name for f in resource.key)
        raise BadRequest(
            f"the key has {len(resource.key)} parts ({names}); got {len(parts)}",
            errors=[{"parameter": "key", "detail": f"expected {names}"}],
        )
    values = []
    for field, part in zip(resource.key, parts, strict=True):
        try:
            values.append(parse_value(field.spec.type, part, field.bounds))
        except ValueError as exc:
            raise BadRequest(str(exc), errors=[{"parameter": "key", "detail": f"{field.name}: {exc}"}]) from None
    return tuple(values)


def split_escaped(raw: str) -> list[str]:
    """Split a comma list in which ``\\,`` is a comma and ``\\\\`` a backslash inside a value."""
    parts, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
