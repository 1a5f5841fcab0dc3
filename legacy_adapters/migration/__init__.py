"""Moving a resource off its legacy table to a clean one on a modern database, behind the same API.

``twin``: the clean table and the resource bound to it; ``routing``: which side serves
a read in each phase; ``shadow``: reads compared off the request path; ``mirror``:
writes repeated on the other side; ``copy``: the bulk copy and its verification.
"""

from __future__ import annotations

from legacy_adapters.migration.routing import Route, RoutedReader
from legacy_adapters.migration.twin import bind_twin, clean_table

__all__ = ("Route", "RoutedReader", "bind_twin", "clean_table")
