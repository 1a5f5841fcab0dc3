"""Read a mapping file: YAML -> ${VAR} expansion -> ``extends`` merge -> Structs -> cross-checks.

Every failure becomes a ``MappingError`` naming the file and the dotted path of
the offending key, in a sentence a consultant can act on without reading code.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping as AbcMapping
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
import yaml

from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping.model import Mapping
from legacy_adapters.mapping.validate import validate_mapping
from legacy_adapters.redaction import is_secret_key, register_secret

__all__ = ("anchor_sqlite_url", "dotted_path", "load_mapping", "parse_mapping")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads only true/false as booleans.

    YAML 1.1 turns ``yes``/``no``/``on``/``off`` into booleans, which silently
    breaks code maps such as ``{ON: on_order}``; legacy codes need them as text.
    Integers are plain decimals only: YAML 1.1 reads ``01`` and ``0x1`` as 1, ``010`` as 8
    and ``12:30`` as 750, which would turn codes such as ``{01: first, 010: tenth}`` into numbers.
    Dates stay text: YAML would make ``2026-12-01`` a date object no mapping key expects.
    """


# Timestamps are text too: ``deprecated: 2026-12-01`` is a string the mapping parses itself.
_REPLACED = frozenset({"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:timestamp"})
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in result:
            raise MappingError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_mapping(path: str | Path, environ: AbcMapping[str, str] | None = None) -> Mapping:
    """Load and validate a mapping file.

    Args:
        path: the YAML file.
        environ: where ``${VAR}`` values come from; ``os.environ`` when omitted.

    Raises:
        MappingError: the file is missing, unreadable or invalid; the message names file and path.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read the mapping file ({exc.strerror})", source=source) from None
    mapping = parse_mapping(text, source=source, environ=environ)
    # A relative state store belongs to the mapping, not to wherever the process was started:
    # one mapping started from two folders must keep one audit trail and one set of keys.
    folder = Path(path).resolve().parent
    state = msgspec.structs.replace(mapping.state, url=anchor_sqlite_url(mapping.state.url, folder))
    sync = mapping.sync
    if sync is not None and isinstance(sync.get("state_url"), str):
        sync = {**sync, "state_url": anchor_sqlite_url(sync["state_url"], folder)}
    return msgspec.structs.replace(mapping, state=state, sync=sync)


def anchor_sqlite_url(url: str, folder: Path) -> str:
    """``url`` with a relative SQLite file path made absolute against ``folder``; other URLs unchanged."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return url  # not a URL we understand; opening it reports the problem
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str(folder / database)).render_as_string(hide_password=False)


def parse_mapping(text: str, *, source: str = "<mapping>", environ: AbcMapping[str, str] | None = None) -> Mapping:
    """Validate mapping YAML given as text; see ``load_mapping``."""
    env = os.environ if environ is None else environ
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # _StrictLoader is a SafeLoader
    except MappingError as exc:
        raise MappingError(exc.message, source=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise MappingError(f"{where}{problem}", source=source) from None
    if not isinstance(raw, dict):
        raise MappingError("the mapping must be a YAML mapping with 'database' and 'versions'", source=source)
    try:
        expanded = _expand(raw, env, "")
        _register_secrets(expanded)
        merged = _default_database(_merge_versions(expanded))
        mapping = msgspec.convert(merged, Mapping, strict=False)
        validate_mapping(mapping)
    except MappingError as exc:
        raise MappingError(exc.message, path=exc.path, source=source) from None
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        path = _dotted(merged, where.rstrip("`"))
        raise MappingError(_plain(message), path=path, source=source) from None
    return mapping


_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\.\.\.|\d+)\]")


def dotted_path(raw: Any, msgspec_path: str, root: Any) -> str:
    """``_dotted`` from another Struct than ``Mapping`` (the sync section names its keys the same way)."""
    return _dotted(raw, msgspec_path, root)


def _dotted(raw: Any, msgspec_path: str, root: Any = Mapping) -> str:
    """Name the keys msgspec elides: ``versions[...].resources[...]`` -> ``versions.v1.resources.jobs``.

    msgspec reports a failing dict entry as ``[...]``, which tells a user nothing
    about which resource or field is wrong. Walking the decoded YAML alongside the
    Struct types finds the first entry that fails on its own, which is the one
    msgspec stopped at (it validates entries in order).
    """
    parts: list[str] = []
    target: Any = root
    for match in _SEGMENT.finditer(msgspec_path):
        name, index = match.groups()
        target = _branch(target, raw)
        if name is not None:
            hints = typing.get_type_hints(target) if isinstance(target, type) else {}
            if name not in hints or not isinstance(raw, dict):
                return msgspec_path.lstrip(".")
            parts.append(f".{name}" if parts else name)
            target, raw = hints[name], raw.get(name)
        elif index == "...":
            key = _failing_key(target, raw)
            if key is None:
                return msgspec_path.lstrip(".")
            parts.append(f".{key}")
            target, raw = typing.get_args(target)[1], raw[key]
        else:
            if not isinstance(raw, list) or int(index) >= len(raw):
                return msgspec_path.lstrip(".")
            parts.append(f"[{index}]")
            args = typing.get_args(target)
            target, raw = args[min(int(index), len(args) - 1)] if args else Any, raw[int(index)]
    return "".join(parts)


def _branch(target: Any, raw: Any) -> Any:
    """The member of a union (``AuthConfig | None``, ``str | list[str]``) that ``raw`` is meant to be."""
    if typing.get_origin(target) not in (typing.Union, types.UnionType):
        return target
    for arg in typing.get_args(target):
        origin = typing.get_origin(arg) or arg
        if isinstance(raw, dict) and (origin is dict or (isinstance(arg, type) and issubclass(arg, msgspec.Struct))):
            return arg
        if isinstance(raw, list) and origin in (list, tuple):
            return arg
    return target


def _failing_key(target: Any, raw: Any) -> Any:
    if typing.get_origin(target) is not dict or not isinstance(raw, dict):
        return None
    for key, value in raw.items():
        try:
            msgspec.convert({key: value}, target, strict=False)
        except msgspec.ValidationError:
            return key
    return None


def _plain(msgspec_message: str) -> str:
    """Reword msgspec's messages for people who write YAML, not Python."""
    message = msgspec_message.replace("`", "'")
    if message.startswith("Object contains unknown field"):
        return message.replace("Object contains unknown field", "unknown key")
    if message.startswith("Object missing required field"):
        return message.replace("Object missing required field", "missing required key")
    return message[:1].lower() + message[1:]


def _expand(value: Any, env: AbcMapping[str, str], path: str) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; a missing variable is an error."""
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            if is_secret_key(name) and not name.lower().endswith(_NOT_SECRET_SUFFIXES):  # ${SHOPIFY_TOKEN}
                register_secret(env[name])
            return env[name]
        if default is not None:
            return default
        raise MappingError(f"environment variable {name} is not set", path=path)

    return _ENV.sub(substitute, value)


def _register_secrets(value: Any, key: str = "") -> None:
    """Every value under a secret-looking key (``hs256_secret``, ``access_token``, ``password``)
    is replaced by value in logs, stored errors and alerts from now on (``redaction``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _register_secrets(v, str(k))
    elif isinstance(value, list):
        for v in value:
            _register_secrets(v, key)
    elif isinstance(value, str) and is_secret_key(key) and not key.endswith(_NOT_SECRET_SUFFIXES):
        register_secret(value)
    elif isinstance(value, str) and "://" in value:  # a database (or Redis) URL's password
        for secret in _url_secrets(value):
            register_secret(secret)


_ODBC_PWD = re.compile(r"(?i)(?:^|;)\s*(?:pwd|password)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)")
"""``PWD=`` (or ``Password=``, psqlODBC's and MySQL's): a braced value may hold ``;`` and ``}}`` for ``}``."""


def _url_secrets(url: str) -> list[str]:
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # not a database URL (an https endpoint): nothing of it is a secret
        return []
    found = [parsed.password] if parsed.password else []
    connect = parsed.query.get("odbc_connect")
    for text in connect if isinstance(connect, tuple) else [connect] if connect else []:
        for match in _ODBC_PWD.finditer(text):
            value = match.group(1).strip()
            found.append(value[1:-1].replace("}}", "}") if value.startswith("{") else value)
    return [str(s) for s in found]


_NOT_SECRET_SUFFIXES = ("_url", "_uri", "_id", "_file", "_path", "_env")
"""``token_url`` names where a secret comes from, not the secret."""


def _default_database(raw: dict[str, Any]) -> dict[str, Any]:
    """``databases: {legacy: …, core: …}`` fills ``database`` with the default one (``legacy``, else the first).

    ``database:`` stays the one-database form; naming both is refused, as it would leave
    two answers to "which database is the default".
    """
    if "databases" not in raw:
        return raw
    databases = raw["databases"]
    if "database" in raw:
        raise MappingError("give either database (one database) or databases (several by name), not both",
                           path="databases")  # fmt: skip
    if not isinstance(databases, dict) or not databases:
        raise MappingError("expected a mapping of names to databases, e.g. {legacy: {url: …}}", path="databases")
    default = "legacy" if "legacy" in databases else next(iter(databases))
    return {**raw, "database": databases[default]}


def _merge_versions(raw: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``extends``: a version starts as a deep copy of its parent, then its own keys win.

    A key set to null in the child removes it (``resources: {legacy_report: null}``).
    """
    versions = raw.get("versions")
    if not isinstance(versions, dict):
        return raw
    resolved: dict[str, Any] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Any:
        if name in resolved:
            return resolved[name]
        spec = versions[name]
        if not isinstance(spec, dict) or "extends" not in spec:
            resolved[name] = spec
            return spec
        parent = spec["extends"]
        path = f"versions.{name}.extends"
        if not isinstance(parent, str) or parent not in versions:
            raise MappingError(f"extends unknown version {parent!r} (known: {', '.join(versions)})", path=path)
        if parent in chain:
            raise MappingError(f"versions extend each other in a cycle: {' -> '.join((*chain, parent))}", path=path)
        own = {k: v for k, v in spec.items() if k != "extends"}
        own.setdefault("deprecated", False)
        own.setdefault("sunset", None)
        own.setdefault("successor", None)  # a version's lifecycle is its own, never inherited
        # The chain already ends with ``name``: add only the parent, so a cycle reads v2 -> v3 -> v2.
        resolved[name] = _deep_merge(resolve(parent, (*chain, parent)), own)
        return resolved[name]

    for name in versions:
        if not isinstance(name, str) or not _NAME.match(name):
            raise MappingError("a version name must be letters, digits, '-' or '_'", path=f"versions.{name}")
        resolve(name, (name,))
    return {**raw, "versions": resolved}


def _deep_merge(base: Any, override: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _deep_merge(base.get(key), value)
    return merged
