"""The Backend protocol: what differs between database engines beyond SQL compilation.

SQLAlchemy's dialects compile the SQL; a Backend adds what a gateway needs
around it: engine options, a per-statement timeout, and the one place driver
errors are classified into Bridgehead's error tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    import sqlalchemy as sa

    from legacy_adapters.exceptions import DatabaseError
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("GUARD", "Backend", "EngineRole", "StatementGuard", "pool_size")

EngineRole = Literal["requests", "exports", "probe"]
"""What an engine's connections are for: a ``Database`` keeps one pool per role, so a slow export
or a readiness probe never waits for (or takes) a request's connection, and each role gets the
driver options it needs (a streaming cursor for exports)."""


GUARD = "bh_guard"
"""Connection info key: the connection's client-side ``StatementGuard``; absent where the server
enforces the statement timeout by itself (a session setting), so a raw execute has nothing to arm."""


class StatementGuard(Protocol):
    """The statement timeout of one connection, kept by the client: armed before a statement, disarmed after."""

    def arm(self, cursor: Any) -> None: ...

    def disarm(self) -> None: ...


class Backend(Protocol):
    """Engine set-up and error classification for one family of database URLs."""

    @property
    def name(self) -> str:  # read-only: the backends declare it as a class constant
        ...

    buffers_results: ClassVar[bool]
    """The driver holds a whole result in memory before the first row (no way to stream it):
    exports then read it in keyset-ordered batches instead of one statement."""

    page_rows: ClassVar[int]
    """Rows per keyset statement of a ``buffers_results`` export (0: the export's batch size). Each
    statement costs the server a plan, a range probe and a result set, and the client an execute,
    a close and a rollback: larger pages share that over more rows, handed on in export batches."""

    def engine_options(self, config: DatabaseConfig, role: EngineRole = "requests") -> dict[str, Any]:
        """Keyword arguments for ``sqlalchemy.create_engine`` beyond the URL."""
        ...

    def install(self, engine: sa.Engine, config: DatabaseConfig, role: EngineRole = "requests") -> None:
        """Attach event listeners (timeouts, session settings, driver options of ``role``) to a new engine."""
        ...

    def streamable(self, statement: sa.Select[Any], dialect: sa.Dialect) -> sa.Executable | str:
        """The form of ``statement`` that the driver streams (most drivers: the statement itself)."""
        ...

    def classify(self, error: BaseException) -> DatabaseError:
        """Turn a driver error into a safe ``DatabaseError``; driver text never leaves this module."""
        ...

    def is_disconnect(self, error: BaseException) -> bool:
        """Whether the connection that raised ``error`` is dead and the pool must reconnect."""
        ...


def pool_size(config: DatabaseConfig, role: EngineRole) -> int:
    """Connections in ``role``'s pool: the requests' pool, the export slots, one for readiness."""
    if role == "exports":
        return config.export_pool_size
    return 1 if role == "probe" else config.pool_size
