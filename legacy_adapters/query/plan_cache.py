"""A bounded, thread-safe LRU of prepared plans, one per request shape.

A shape (resource, fields, sort, embeds, ...) takes a handful of values in a real API and
in a benchmark alike, but a client can make up new ones at will (every ``fields`` subset):
the cache keeps the most recently used ``size`` and forgets the rest, so memory is bounded
whatever the clients send. Building an entry twice in a race is harmless (plans are pure).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ("PlanCache",)

V = TypeVar("V")


class PlanCache(Generic[V]):
    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The plan for ``key``, built by ``build()`` the first time (or again once evicted)."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        made = build()  # outside the lock: building may compile SQL
        with self._lock:
            self._entries[key] = made
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return made

    def __len__(self) -> int:
        return len(self._entries)
