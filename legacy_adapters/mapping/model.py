"""The mapping file's schema, as frozen msgspec Structs.

Every key a user may write in ``bridgehead.yaml`` is declared here, and nothing
else is accepted (``forbid_unknown_fields``), so a typo is an error with a path
instead of a silently ignored setting. Cross-field rules (a relation naming a
resource that exists, a transform name that is known) live in ``load.py``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Annotated, Any, Literal, cast

import msgspec

__all__ = (
    "PHASES",
    "RATE_UNIT_SECONDS",
    "ActionSpec",
    "ApiConfig",
    "AuthConfig",
    "CorsConfig",
    "DatabaseConfig",
    "DeleteSpec",
    "FieldSpec",
    "FieldType",
    "Mapping",
    "McpConfig",
    "McpSpec",
    "MigrationSpec",
    "Phase",
    "RateLimitConfig",
    "RelationSpec",
    "ResourceSpec",
    "ScopeSpec",
    "StateConfig",
    "UnmappedDefault",
    "VersionSpec",
    "deprecation_epoch",
    "http_date_epoch",
    "parse_rate",
)

FieldType = Literal["string", "integer", "decimal", "number", "date", "time", "datetime", "boolean"]
"""The API-side type of a field: how filter values are parsed and how OpenAPI describes it."""

Scalar = str | int | float
_Positive = Annotated[float, msgspec.Meta(gt=0)]
_AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base for every mapping Struct: immutable, strict about unknown keys."""


class DatabaseConfig(_Spec, frozen=True):
    url: str
    """SQLAlchemy URL: ``sqlite:///file.db``, ``mssql+pyodbc://…``, ``postgresql+pyodbc://…``."""
    statement_timeout_s: float = 5.0
    """A statement running longer is cancelled and answered with 504."""
    pool_size: int = 5
    """Connections kept open; also the size of the worker pool running blocking queries."""
    connect_timeout_s: float = 5.0
    """Login timeout when opening a connection, and the longest a request waits for a pooled one."""
    request_timeout_s: _Positive | None = None
    """The longest a request waits on the database in all (a connection, then its statements) before
    the gateway answers 504 itself, even when the database stopped answering without closing the link.
    Default: ``connect_timeout_s + statement_timeout_s``."""
    export_pool_size: _AtLeastOne = 2
    """Connections kept for NDJSON/CSV exports, apart from ``pool_size``: also the most exports that
    run at once in one gateway process (one more is answered 503), so slow exports never take a
    request's connection. ``serve --workers N`` opens up to N times as many."""
    read_only: bool = False
    """Ask the driver for read-only intent where it supports it."""

    @property
    def request_deadline_s(self) -> float:
        """``request_timeout_s``, or its default: a connection's wait plus a statement's."""
        return self.request_timeout_s or self.connect_timeout_s + self.statement_timeout_s


class AuthConfig(_Spec, frozen=True):
    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    hs256_secret: str | None = None
    leeway_s: float = 30.0
    """Clock skew tolerated on ``exp`` and ``nbf``."""
    jwks_cache_s: float = 300.0
    jwks_min_refetch_s: float = 5.0
    """A token with an unknown ``kid`` refetches the JWKS at most this often."""
    login_url: str | None = None
    """The identity provider's authorization endpoint: the console at ``/admin`` offers to sign in there
    (``response_type=token``, back to ``/admin`` with the token in the fragment) besides pasting a token."""
    login_client_id: str | None = None
    """The console's client id at that identity provider."""


class CorsConfig(_Spec, frozen=True):
    """Which browser origins may call the API (no CORS headers at all when ``cors`` is unset)."""

    allow_origins: list[str]
    """Exact origins (``https://portal.example.com``); ``*`` only for APIs without credentials."""
    allow_methods: list[str] = msgspec.field(default_factory=lambda: ["GET", "POST", "PATCH", "DELETE"])
    allow_headers: list[str] = msgspec.field(
        default_factory=lambda: [
            "Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"
        ]
    )  # fmt: skip
    expose_headers: list[str] = msgspec.field(
        default_factory=lambda: [
            "ETag", "Link", "Location", "X-Request-ID", "Retry-After", "Idempotent-Replayed",
            "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
        ]
    )  # fmt: skip
    allow_credentials: bool = False
    max_age_s: int = 600


class RateLimitConfig(_Spec, frozen=True):
    """Requests allowed per window, as ``N/second|minute|hour|day``; unset means no limit."""

    per_subject: str | None = None
    """Per token identity (issuer + subject), counted after the token is verified."""
    per_ip: str | None = None
    """Per client address, for every caller (anonymous ones included)."""
    redis_url: str | None = None
    """Counters in Redis, shared by every process and host; else in memory (one process) or in
    files beside the state store (``serve --workers N`` on one host)."""

    def __post_init__(self) -> None:
        for name in ("per_subject", "per_ip"):
            value = getattr(self, name)
            if value is not None and parse_rate(value) is None:
                raise ValueError(f"{name}: {value!r} is not N/second, N/minute, N/hour or N/day (e.g. 120/minute)")


RATE_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
"""The windows a rate may name, and their length."""


def parse_rate(text: str) -> tuple[int, Literal["second", "minute", "hour", "day"]] | None:
    """``"120/minute"`` -> ``(120, "minute")``; None when it is not that shape."""
    count, _, unit = text.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or unit.strip() not in RATE_UNIT_SECONDS:
        return None
    return int(count), unit.strip()  # type: ignore[return-value]


class ApiConfig(_Spec, frozen=True):
    default_limit: int = 50
    max_limit: int = 500
    cursor_secret: str | None = None
    """Signs pagination cursors; several gateway processes must share it. When unset: random per
    ``serve`` run (one secret for all of its ``--workers``), so cursors do not survive a restart."""
    title: str = "Bridgehead"
    server_url: str | None = None
    """Public base URL written into the OpenAPI ``servers`` list."""
    max_bulk: int = 100
    """Most rows one bulk POST may create; more is refused with 413."""
    max_body_bytes: _AtLeastOne = 1_048_576
    """Largest request body a write or action takes (1 MiB); a larger one is 413 problem+json.
    A resource's own ``max_body_bytes`` overrides it for its routes."""
    require_if_match: bool = False
    """Refuse PATCH and DELETE without ``If-Match`` (428), so no client can overwrite blindly."""
    idempotency_ttl_s: float = 86400.0
    """How long an ``Idempotency-Key`` replays its first response."""
    cors: CorsConfig | None = None
    rate_limit: RateLimitConfig | None = None
    exports_per_subject: _AtLeastOne | None = None
    """Most exports one token identity (anonymous callers: one client address) streams at once in a
    gateway process; one more is 429. Unset: only the process-wide ``database.export_pool_size``."""
    export_idle_timeout_s: _Positive = 30.0
    """An export whose client reads nothing (or whose database sends nothing) for this long is cut,
    and its database connection goes back to the export pool."""
    idempotency_lease_s: float = 30.0
    """How long a keyed write may run before a retry presumes it dead and takes the key over.

    Longer than your slowest write; a write still running past it is rolled back, never committed twice."""


class UnmappedDefault(_Spec, frozen=True):
    default: str
    """The API value every stored code missing from the ``map`` is served as."""


class FieldSpec(_Spec, frozen=True):
    column: str
    """The legacy column holding this field (the date column for a ``date_time`` pair)."""
    type: FieldType = "string"
    transform: str | None = None
    """Name of a two-way transform, e.g. ``trim``, ``yes_no``."""
    date: str | None = None
    """Date codec: ``yyyymmdd``, ``cyymmdd``, ``yyyyddd``, … or ``pattern:%C%y%m%d``."""
    time: str | None = None
    """Time codec: ``hhmmss``, ``hhmm``, ``hhmmssth``, ``seconds`` or ``pattern:%H%M``."""
    pivot_year: int | None = None
    """First year a two-digit year (``yymmdd``) stands for; 1940 when unset (40-99 = 19xx, 00-39 = 20xx)."""
    map: dict[str | int, str] | None = None
    """Legacy code -> API value, e.g. ``{R: released}``; applied after ``transform``."""
    unmapped: Literal["null", "raw"] | UnmappedDefault | None = None
    """What a stored code missing from ``map`` is served as: null (default), the code itself, or a default."""
    null_if: list[Scalar] | None = None
    """Stored sentinels that mean "no value", e.g. ``[0, 99999999]`` for dates."""
    scale: int | None = None
    """Implied decimals: a stored 1250 with scale 2 is 12.50."""
    as_string: bool = False
    """Serve a ``type: decimal`` field as a JSON string (``"12.50"``) and take it as one in bodies, so
    money never passes through a client's binary floating point."""
    decimals: int | None = None
    """A DECIMAL column's declared scale (2 for DECIMAL(11,2)): every backend serves values with it."""
    length: int | None = None
    """Width of a CHAR column (padding on write and in comparisons) or of a zero-padded number."""
    bool_values: tuple[Scalar, Scalar] | None = None
    """Stored (true, false) codes for the ``boolean`` transform."""
    time_column: str | None = None
    """For a datetime from two columns: the column holding the time that goes with ``column``."""
    timezone: str | None = None
    """IANA zone the legacy system wrote local times in (a datetime from two columns)."""
    nullable: bool = False
    """The column itself may hold SQL NULL (legacy schemas mostly use sentinels instead)."""
    scope: str | None = None
    """A scope a token needs to see, filter or sort on this field."""
    description: str | None = None
    read_only: bool = False
    required: bool = False


class DeleteSpec(_Spec, frozen=True):
    column: str | None = None
    """Soft delete: DELETE sets this column to ``value`` instead of removing the row."""
    value: Scalar | None = None
    hard: bool = False
    """Allow removing the row itself; must be said explicitly."""


class RelationSpec(_Spec, frozen=True):
    resource: str
    on: dict[str, str]
    """This resource's field -> the related resource's field."""
    many: bool = True


class ActionSpec(_Spec, frozen=True):
    procedure: str | None = None
    """Stored procedure called with named parameters (SQL Server ``EXEC``)."""
    sql: str | list[str] | None = None
    """Statement(s) with ``:name`` parameters, for backends without procedures (the SQLite demo);
    a list runs in order in one transaction."""
    params: dict[str, str] = {}
    """Procedure parameter -> field of the addressed row or of the request body."""
    scope: str | None = None
    description: str | None = None


class McpSpec(_Spec, frozen=True):
    """What AI agents may do with a resource through the MCP server (``/mcp``, ``bridgehead mcp``).

    Reading (describe, list, get, aggregate) follows the resource's scopes as on REST; writes
    are off unless named here, and still need the token's write (or action) scope.
    """

    tools: bool = True
    """Offer the resource's read tools at all; ``false`` keeps it out of MCP."""
    create: bool = False
    """Offer ``<resource>_create`` (the resource must be ``writable``)."""
    update: bool = False
    """Offer ``<resource>_update`` (the resource must be ``writable``)."""
    actions: list[str] = []
    """Actions offered as ``<resource>_<action>`` tools."""


class McpConfig(_Spec, frozen=True):
    """The MCP server as a whole."""

    enabled: bool = True
    """Serve ``/mcp`` (and let ``bridgehead mcp`` run)."""
    version: str | None = None
    """The API version whose resources become tools; the last one declared when unset."""
    instructions: str | None = None
    """Told to the agent when it connects (what the data is, how to use the tools)."""


class ScopeSpec(_Spec, frozen=True):
    read: str | None = None
    write: str | None = None


Phase = Literal["legacy", "shadow", "dual_write", "cutover"]
"""Where a migrating resource is served from and written to (see docs/migration.md)."""
PHASES: tuple[Phase, ...] = ("legacy", "shadow", "dual_write", "cutover")


class MigrationSpec(_Spec, frozen=True):
    """A resource moving off its legacy table to a clean table on another database (strangler fig)."""

    to: str
    """The database (a key of ``databases``) holding the clean table."""
    phase: str = "legacy"
    """``legacy``, ``shadow``, ``dual_write`` or ``cutover`` (``Phase``); checked below to list them."""
    table: str | None = None
    """The clean table's name; the resource's name when unset."""
    shadow_sample: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    """Share of reads (0..1) also answered from the new database in the ``shadow`` phase."""
    shadow_queue: _AtLeastOne = 100
    """Shadow reads waiting to be compared at most; more are dropped (and counted), never waited for."""
    write_back: bool = False
    """In ``cutover``: also write every change back to the legacy table, through the reverse codecs."""
    actions: dict[str, ActionSpec] = {}
    """Each action's statements for the clean table (``cutover``: the legacy SQL names legacy columns)."""

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase: {self.phase!r} is not one of {', '.join(PHASES)}")


class ResourceSpec(_Spec, frozen=True):
    table: str
    """Legacy table, optionally schema-qualified (``dbo.JOBMAST``)."""
    key: str | list[str]
    """Field (or fields, for a composite key) that address one row; need not be a primary key."""
    fields: dict[str, FieldSpec]
    where: str | None = None
    """A SQL condition rows must meet to exist for the API (e.g. not soft-deleted)."""
    scopes: ScopeSpec = ScopeSpec()
    anonymous: bool = False
    """Readable without a token (a public catalogue); everything else needs one."""
    row_filter: dict[str, str] | None = None
    """Field -> ``claims.<name>``: a token sees only rows whose field equals its claim (or is in it, for a
    list claim). ``relation.field`` filters through a to-one relation (operations by their job's customer)."""
    unfiltered_scope: str | None = None
    """Tokens with this scope (and admin tokens) read every row, not only their own."""
    relations: dict[str, RelationSpec] = {}
    actions: dict[str, ActionSpec] = {}
    default_sort: list[str] | None = None
    description: str | None = None
    writable: bool = False
    """POST and PATCH are served (fields marked ``read_only`` still refuse values)."""
    delete: DeleteSpec | None = None
    """How DELETE is honoured; without it DELETE answers 405."""
    defaults: dict[str, Scalar] = {}
    """Stored values for unmapped columns on insert, e.g. ``{DELFLG: N}`` for a NOT NULL flag."""
    max_body_bytes: _AtLeastOne | None = None
    """Largest request body this resource's writes and actions take; ``api.max_body_bytes`` when unset."""
    mcp: McpSpec = McpSpec()
    """What the MCP server offers agents for this resource (reads only, unless writes are named)."""
    database: str | None = None
    """Which of the mapping's ``databases`` holds ``table``; the default database when unset."""
    migration: MigrationSpec | None = None
    """The move of this resource to a clean table elsewhere, and its current phase."""

    @property
    def phase(self) -> Phase:
        """The migration phase, ``legacy`` for a resource that is not moving."""
        return cast("Phase", self.migration.phase) if self.migration is not None else "legacy"

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The key as a tuple of field names, whether declared as one name or a list."""
        return (self.key,) if isinstance(self.key, str) else tuple(self.key)


class VersionSpec(_Spec, frozen=True):
    resources: dict[str, ResourceSpec]
    deprecated: bool | str = False
    """When the version was deprecated, as an ISO date (``2026-12-01``) or an HTTP date; sent as
    ``Deprecation: @<epoch seconds>`` (RFC 9745). ``false``: not deprecated."""
    sunset: str | None = None
    """HTTP date (RFC 9110) after which the version may be removed; sent as ``Sunset`` (RFC 8594)."""
    successor: str | None = None
    """The version that replaces this one: answers link to it with ``rel="successor-version"``."""
    description: str | None = None

    @property
    def deprecated_at(self) -> int | None:
        """Seconds since the epoch of the deprecation date, None when not deprecated."""
        return deprecation_epoch(self.deprecated) if isinstance(self.deprecated, str) else None


def http_date_epoch(text: str) -> int:
    """An RFC 9110 HTTP date (``Sat, 01 May 2027 00:00:00 GMT``) as seconds since the epoch."""
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None or moment.utcoffset() != dt.timedelta(0):
        raise ValueError(f"{text!r} is not an HTTP date such as 'Sat, 01 May 2027 00:00:00 GMT'")
    return int(moment.timestamp())


def deprecation_epoch(text: str) -> int:
    """A deprecation date, ISO (``2026-12-01``, midnight UTC) or HTTP date, as seconds since the epoch."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        try:
            return http_date_epoch(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither an ISO date (2026-12-01) nor an HTTP date") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


class StateConfig(_Spec, frozen=True):
    url: str = "sqlite:///.bridgehead/state.db"
    """Idempotency keys, audit trail and sync state. PostgreSQL when several processes share them."""


class Mapping(_Spec, frozen=True):
    database: DatabaseConfig
    """The default database: the only one, or ``databases.legacy`` (else the first) when several are named."""
    versions: dict[str, VersionSpec]
    databases: dict[str, DatabaseConfig] = {}
    """Several databases by name (``legacy``, ``core``); resources say which one holds them."""
    auth: AuthConfig | None = None
    api: ApiConfig = ApiConfig()
    state: StateConfig = StateConfig()
    sync: dict[str, Any] | None = None
    """Sync definitions; validated by the sync package, which owns their schema."""
    webhooks: dict[str, Any] | None = None
    """Inbound webhooks (signing secrets, what each event changes); validated by ``sync.webhooks``."""
    mcp: McpConfig = McpConfig()
    """The MCP server for AI agents: tools generated from ``mcp.version``'s resources."""

    def database_of(self, name: str | None) -> DatabaseConfig:
        """The database called ``name`` (the default one for None)."""
        return self.database if name is None else self.databases[name]

    @property
    def mcp_version(self) -> str:
        """The version MCP tools are generated from."""
        return self.mcp.version or list(self.versions)[-1]
