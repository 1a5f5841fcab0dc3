"""The Backend protocol: what differs between database engines beyond SQL compilation.

SQLAlchemy's dialects compile the SQL; a Backend adds what a gateway needs
around it: engine options, a per-statement timeout, and the one place driver
errors are classified into Bridgehead's error tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import sqlalchemy as sa

    from legacy_adapters.exceptions import DatabaseError
    from legacy_adapters.mapping.model import DatabaseConfig

__all__ = ("Backend",)


class Backend(Protocol):
    """Engine set-up and error classification for one family of database URLs."""

    @property
    def name(self) -> str:  # read-only: the backends declare it as a class constant
        ...

    def engine_options(self, config: DatabaseConfig) -> dict[str, Any]:
        """Keyword arguments for ``sqlalchemy.create_engine`` beyond the URL."""
        ...

    def install(self, engine: sa.Engine, config: DatabaseConfig) -> None:
        """Attach event listeners (timeouts, session settings) to a new engine."""
        ...

    def streamable(self, statement: sa.Select[Any], dialect: sa.Dialect) -> sa.Executable | str:
        """The form of ``statement`` that the driver streams (most drivers: the statement itself)."""
        ...

    def classify(self, error: BaseException) -> DatabaseError:
        """Turn a driver error into a safe ``DatabaseError``; driver text never leaves this module."""
        ...
