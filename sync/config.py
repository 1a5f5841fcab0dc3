"""The ``sync:`` section of the mapping file, decoded into frozen Structs (STYLE C4).

``Mapping.sync`` is plain data; ``load_sync_config`` converts it with msgspec and
reports every mistake as a ``MappingError`` whose path starts with ``sync.``, so
a typo in a sync definition reads like any other mapping error.

A field mapping is one of ``{field: api_field}``, ``{template: "{a} {b}"}``
(concatenation), ``{field: x, lookup: {A: ACTIVE}}`` (a code map), ``{value: 7}``
(a constant) or ``{ref: {sync: items, attr: inventory_item_id}, field: item_number}``
(another sync's remote id of the row named by ``field``) or ``{expression: "on_hand - allocated"}``,
each with an ``owner``. Numbers declare how they reach the destination: ``rounding``
(a whole quantity) or ``currency`` / ``currency_decimals`` (a money amount); see
``sync/numbers.py``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from legacy_adapters.exceptions import MappingError
from legacy_adapters.mapping.load import dotted_path
from sync.alerts.config import AlertConfig, SyncAlertConfig, check_alert_config
from sync.numbers import CURRENCY_DECIMALS, ExpressionError, Rounding, compile_expression

__all__ = (
    "AlertConfig",
    "ApprovalConfig",
    "DestinationConfig",
    "DetectorConfig",
    "FieldMap",
    "Owner",
    "RefSpec",
    "SyncConfig",
    "SyncMode",
    "SyncSpec",
    "load_sync_config",
)

SyncMode = Literal["upsert", "update_only", "insert_only", "mirror"]
Owner = Literal["legacy", "destination", "newest"]
DEFAULT_STATE_URL = "sqlite:///.bridgehead/state.db"


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every sync Struct: immutable, strict about unknown keys."""


class RefSpec(_Spec, frozen=True):
    sync: str
    """The sync whose id map holds the remote record (``items`` for stock)."""
    attr: str = "id"
    """``id`` for the remote id, else a key of the remote extras (``inventory_item_id``)."""


class FieldMap(_Spec, frozen=True):
    field: str | None = None
    """API field of the resource whose value is sent (or, with ``ref``, whose value names the row)."""
    template: str | None = None
    """``str.format`` template over the row's API fields: concatenation."""
    lookup: dict[str, Any] | None = None
    """Code map applied to ``field``'s value (rendered as text: ``true``/``false`` for booleans)."""
    value: Any = None
    """A constant."""
    ref: RefSpec | None = None
    expression: str | None = None
    """Arithmetic over API fields with ``+ - *`` and parentheses: ``on_hand - allocated``."""
    rounding: Rounding | None = None
    """How a decimal becomes a whole number (floor, ceil, round_half_even, round_half_up, truncate);
    with ``currency`` the rounding of money to the currency's decimals (default round_half_even)."""
    currency: str | None = None
    """ISO 4217 code of a money field: amounts go out with that currency's decimals (USD 2, JPY 0)."""
    currency_decimals: int | None = None
    """Decimals of a money field whose currency is not in the built-in table (overrides ``currency``)."""
    owner: Owner = "legacy"
    """legacy: always sent; destination: sent on create only; newest: the later change wins, conflicts recorded."""


class DetectorConfig(_Spec, frozen=True):
    kind: Literal["snapshot_hash", "high_water", "change_tracking"] = "snapshot_hash"
    column: str | None = None
    """high_water: the API field holding a rowversion or updated-at value."""
    batch_size: int = 5000
    """Rows compared per batch (snapshot) or read per page."""


class ApprovalConfig(_Spec, frozen=True):
    """When a run stops in ``awaiting_approval`` until ``sync approve RUN`` (or ``reject RUN``)."""

    max_change_share: float | None = 0.10
    """Deletes, archives and updates above this share of the remote records the sync keeps; None: off."""
    min_remote_records: int = 20
    """Below this many remote records the share rule is off (5 of 8 changed is not alarming)."""
    max_count_deviation: float | None = 0.5
    """Source rows read by a full pass this far (as a share) from the median of recent runs; None: off."""
    history: int = 5
    """Recent completed runs the record count is compared with (at least 3 are needed)."""
    after_mapping_change: bool = False
    """The first run after this sync's definition changed waits for approval."""


class DestinationConfig(_Spec, frozen=True):
    """A Shopify destination (``kind: shopify``); other kinds decode into their plugin's ``config_type``."""

    url: str
    """Shop base URL; the GraphQL endpoint is ``{url}/admin/api/{api_version}/graphql.json``."""
    token: str
    kind: Literal["shopify"] = "shopify"
    """Which connector plugin serves the destination (``bridgehead.connectors`` entry points)."""
    api_version: str = "2026-04"
    """Pinned Admin API version: behaviour (``changeFromQuantity``) depends on it."""
    timeout_s: float = 10.0


class SyncSpec(_Spec, frozen=True):
    resource: str
    destination: str
    object: str
    """What the destination writes (Shopify: product, customer, inventory; Xero: contact, item, invoice)."""
    fields: dict[str, FieldMap]
    """Destination field -> how its value is made."""
    version: str | None = None
    """API version whose resource is read; the mapping's first version by default."""
    filter: dict[str, Any] | None = None
    """API field -> a value or a list of values: only matching rows are sent (``{status: complete}``).
    A row that stops matching is left alone at the destination."""
    mode: SyncMode = "upsert"
    on_delete: Literal["delete", "archive"] = "delete"
    """What mirror mode does to a remote record whose source row is gone."""
    interval_s: float = 30.0
    """Schedule for ``sync run --loop``; stock latency is at most this plus one run."""
    detector: DetectorConfig = DetectorConfig()
    batch_size: int = 50
    max_attempts: int = 3
    """Runs a record may fail in before it goes to the dead-letter queue."""
    request_attempts: int = 6
    """Attempts of one request (stamina) before the record counts as failed for this run."""
    approval: ApprovalConfig = ApprovalConfig()
    """Risky runs wait for a human (``sync approve`` / ``sync reject``)."""
    latency_target_s: float | None = None
    """How stale the destination may get: a ``lag`` alert when the last successful run started longer ago."""
    alert: SyncAlertConfig | None = None
    """This sync's own alert thresholds (the rest come from ``sync.alert``)."""


class SyncConfig(_Spec, frozen=True):
    destinations: dict[str, Any]
    """Name -> the destination's config Struct (its plugin's ``config_type``, by ``kind``)."""
    syncs: dict[str, SyncSpec]
    state_url: str = DEFAULT_STATE_URL
    alert: AlertConfig | None = None
    lease_s: float = 60.0
    """How long a worker's claim on outbox records lasts before another worker may take them."""
    outcome_retention_days: int = 14
    """Days the row-level outcomes of runs (request sent, destination answer) are kept for the console."""


def _convert(raw: Any, kind: type[Any], path: str) -> Any:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `$")
        if not message:
            message, where = str(exc), ""
        where = where.rstrip("`")
        if "[...]" in where:  # msgspec elides dict keys: name the sync or destination that failed
            named = dotted_path(raw, where, kind)
            where = named if named.startswith(("[", ".")) or not named else f".{named}"
        raise MappingError(message.replace("`", "'"), path=path + where) from None


def load_sync_config(raw: dict[str, Any] | None, *, source: str = "") -> SyncConfig:
    """Decode and cross-check the mapping's ``sync`` section.

    ``source`` (the mapping file) is named in every error, with the dotted path.

    Raises:
        MappingError: with ``path`` such as ``sync.syncs.items.mode``.
    """
    try:
        return _load_sync_config(raw)
    except MappingError as exc:
        raise MappingError(exc.message, path=exc.path, source=source or exc.source) from None


def _load_sync_config(raw: dict[str, Any] | None) -> SyncConfig:
    from sync.connectors.registry import UnknownKind, plugin

    if raw is None:
        raise MappingError("the mapping has no sync section", path="sync")
    config = _convert(raw, SyncConfig, "sync")
    destinations: dict[str, Any] = {}
    plugins = {}
    for name, block in config.destinations.items():
        path = f"sync.destinations.{name}"
        if not isinstance(block, dict):
            raise MappingError("a destination is a mapping with a kind", path=path)
        kind = block.get("kind", "shopify")
        try:
            plugins[name] = plugin(str(kind))
        except UnknownKind as exc:
            raise MappingError(str(exc), path=f"{path}.kind") from None
        destinations[name] = _convert(block, plugins[name].config_type, path)
    config = msgspec.structs.replace(config, destinations=destinations)
    if not 1 <= config.outcome_retention_days <= 3650:
        raise MappingError("keep outcomes from 1 to 3650 days", path="sync.outcome_retention_days")
    for name, spec in config.syncs.items():
        path = f"sync.syncs.{name}"
        if spec.destination not in config.destinations:
            known = ", ".join(config.destinations)
            raise MappingError(f"unknown destination {spec.destination!r} (known: {known})", path=f"{path}.destination")
        found = plugins[spec.destination]
        if spec.object not in found.objects:
            raise MappingError(f"a {found.kind} destination writes {', '.join(sorted(found.objects))}, "
                               f"not {spec.object!r}", path=f"{path}.object")  # fmt: skip
        for field_name, wanted in (spec.filter or {}).items():
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values or any(isinstance(v, dict | list) for v in values):
                where = f"{path}.filter.{field_name}"
                raise MappingError("a filter value is a scalar or a list of scalars", path=where)
        for target, fmap in spec.fields.items():
            where = f"{path}.fields.{target}"
            kinds = sum(x is not None for x in (fmap.template, fmap.value, fmap.expression)) + (
                fmap.field is not None and not fmap.ref
            )
            if fmap.ref is None and kinds != 1:
                raise MappingError("give exactly one of field, template, value, expression", path=where)
            if fmap.expression is not None:
                try:
                    compile_expression(fmap.expression)
                except ExpressionError as exc:
                    raise MappingError(str(exc), path=f"{where}.expression") from None
            if fmap.currency is not None and fmap.currency_decimals is None and fmap.currency not in CURRENCY_DECIMALS:
                raise MappingError(
                    f"unknown currency {fmap.currency!r}: give currency_decimals", path=f"{where}.currency"
                )
            if fmap.currency_decimals is not None and not 0 <= fmap.currency_decimals <= 6:
                raise MappingError("currency_decimals must be between 0 and 6", path=f"{where}.currency_decimals")
            if (fmap.rounding or fmap.currency or fmap.currency_decimals is not None) and (
                fmap.template is not None or fmap.ref is not None or fmap.lookup
            ):
                raise MappingError("rounding and currency apply to a number (field, expression or value)", path=where)
            if fmap.ref is not None and (fmap.field is None or fmap.ref.sync not in config.syncs):
                raise MappingError("ref needs a field and a known sync", path=f"{path}.fields.{target}.ref")
        share = spec.approval.max_change_share
        if share is not None and not 0 < share <= 1:
            raise MappingError("a share between 0 and 1 (0.1 is 10 %)", path=f"{path}.approval.max_change_share")
        if spec.detector.kind == "high_water" and not spec.detector.column:
            raise MappingError("high_water needs a column", path=f"{path}.detector.column")
        if spec.interval_s <= 0:
            raise MappingError("must be above 0", path=f"{path}.interval_s")
        if spec.latency_target_s is not None and spec.latency_target_s < spec.interval_s:
            raise MappingError(
                f"{spec.latency_target_s:g} s is below interval_s ({spec.interval_s:g} s): a run every "
                f"{spec.interval_s:g} s cannot meet it",
                path=f"{path}.latency_target_s",
            )
    check_alert_config(config.alert, {name: spec.alert for name, spec in config.syncs.items()})
    return config
