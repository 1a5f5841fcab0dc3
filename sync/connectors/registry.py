"""Connectors are plugins: a destination's ``kind`` names one, found through an entry-point group.

A package ships a connector by declaring, in its ``pyproject.toml``::

    [project.entry-points."bridgehead.connectors"]
    mycrm = "mycrm_bridgehead:PLUGIN"

where ``PLUGIN`` satisfies ``ConnectorPlugin``: the Struct its destination block decodes into, the
sync ``object`` names it can write, its table of error code -> outcome, and two factories. The
engine only ever speaks to what they return (``sync.connectors.base.Connector``), so Shopify and
Xero are found and built exactly as a third party's connector would be.

``register`` adds a plugin in-process (tests, embedding); entry points are read once and cached.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sync.connectors.base import Connector, Outcome

if TYPE_CHECKING:
    import httpx

    from sync.config import SyncSpec
    from sync.state.base import StateStore

__all__ = (
    "ENTRY_POINT_GROUP",
    "ConnectorContext",
    "ConnectorPlugin",
    "UnknownKind",
    "known_kinds",
    "plugin",
    "register",
)

ENTRY_POINT_GROUP = "bridgehead.connectors"
_BUILT_IN = {
    # Used when the package's entry points are not installed (running from a source tree).
    "shopify": "sync.connectors.shopify.plugin:PLUGIN",
    "xero": "sync.connectors.xero.plugin:PLUGIN",
}


@dataclass(frozen=True)
class ConnectorContext:
    """What the engine hands every connector: its HTTP client, the state store and the environment."""

    http: httpx.Client
    store: StateStore
    environ: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class ConnectorPlugin(Protocol):
    kind: str
    """The destination ``kind`` in the mapping (``shopify``, ``xero``)."""
    config_type: type[Any]
    """msgspec Struct the destination block decodes into (strict: unknown keys are config errors)."""
    objects: frozenset[str]
    """Values a sync's ``object`` may take with this destination."""
    outcomes: Mapping[str, Outcome]
    """The destination's error codes and what the engine does about each (retry, dead_letter, fatal...)."""

    def client(self, context: ConnectorContext, destination: str, config: Any, attempts: int) -> Any:
        """The destination's shared client (one per destination: rate budget, tenant, token)."""
        ...

    def connector(self, client: Any, spec: SyncSpec) -> Connector:
        """A connector for one sync over that client."""
        ...


class UnknownKind(LookupError):
    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(f"unknown destination kind {kind!r} (known: {', '.join(known)})")
        self.kind, self.known = kind, known


_lock = threading.Lock()
_plugins: dict[str, ConnectorPlugin] = {}
_loaded = False


def register(found: ConnectorPlugin) -> None:
    with _lock:
        _plugins[found.kind] = found


def _load(target: str) -> Any:
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _discover() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        targets = dict(_BUILT_IN)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            targets[ep.name] = ep.value
        for kind, target in targets.items():
            if kind in _plugins:
                continue
            loaded = _load(target)
            if getattr(loaded, "kind", None) != kind:
                raise TypeError(f"entry point {kind!r} of {ENTRY_POINT_GROUP} names a plugin of kind "
                                f"{getattr(loaded, 'kind', None)!r}")  # fmt: skip
            _plugins[kind] = loaded
        _loaded = True


def known_kinds() -> list[str]:
    _discover()
    return sorted(_plugins)


def plugin(kind: str) -> ConnectorPlugin:
    """The plugin for ``kind``; ``UnknownKind`` names the known ones."""
    _discover()
    found = _plugins.get(kind)
    if found is None:
        raise UnknownKind(kind, sorted(_plugins))
    return found
