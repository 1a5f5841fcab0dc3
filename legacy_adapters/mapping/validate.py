"""Cross-checks the Struct types cannot express: names that must refer to something that exists.

Each rule raises ``MappingError`` with the dotted path of the key at fault.
Checks against the live database (tables, columns, key uniqueness) live in
``legacy_adapters/check.py``; these need only the file.
"""

from __future__ import annotations

import re

from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping.migration import check_migration
from legacy_adapters.mapping.model import (
    FieldSpec,
    Mapping,
    ResourceSpec,
    VersionSpec,
    deprecation_epoch,
    http_date_epoch,
)
from legacy_adapters.transforms import build_codec

__all__ = ("validate_mapping",)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED_FIELDS = frozenset({"sort", "fields", "embed", "limit", "cursor", "offset", "count"})

# What API type each named transform produces, so `type:` cannot contradict it.
_TRANSFORM_TYPES = {
    "yyyymmdd": "date",
    "cyymmdd": "date",
    "julian": "date",
    "mm/dd/yyyy": "date",
    "hhmmss": "time",
    "date_time": "datetime",
    "yes_no": "boolean",
    "one_zero": "boolean",
    "active_inactive": "boolean",
    "boolean": "boolean",
    "zero_padded": "integer",
}


def validate_mapping(mapping: Mapping) -> None:
    """Raise ``MappingError`` for the first reference that does not resolve."""
    if mapping.api.default_limit < 1 or mapping.api.max_limit < mapping.api.default_limit:
        raise MappingError("max_limit must be at least default_limit, and both positive", path="api")
    if not mapping.versions:
        raise MappingError("declare at least one version", path="versions")
    for version_name, version in mapping.versions.items():
        _check_version(f"versions.{version_name}", version)
        _check_lifecycle(f"versions.{version_name}", version)
        successor = version.successor
        if successor is not None and (successor == version_name or successor not in mapping.versions):
            others = ", ".join(v for v in mapping.versions if v != version_name) or "none"
            raise MappingError(
                f"successor {successor!r} is not another version (versions: {others})",
                path=f"versions.{version_name}.successor",
            )
        for name, resource in version.resources.items():
            check_migration(f"versions.{version_name}.resources.{name}", resource, mapping)
    _check_auth(mapping)
    if mapping.mcp.version is not None and mapping.mcp.version not in mapping.versions:
        known = ", ".join(mapping.versions)
        raise MappingError(f"unknown version {mapping.mcp.version!r} (versions: {known})", path="mcp.version")


def _check_lifecycle(path: str, version: VersionSpec) -> None:
    """``deprecated`` is a date (RFC 9745 sends one) and ``sunset`` an HTTP date (RFC 8594)."""
    if version.deprecated is True:
        raise MappingError(
            "give the date it was deprecated (RFC 9745 sends one), e.g. deprecated: 2026-12-01",
            path=f"{path}.deprecated",
        )
    try:
        if isinstance(version.deprecated, str):
            deprecation_epoch(version.deprecated)
    except ValueError as exc:
        raise MappingError(str(exc), path=f"{path}.deprecated") from None
    try:
        if version.sunset is not None:
            http_date_epoch(version.sunset)
    except ValueError as exc:
        raise MappingError(str(exc), path=f"{path}.sunset") from None


def _check_auth(mapping: Mapping) -> None:
    protected = [
        f"versions.{v}.resources.{r}"
        for v, version in mapping.versions.items()
        for r, resource in version.resources.items()
        if not resource.anonymous
    ]
    auth = mapping.auth
    if auth is None:
        if protected:
            raise MappingError(
                f"missing: {protected[0]} needs tokens (mark it anonymous: true to serve it without)",
                path="auth",
            )
        return
    if not auth.hs256_secret and not auth.jwks_url:
        raise MappingError("set hs256_secret (e.g. ${BRIDGEHEAD_JWT_SECRET}) or jwks_url", path="auth")
    if auth.hs256_secret is not None and len(auth.hs256_secret.encode()) < 32:
        raise MappingError("hs256_secret must be at least 32 bytes (RFC 7518 3.2)", path="auth.hs256_secret")


def _check_version(path: str, version: VersionSpec) -> None:
    for name, resource in version.resources.items():
        if not _NAME.match(name):
            raise MappingError("a resource name must be letters, digits or '_'", path=f"{path}.resources.{name}")
        _check_resource(f"{path}.resources.{name}", resource, version)


def _check_resource(path: str, resource: ResourceSpec, version: VersionSpec) -> None:
    if not resource.fields:
        raise MappingError("declare at least one field", path=f"{path}.fields")
    for name, field in resource.fields.items():
        _check_field(f"{path}.fields.{name}", name, field)
    known = ", ".join(resource.fields)
    for key in resource.key_fields:
        if key not in resource.fields:
            raise MappingError(f"key field {key!r} is not a declared field (fields: {known})", path=f"{path}.key")
        if resource.fields[key].type == "datetime" or resource.fields[key].nullable:
            raise MappingError(f"key field {key!r} must be a non-null single-column field", path=f"{path}.key")
    for name in resource.default_sort or ():
        if name.lstrip("-") not in resource.fields:
            raise MappingError(f"sorts on unknown field {name!r} (fields: {known})", path=f"{path}.default_sort")
    if resource.anonymous and resource.row_filter:
        raise MappingError("an anonymous resource cannot have a row filter: it has no token", path=f"{path}.row_filter")
    for field_name, claim in (resource.row_filter or {}).items():
        where = f"{path}.row_filter.{field_name}"
        relation_name, dot, target_field = field_name.rpartition(".")
        if dot:
            relation = resource.relations.get(relation_name)
            if relation is None or relation.many:
                raise MappingError(f"{relation_name!r} is not a to-one relation of this resource", path=where)
            target = version.resources.get(relation.resource)
            if target is not None and target_field not in target.fields:
                raise MappingError(f"resource {relation.resource!r} has no field {target_field!r}", path=where)
        elif field_name not in resource.fields:
            raise MappingError(f"filters on unknown field {field_name!r} (fields: {known})", path=where)
        if not claim.startswith("claims.") or len(claim) <= len("claims."):
            raise MappingError(f"must name a token claim as 'claims.<name>', got {claim!r}", path=where)
    for rel_name, relation in resource.relations.items():
        where = f"{path}.relations.{rel_name}"
        if rel_name in resource.fields:
            raise MappingError(f"relation {rel_name!r} has the same name as a field", path=where)
        target = version.resources.get(relation.resource)
        if target is None:
            raise MappingError(
                f"relation to unknown resource {relation.resource!r} (resources: {', '.join(version.resources)})",
                path=f"{where}.resource",
            )
        if not relation.on:
            raise MappingError("'on' must pair at least one field with the related resource's", path=f"{where}.on")
        for mine, theirs in relation.on.items():
            if mine not in resource.fields:
                raise MappingError(f"unknown field {mine!r} (fields: {known})", path=f"{where}.on")
            if theirs not in target.fields:
                raise MappingError(f"resource {relation.resource!r} has no field {theirs!r}", path=f"{where}.on.{mine}")
    for action_name, action in resource.actions.items():
        where = f"{path}.actions.{action_name}"
        if (action.procedure is None) == (action.sql is None):
            raise MappingError("give exactly one of 'procedure' or 'sql'", path=where)
        for param, source in action.params.items():
            if not source.startswith("body.") and source not in resource.fields:
                raise MappingError(
                    f"takes {source!r}, which is neither a field ({known}) nor 'body.<name>'",
                    path=f"{where}.params.{param}",
                )
    for verb in ("create", "update"):
        if getattr(resource.mcp, verb) and not resource.writable:
            raise MappingError(f"{verb} needs a writable resource (writable: true)", path=f"{path}.mcp.{verb}")
    for action_name in resource.mcp.actions:
        if action_name in ("list", "get", "aggregate", "create", "update"):
            raise MappingError(
                f"an action named {action_name!r} would share its tool name with a read or write tool",
                path=f"{path}.mcp.actions",
            )
        if action_name not in resource.actions:
            known_actions = ", ".join(resource.actions) or "none"
            raise MappingError(f"unknown action {action_name!r} (actions: {known_actions})", path=f"{path}.mcp.actions")
    delete = resource.delete
    if delete is not None and bool(delete.column) == delete.hard:
        raise MappingError("give either a soft-delete 'column' and 'value', or 'hard: true'", path=f"{path}.delete")
    if delete is not None and delete.column and delete.value is None:
        raise MappingError("a soft delete needs the 'value' that marks a row deleted", path=f"{path}.delete.value")


def _check_field(path: str, name: str, field: FieldSpec) -> None:
    if not _NAME.match(name) or name in _RESERVED_FIELDS:
        raise MappingError(
            f"field name {name!r} must be letters, digits or '_' and not one of {sorted(_RESERVED_FIELDS)}",
            path=path,
        )
    expected = _TRANSFORM_TYPES.get(field.transform or "")
    if expected and field.map is None and field.type != expected:
        raise MappingError(
            f"transform {field.transform!r} gives a {expected}, but type is {field.type!r} (set type: {expected})",
            path=f"{path}.type",
        )
    if field.scale is not None and field.type not in ("decimal", "number"):
        raise MappingError(f"'scale' needs type decimal, not {field.type!r}", path=f"{path}.type")
    if field.as_string and field.type != "decimal":
        raise MappingError(
            f"'as_string' serves a decimal as text: set type: decimal, not {field.type!r}", path=f"{path}.as_string"
        )
    if field.map is not None and field.type != "string":
        raise MappingError("a code map gives strings: set type: string", path=f"{path}.type")
    try:
        build_codec(field)
    except ValueError as exc:
        raise MappingError(str(exc), path=f"{path}.{_culprit(field, str(exc))}") from None


def _culprit(field: FieldSpec, message: str) -> str:
    """The key an error from building the codec is about, so the path points at the line to fix."""
    if "time zone" in message:
        return "timezone"
    for key in ("pivot_year", "unmapped", "decimals", "time_column", "timezone"):
        if f"'{key}'" in message:  # the key at fault, or the one missing
            return key
    if field.time is not None and ("time codec" in message or field.time.removeprefix("pattern:") in message):
        return "time"
    if field.date is not None or field.time is not None:
        return "date" if field.date is not None else "time"
    return "transform" if field.transform else "map" if field.map else "column"
