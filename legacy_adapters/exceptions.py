"""Errors raised while reading the mapping or talking to the legacy database.

BridgeheadError
└── LegacyError
    ├── MappingError          the mapping file is wrong (carries the file and the dotted path)
    ├── TransformError        a value cannot cross between API and legacy form (names the field)
    ├── QueryError            a request cannot become SQL (unknown field, bad operator, bad value)
    └── DatabaseError         the database failed; never carries driver text to API users
        ├── DatabaseUnavailable   cannot connect / link lost (transient: retry later)
        │   └── LoginRefused      the server answered but refused the user or password
        ├── StatementTimeout      the statement ran past its timeout and was cancelled
        ├── IntegrityConflict     a constraint refused a write
        ├── ValueRefused          the database refused a value (SQLSTATE class 22: out of range, too long)
        └── SchemaDrift           a mapped table or column is missing in the live database
            └── KeyNotUnique      rows share a resource's key (met by a read)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = (
    "BridgeheadError",
    "DatabaseError",
    "DatabaseUnavailable",
    "IntegrityConflict",
    "KeyNotUnique",
    "LegacyError",
    "LoginRefused",
    "MappingError",
    "QueryError",
    "SchemaDrift",
    "StatementTimeout",
    "TransactionConflict",
    "TransformError",
    "ValueRefused",
)


class BridgeheadError(Exception):
    """Root of every error Bridgehead raises on purpose."""


class LegacyError(BridgeheadError):
    """Root of the legacy_adapters package's errors."""


class MappingError(LegacyError):
    """The mapping is invalid: ``path`` is dotted (``versions.v1.resources.jobs.key``)."""

    def __init__(self, message: str, *, path: str = "", source: str = "") -> None:
        self.message = message
        self.path = path
        self.source = source
        where = ": ".join(p for p in (source, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class TransformError(LegacyError):
    """A value could not be converted; ``field`` is the API field name."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class QueryError(LegacyError):
    """A request parameter cannot be honoured; ``parameter`` names it as the client wrote it."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.message = message
        super().__init__(f"{parameter}: {message}")


class DatabaseError(LegacyError):
    """The database failed. The message is safe to show; driver detail goes to logs only."""

    transient = False


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached now; retrying later may work."""

    transient = True


class LoginRefused(DatabaseUnavailable):
    """The server refused the credentials: a configuration (or account) problem, not a network one."""


class StatementTimeout(DatabaseError):
    """A statement exceeded its timeout and was cancelled."""

    transient = True


class TransactionConflict(DatabaseError):
    """The engine rolled the transaction back to break a deadlock or keep it serializable."""

    transient = True


class IntegrityConflict(DatabaseError):
    """A constraint (unique key, foreign key, check) refused the write."""


class SchemaDrift(DatabaseError):
    """A mapped table or column is missing from the live database."""


class ValueRefused(DatabaseError):
    """The database refused a value the caller gave: out of its column's range, too long, malformed.

    SQLSTATE class 22 ("data exception"): an INT key past 2,147,483,647 on PostgreSQL
    (22003), text too long for a VARCHAR (22001). The caller's mistake, never the server's:
    the gateway answers 400 (a read) or 422 (a write).
    """


class KeyNotUnique(SchemaDrift):
    """Several rows share the values of a resource's key: which one the key addresses is unknowable.

    Raised by a read or write that meets the repeat, instead of serving (or changing) one of
    the rows at random or letting a keyset page skip the others. Names no key values: the
    rows may be ones the caller may not see.
    """

    def __init__(self, resource: str, key: Sequence[str]) -> None:
        self.resource = resource
        self.key = tuple(key)
        super().__init__(
            f"{resource}: several rows share one value of the key ({', '.join(key)}), so the rows it addresses"
            " cannot be served honestly; an administrator must declare the resource's full natural key"
            " (see 'bridgehead check')"
        )
