"""Classify every difference between two OpenAPI 3.1 documents as breaking or compatible.

A change is breaking when a client written against OLD can fail against NEW: a path,
operation, parameter, field, type, format, enum value or status code it relied on is gone or
narrowed, or something it never sent is now required. Requests and responses are judged in
opposite directions: a request may accept more (widening is compatible) and a response may
promise less variety (narrowing is compatible), never the other way round.

No maintained Python library does this for 3.1 (oasdiff and optic are Go and Node tools), so
the rules are ours, small, and each one is tested in ``tests/unit/gateway/test_openapi_diff.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

__all__ = ("Change", "diff_documents")

Direction = Literal["request", "response"]
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")


class Change(msgspec.Struct, frozen=True):
    breaking: bool
    where: str
    """``GET /v1/jobs response 200 application/json .data[].due_date``."""
    what: str

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'compatible'}: {self.where}: {self.what}"


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``, breaking ones first, each with where and why."""
    changes = list(_Differ(old, new).paths())
    return sorted(changes, key=lambda c: (not c.breaking, c.where))


class _Differ:
    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.old, self.new = old, new

    def paths(self) -> Iterator[Change]:
        old_paths, new_paths = self.old.get("paths", {}), self.new.get("paths", {})
        for path in old_paths:
            if path not in new_paths:
                yield Change(True, path, "path removed")
        for path in new_paths:
            if path not in old_paths:
                yield Change(False, path, "path added")
        for path in old_paths.keys() & new_paths.keys():
            yield from self.operations(path, old_paths[path], new_paths[path])

    def operations(self, path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
        for method in _METHODS:
            where = f"{method.upper()} {path}"
            if method in old and method not in new:
                yield Change(True, where, "operation removed")
            elif method in new and method not in old:
                yield Change(False, where, "operation added")
            elif method in old:
                before, after = old[method], new[method]
                if bool(before.get("deprecated")) != bool(after.get("deprecated")):
                    yield Change(
                        False,
                        where,
                        "operation deprecated: it still answers; clients should move to the successor"
                        if after.get("deprecated")
                        else "operation no longer deprecated",
                    )
                yield from self.parameters(
                    where, self.parameter_map(old, before, self.old), self.parameter_map(new, after, self.new)
                )
                yield from self.request_body(where, before.get("requestBody"), after.get("requestBody"))
                yield from self.responses(where, before.get("responses", {}), after.get("responses", {}))

    @staticmethod
    def parameter_map(
        path_item: Mapping[str, Any], operation: Mapping[str, Any], document: Mapping[str, Any]
    ) -> dict[tuple[str, str], Mapping[str, Any]]:
        """The operation's parameters by (in, name); its own override the path item's."""
        found: dict[tuple[str, str], Mapping[str, Any]] = {}
        for param in (*path_item.get("parameters", ()), *operation.get("parameters", ())):
            resolved = _resolve(param, document)
            found[(resolved.get("in", ""), resolved.get("name", ""))] = resolved
        return found

    def parameters(
        self, where: str, before: dict[tuple[str, str], Any], after: dict[tuple[str, str], Any]
    ) -> Iterator[Change]:
        for key, param in before.items():
            label = f"{where} {key[0]} parameter {key[1]!r}"
            if key not in after:
                yield Change(True, label, "parameter removed (a client sending it is now refused)")
                continue
            if after[key].get("required") and not param.get("required"):
                yield Change(True, label, "parameter became required")
            yield from self.schema(label, param.get("schema", {}), after[key].get("schema", {}), "request")
        for key, param in after.items():
            if key not in before:
                label = f"{where} {key[0]} parameter {key[1]!r}"
                if param.get("required"):
                    yield Change(True, label, "new required parameter")
                else:
                    yield Change(False, label, "new optional parameter")

    def request_body(self, where: str, old: Any, new: Any) -> Iterator[Change]:
        if old is None:
            if new is not None and _resolve(new, self.new).get("required"):
                yield Change(True, f"{where} request body", "a request body is now required")
            return
        old = _resolve(old, self.old)
        new = _resolve(new, self.new) if new is not None else None
        if new is None:
            yield Change(True, f"{where} request body", "request body removed")
            return
        yield from self.content(f"{where} request", old.get("content", {}), new.get("content", {}), "request")

    def responses(self, where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
        for status in old:
            if status not in new:
                yield Change(True, f"{where} response {status}", "status code removed")
        for status in new:
            if status not in old:
                # A new error answer is still problem+json a client handles generically;
                # a new success or redirect status is a body the client was never told about.
                breaking = not status.startswith(("4", "5"))
                yield Change(breaking, f"{where} response {status}", "status code added")
        for status in old.keys() & new.keys():
            before, after = _resolve(old[status], self.old), _resolve(new[status], self.new)
            label = f"{where} response {status}"
            for header in before.get("headers", {}):
                if header not in after.get("headers", {}):
                    yield Change(True, f"{label} header {header}", "response header removed")
            yield from self.content(label, before.get("content", {}), after.get("content", {}), "response")

    def content(self, where: str, old: Mapping[str, Any], new: Mapping[str, Any], way: Direction) -> Iterator[Change]:
        for media in old:
            if media not in new:
                yield Change(True, f"{where} {media}", "media type removed")
        for media in new:
            if media not in old:
                yield Change(False, f"{where} {media}", "media type added")
        for media in old.keys() & new.keys():
            yield from self.schema(f"{where} {media}", old[media].get("schema", {}), new[media].get("schema", {}), way)

    def schema(self, where: str, old: Any, new: Any, way: Direction, depth: int = 0) -> Iterator[Change]:
        old, new = _resolve(old, self.old), _resolve(new, self.new)
        if depth > 32:  # a recursive schema: what is below was compared on the way down
            return
        before, after = _types(old), _types(new)
        if before and after and before != after:
            gained, lost = after - before, before - after
            if way == "response" and gained:
                yield Change(True, where, f"may now be {'/'.join(sorted(gained))} (was {'/'.join(sorted(before))})")
            elif way == "request" and lost:
                yield Change(True, where, f"no longer accepts {'/'.join(sorted(lost))}")
            else:
                yield Change(False, where, f"type {'/'.join(sorted(before))} -> {'/'.join(sorted(after))}")
        if old.get("format") != new.get("format") and (old.get("format") or new.get("format")):
            yield Change(True, where, f"format {old.get('format')!r} -> {new.get('format')!r}")
        yield from self.enum(where, old.get("enum"), new.get("enum"), way)
        yield from self.bounds(where, old, new, way)
        yield from self.properties(where, old, new, way, depth)
        if "items" in old or "items" in new:
            yield from self.schema(f"{where}[]", old.get("items", {}), new.get("items", {}), way, depth + 1)

    def enum(self, where: str, old: Any, new: Any, way: Direction) -> Iterator[Change]:
        if old is None and new is None:
            return
        if old is not None and new is None:
            if way == "response":
                yield Change(False, where, "enum dropped from a response: any value may now come back")
            else:
                yield Change(False, where, "enum dropped: any value is now accepted")
            return
        if old is None:
            breaking = way == "request"
            yield Change(breaking, where, f"now limited to {new!r}")
            return
        removed = [v for v in old if v not in new]
        added = [v for v in new if v not in old]
        if removed:
            yield Change(True, where, f"enum value(s) removed: {removed!r}")
        if added:
            reason = (
                "enum widened on a response: clients must tolerate unknown values"
                if way == "response"
                else ("enum widened: more values accepted")
            )
            yield Change(False, where, f"{reason} ({added!r})")

    def bounds(self, where: str, old: Mapping[str, Any], new: Mapping[str, Any], way: Direction) -> Iterator[Change]:
        if way != "request":
            return
        for key, narrower in (("maximum", _lt), ("maxLength", _lt), ("maxItems", _lt)):
            if key in new and (key not in old or narrower(new[key], old[key])):
                yield Change(True, where, f"{key} {old.get(key)!r} -> {new[key]!r}")
        for key, narrower in (("minimum", _gt), ("minLength", _gt), ("minItems", _gt)):
            if key in new and (key not in old or narrower(new[key], old[key])):
                yield Change(True, where, f"{key} {old.get(key)!r} -> {new[key]!r}")
        if new.get("pattern") and new.get("pattern") != old.get("pattern"):
            yield Change(True, where, f"pattern {old.get('pattern')!r} -> {new['pattern']!r}")

    def properties(
        self, where: str, old: Mapping[str, Any], new: Mapping[str, Any], way: Direction, depth: int
    ) -> Iterator[Change]:
        before, after = old.get("properties", {}), new.get("properties", {})
        required_before, required_after = set(old.get("required", ())), set(new.get("required", ()))
        for name in before:
            label = f"{where} .{name}"
            if name not in after:
                yield Change(True, label, "field removed (or renamed)")
                continue
            if way == "response" and name in required_before and name not in required_after:
                yield Change(True, label, "may now be absent")
            if way == "request" and name in required_after and name not in required_before:
                yield Change(True, label, "field became required")
            yield from self.schema(label, before[name], after[name], way, depth + 1)
        for name in after:
            if name not in before:
                label = f"{where} .{name}"
                if way == "request" and name in required_after:
                    yield Change(True, label, "new required field")
                else:
                    yield Change(False, label, "field added")


def _resolve(node: Any, document: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local ``$ref`` pointers (RFC 6901) in ``document`` until a real node."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen or not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        seen.add(ref)
        node = document
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _types(schema: Mapping[str, Any]) -> frozenset[str]:
    """The JSON types a schema allows (``type``, a list of them, or ``anyOf``/``oneOf`` of simple ones)."""
    given = schema.get("type")
    if isinstance(given, str):
        return frozenset({given})
    if isinstance(given, list):
        return frozenset(given)
    for key in ("anyOf", "oneOf"):
        if key in schema and all(isinstance(s, Mapping) and "type" in s for s in schema[key]):
            return frozenset().union(*(_types(s) for s in schema[key]))
    return frozenset()


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)
